#!/usr/bin/env python3
"""Guest tests: run SDK guests under tandem-vmm (direct and daemon mode) and check what they do.

Usage: guest_test.py --vmm PATH --guests DIR CASE
Exit 0 = pass, 77 = skip (no usable /dev/kvm), anything else = fail.
Each case checks an observable outcome: console output, exit status, the
VMM's messages, the control socket's answers, files left in the domain dir.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ARGS = None


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def guest(name):
    return os.path.join(ARGS.guests, name + ".elf")


def run_direct(kernel, cmdline=None, memory=None, timeout=60):
    cmd = [ARGS.vmm, "--kernel", kernel]
    if cmdline is not None:
        cmd += ["--cmdline", cmdline]
    if memory is not None:
        cmd += ["--memory", str(memory)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    check(p.returncode >= 0, f"tandem-vmm died by signal {-p.returncode}: {p.stderr}")
    return p


def expect_success(p, what):
    check(p.returncode == 0, f"{what}: exit {p.returncode}, stderr {p.stderr!r}")
    check(p.stdout.rstrip().endswith("SUCCESS"), f"{what}: no SUCCESS in {p.stdout[-500:]!r}")


def expect_refused(p, pattern, what):
    """Startup refusal: exit 1, exactly one clear message naming the input on stderr, no output."""
    check(p.returncode == 1, f"{what}: exit {p.returncode}, expected 1")
    err = p.stderr.strip()
    check(re.search(pattern, err), f"{what}: message {err!r} does not match {pattern!r}")
    check(len(err.splitlines()) == 1, f"{what}: expected one message line, got {err!r}")
    check(p.stdout == "", f"{what}: guest output despite refusal: {p.stdout!r}")


def expect_crash(p, pattern, what):
    check(p.returncode == 65, f"{what}: exit {p.returncode}, expected 65 (crash); {p.stderr!r}")
    check(re.search(pattern, p.stderr), f"{what}: {p.stderr!r} does not match {pattern!r}")


# ---- sample guests ---------------------------------------------------------------------------

def case_hello():
    p = run_direct(guest("hello"), "greeting=hi two")
    expect_success(p, "hello")
    check("Hello from a Tandem guest!" in p.stdout, "no greeting")
    check('cmdline "greeting=hi two"' in p.stdout, "command line not passed through")
    check("argv[2] = two" in p.stdout, "argv not split")
    check("memory 64 MiB" in p.stdout, "boot info memory size wrong")
    p = run_direct(guest("hello"), "code=7")
    check(p.returncode == 7, f"poweroff code 7 gave exit {p.returncode}")
    p = run_direct(guest("hello"), "halt=reboot")
    check(p.returncode == 64, f"reboot gave exit {p.returncode}, expected 64")


def case_sdk_libc():
    """The SDK's libc subset, checked inside a guest (formatting, parsing, strings, heap)."""
    p = run_direct(guest("sdktest"), "n=1234 word=x1", memory=64)
    check("FAILED" not in p.stdout, f"sdktest: {p.stdout!r}")
    expect_success(p, "sdktest")


def case_ticker():
    t0 = time.monotonic()
    p = run_direct(guest("ticker"), "count=3")
    elapsed = time.monotonic() - t0
    expect_success(p, "ticker")
    times = [float(m) for m in re.findall(r"guest time (\d+\.\d+) s", p.stdout)]
    check(len(times) == 3, f"expected 3 ticks, got {p.stdout!r}")
    for i, t in enumerate(times):
        check(abs(t - i) < 0.25, f"tick {i + 1} at guest time {t}, expected {i} +- 0.25")
    walls = [float(m) for m in re.findall(r"unix time (\d+\.\d+)", p.stdout)]
    check(abs(walls[0] - time.time()) < 10 + elapsed, f"wall clock {walls[0]} far from host time")
    check(2.0 <= elapsed < 10, f"3 ticks took {elapsed:.2f} s of host time")


def memdirty_rate(rate):
    p = run_direct(guest("memdirty"), f"pages={rate} mem=32 seconds=4", memory=64)
    expect_success(p, f"memdirty pages={rate}")
    m = re.search(r"average (\d+) pages/s", p.stdout)
    check(m, f"no average in {p.stdout!r}")
    got = int(m.group(1))
    check(abs(got - rate) <= rate * 0.10, f"memdirty asked {rate} pages/s, achieved {got}")
    return got


def case_memdirty():
    for rate in (1000, 50000):
        memdirty_rate(rate)


def case_statecheck():
    p = run_direct(guest("statecheck"), "seconds=10 mem=8", timeout=60)
    check("MISMATCH" not in p.stdout, f"statecheck mismatch: {p.stdout[-1000:]!r}")
    expect_success(p, "statecheck")
    check(len(re.findall(r"rounds, \d+ register checks, ok", p.stdout)) >= 5,
          "statecheck printed too little progress in 10 s")


def case_abi_layout():
    """The ABI by bytes (docs/abi.md): the ELF note, the boot info and the clock page."""
    data = open(guest("hello"), "rb").read()
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    notes = []
    for i in range(phnum):
        ptype, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if ptype == 4:  # PT_NOTE
            notes.append(data[off:off + filesz])
    check(notes, "hello.elf has no PT_NOTE program header")
    want = struct.pack("<III", 7, 4, 1) + b"Tandem\0\0" + struct.pack("<I", 1)
    check(any(want in n for n in notes), f"ABI note bytes not found in {notes!r}")

    cmdline = "abi layout check"
    p = run_direct(guest("abidump"), cmdline, memory=64)
    expect_success(p, "abidump")
    m = re.search(r"^bootinfo ([0-9a-f]+)$", p.stdout, re.M)
    c = re.search(r"^clock ([0-9a-f]+)$", p.stdout, re.M)
    check(m and c, f"no dump in {p.stdout[:200]!r}")
    bi = bytes.fromhex(m.group(1))
    ck = bytes.fromhex(c.group(1))
    check(len(bi) == 2144 and len(ck) == 64, "dump sizes")
    check(bi[0:4] == b"TDMB", f"magic {bi[0:4]!r}")
    check(struct.unpack_from("<I", bi, 4)[0] == 1, "abi_version at 4")
    check(struct.unpack_from("<Q", bi, 8)[0] == 64 << 20, "mem_size at 8")
    check(struct.unpack_from("<Q", bi, 16)[0] == 0x6000, "clock at 16")
    check(struct.unpack_from("<II", bi, 24) == (0, 0), "domid, num_devices at 24, 28")
    check(struct.unpack_from("<I", bi, 32)[0] == len(cmdline), "cmdline_len at 32")
    check(bi[40:96] == bytes(56), "uuid (direct mode) and reserved are zero")
    check(bi[96:1120] == bytes(1024), "device table is empty")
    check(bi[1120:1120 + len(cmdline) + 1] == cmdline.encode() + b"\0", "cmdline at 1120")

    version, generation, tsc_base, ns_base, mul, shift, wall, khz = \
        struct.unpack_from("<IIQQIiQQ", ck, 0)
    check(version % 2 == 0 and generation == 0, f"version {version} generation {generation}")
    check(tsc_base > 0 and ns_base == 0, f"tsc_base {tsc_base} ns_base {ns_base}")
    check(100000 <= khz <= 20000000, f"tsc_khz {khz}")
    ns_per_tick = mul * 2.0 ** shift / 2 ** 32
    check(abs(ns_per_tick * khz / 1e6 - 1) < 1e-6, f"mul {mul} shift {shift} vs tsc_khz {khz}")
    check(abs(wall / 1e9 - time.time()) < 60, f"wall_base_ns {wall}")
    check(ck[48:64] == bytes(16), "clock reserved bytes")


def case_statecheck_selftest():
    """Negative control: statecheck must notice a lost register or a changed memory word."""
    for what, pattern in (("r13", r"MISMATCH register r13"), ("ymm", r"MISMATCH register ymm11"),
                          ("mem", r"MISMATCH memory: page 3 word 7")):
        p = run_direct(guest("statecheck"), f"seconds=20 selftest={what}")
        check(re.search(pattern, p.stdout), f"selftest={what}: no {pattern!r} in {p.stdout!r}")
        expect_crash(p, r"statecheck: .*mismatch", f"selftest={what}")


# ---- bad input -------------------------------------------------------------------------------

def case_missing_kernel():
    p = run_direct("/nonexistent/guest.elf")
    expect_refused(p, r"kernel /nonexistent/guest\.elf: No such file", "missing kernel")


def patched_copy(tmp, src, offset, fmt, value, name):
    data = bytearray(open(src, "rb").read())
    struct.pack_into(fmt, data, offset, value)
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def case_bad_images():
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "notelf.elf")
        with open(text, "w") as f:
            f.write("this is not an ELF image\n")
        expect_refused(run_direct(text), r"notelf\.elf: not an ELF file", "non-ELF")

        empty = os.path.join(tmp, "empty.elf")
        open(empty, "w").close()
        expect_refused(run_direct(empty), r"empty\.elf: not an ELF file", "empty file")

        # e_machine (offset 18) = 183 (AArch64)
        arm = patched_copy(tmp, guest("hello"), 18, "<H", 183, "arm.elf")
        expect_refused(run_direct(arm), r"arm\.elf: not an x86-64 ELF image", "wrong machine")

        # first program header's p_paddr (e_phoff 64 + 24) far outside RAM
        far = patched_copy(tmp, guest("hello"), 64 + 24, "<Q", 1 << 40, "far.elf")
        expect_refused(run_direct(far), r"far\.elf: segment 0 .* lies outside guest RAM",
                       "segment outside RAM")

        # segment below the 1 MiB image base (would overwrite the VMM's tables)
        low = patched_copy(tmp, guest("hello"), 64 + 24, "<Q", 0x1000, "low.elf")
        expect_refused(run_direct(low), r"low\.elf: segment 0 .* lies outside guest RAM",
                       "segment in VMM area")

        # program header table offset beyond the end of the file
        phoff = patched_copy(tmp, guest("hello"), 32, "<Q", 1 << 62, "phoff.elf")
        expect_refused(run_direct(phoff), r"phoff\.elf: bad program header table",
                       "bad phoff")

        # a directory is not an image
        expect_refused(run_direct(tmp), r"not a regular file", "directory")


def case_abi_version():
    expect_refused(run_direct(guest("wrongabi")),
                   r"wrongabi\.elf: guest ABI version 999 is not supported .*version 1",
                   "wrong ABI version")
    expect_refused(run_direct(guest("noabi")), r"noabi\.elf: no Tandem ABI note",
                   "missing ABI note")


def mem_available_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    raise Fail("no MemAvailable in /proc/meminfo")


def case_memory_limits():
    too_big = (mem_available_mib() + 4096) // 2 * 2
    if too_big <= 131072:
        expect_refused(run_direct(guest("hello"), memory=too_big),
                       rf"memory={too_big} MiB: more than this host can give", "memory > host")
    expect_refused(run_direct(guest("hello"), memory=131074),
                   r"--memory 131074: not a size in MiB", "memory > ABI maximum")
    expect_refused(run_direct(guest("hello"), memory=63),
                   r"must be a multiple of 2 MiB", "odd memory size")
    expect_refused(run_direct(guest("hello"), memory=2),
                   r"memory=2 MiB: must be between 4 MiB", "tiny memory")


def case_bad_pointer():
    for mode, pattern in (
            ("buffer", r"bad pointer: console_write buffer \[0x3fffff0, \+4096\) is outside "
                       r"guest RAM \(64 MiB\) at rip 0x"),
            ("wrap", r"bad pointer: console_write buffer \[0xfffffffffffff000, \+8192\)"),
            ("arg", r"bad pointer: console_write argument \[0xfffffff0, \+24\)"),
            ("misaligned", r"bad pointer: console_write argument 0x[0-9a-f]+ is not 8-byte "
                           r"aligned")):
        p = run_direct(guest("badptr"), f"mode={mode}")
        expect_crash(p, pattern, f"badptr mode={mode}")
        check("accepted a bad pointer" not in p.stdout, f"mode={mode}: guest continued")


def case_guest_fault():
    for mode, pattern in (("ud", r"guest fault #UD at rip 0x10[0-9a-f]+"),
                          ("pf", r"guest fault #PF at rip 0x10[0-9a-f]+, address 0x4001000"),
                          ("port", r"guest fault #GP at rip 0x10[0-9a-f]+"),
                          ("de", r"guest fault #DE at rip 0x10[0-9a-f]+")):
        p = run_direct(guest("fault"), f"mode={mode}")
        expect_crash(p, pattern, f"fault mode={mode}")
        check("no fault happened" not in p.stdout, f"mode={mode}: no fault")


# ---- daemon mode: the process contract of docs/control.md ------------------------------------

class Daemon:
    """A tandem-vmm started the way libtandem starts it (minus the double fork)."""

    def __init__(self, tmp, config, domid=7, paused=False):
        self.dir = os.path.join(tmp, "dom")
        os.mkdir(self.dir)
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(config, f)
        r, w = os.pipe()
        cmd = [ARGS.vmm, "--domain-dir", self.dir, "--domid", str(domid), "--ready-fd", str(w)]
        if paused:
            cmd.append("--paused")
        self.proc = subprocess.Popen(cmd, pass_fds=(w,), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        os.close(w)
        with os.fdopen(r) as rf:
            line = rf.readline()
        self.ready = json.loads(line) if line else None

    def request(self, obj, timeout=5.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(timeout)
        try:
            s.connect(os.path.join(self.dir, "control.sock"))
            s.send(json.dumps(obj).encode())
            return json.loads(s.recv(65536).decode())
        finally:
            s.close()

    def wait(self, timeout=20):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode

    def files(self):
        return sorted(os.listdir(self.dir))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def config(kernel, cmdline="", memkb=65536, vcpus=1, **extra):
    c = {"c_info": {"name": "gtest", "uuid": "6a1f2b3c-4d5e-4f60-8172-8394a5b6c7d8"},
         "b_info": {"max_vcpus": vcpus, "max_memkb": memkb, "target_memkb": memkb,
                    "kernel": kernel, "cmdline": cmdline}}
    c.update(extra)
    return c


def exit_status(d):
    with open(os.path.join(d.dir, "exit-status")) as f:
        lines = f.read().splitlines()
    check(len(lines) == 1, f"exit-status is not one line: {lines!r}")
    return json.loads(lines[0])


def case_daemon_lifecycle():
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp, config(guest("ticker")), paused=True)
        try:
            check(d.ready == {"ok": True}, f"ready line {d.ready!r}")
            check(d.files() == ["config.json", "console.log", "control.sock", "vmm.log",
                                "vmm.pid"], f"domain dir holds {d.files()}")
            with open(os.path.join(d.dir, "vmm.pid")) as f:
                check(int(f.read()) == d.proc.pid, "vmm.pid is not the VMM's pid")
            info = d.request({"cmd": "info"})
            check(info["ok"] and info["info"]["state"] == "paused", f"--paused: {info!r}")
            check(info["info"]["name"] == "gtest" and info["info"]["domid"] == 7, f"{info!r}")
            check(info["info"]["uuid"] == "6a1f2b3c-4d5e-4f60-8172-8394a5b6c7d8", f"{info!r}")
            check(info["info"]["max_memkb"] == 65536, f"{info!r}")
            time.sleep(0.5)
            with open(os.path.join(d.dir, "console.log")) as f:
                check(f.read() == "", "a paused guest wrote to its console")
            check(d.request({"cmd": "unpause"}) == {"ok": True}, "unpause failed")
            time.sleep(1.5)
            with open(os.path.join(d.dir, "console.log")) as f:
                log = f.read()
            check("tick 1:" in log and "tick 2:" in log, f"console.log after 1.5 s: {log!r}")
            r = d.request({"cmd": "rename", "name": "renamed"})
            check(r == {"ok": True}, f"rename: {r!r}")
            check(d.request({"cmd": "info"})["info"]["name"] == "renamed", "rename not applied")
            r = d.request({"cmd": "frobnicate"})
            check(not r["ok"] and "unknown command 'frobnicate'" in r["error"], f"{r!r}")
            r = d.request({"cmd": "rename"})
            check(not r["ok"] and "name" in r["error"], f"rename without name: {r!r}")
            check(d.request({"cmd": "destroy"}) == {"ok": True}, "destroy failed")
            check(d.wait() == 0, f"VMM exit status {d.proc.returncode} after destroy")
            st = exit_status(d)
            check(st["reason"] == "destroyed", f"exit-status {st!r}")
            check(d.files() == ["config.json", "console.log", "exit-status", "vmm.log"],
                  f"after exit the domain dir holds {d.files()}")
        finally:
            d.kill()


def case_daemon_startup_errors():
    bad = [
        (config("/nonexistent.elf"), r"kernel /nonexistent\.elf: No such file"),
        (config(guest("hello"), vcpus=2), r"vcpus=2: tandem-vmm runs exactly one vCPU"),
        (config(guest("wrongabi")), r"guest ABI version 999"),
        (config(guest("hello"), memkb=65536 + 1024), r"must be a multiple of 2 MiB"),
        ({"c_info": {"name": "x"}, "b_info": {"kernel": guest("hello")}, "bogus": 1},
         r"config\.json: .*bogus"),
    ]
    for cfg, pattern in bad:
        with tempfile.TemporaryDirectory() as tmp:
            d = Daemon(tmp, cfg)
            try:
                rc = d.wait()
                check(d.ready is not None and d.ready.get("ok") is False,
                      f"ready line {d.ready!r} for {pattern}")
                check(re.search(pattern, d.ready["error"]),
                      f"error {d.ready['error']!r} does not match {pattern!r}")
                check(rc == 1, f"startup failure exit status {rc}, expected 1")
                check(d.files() == ["config.json"],
                      f"startup failure left {d.files()} in the domain dir")
            finally:
                d.kill()


def case_on_crash_preserve():
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp, config(guest("badptr"), on_crash="preserve"))
        try:
            check(d.ready == {"ok": True}, f"ready {d.ready!r}")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                info = d.request({"cmd": "info"})["info"]
                if info["state"] == "crashed":
                    break
                time.sleep(0.1)
            check(info["state"] == "crashed", f"state {info['state']!r}, expected crashed")
            check(info.get("shutdown_reason") == "crash", f"{info!r}")
            r = d.request({"cmd": "pause"})
            check(not r["ok"] and "not running" in r["error"], f"pause of crashed: {r!r}")
            with open(os.path.join(d.dir, "vmm.log")) as f:
                check("bad pointer" in f.read(), "vmm.log does not say why the guest crashed")
            check(d.request({"cmd": "destroy"}) == {"ok": True}, "destroy failed")
            check(d.wait() == 0, "VMM exit status after destroy")
        finally:
            d.kill()


def case_on_crash_destroy():
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp, config(guest("badptr"), on_crash="destroy"))
        try:
            check(d.ready == {"ok": True}, f"ready {d.ready!r}")
            check(d.wait() == 0, f"VMM exit status {d.proc.returncode}")
            st = exit_status(d)
            check(st["reason"] == "crash" and "bad pointer" in st["message"], f"{st!r}")
            check("control.sock" not in d.files() and "vmm.pid" not in d.files(),
                  f"left {d.files()}")
        finally:
            d.kill()


def case_on_reboot_restart():
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp, config(guest("hello"), "halt=reboot", on_reboot="restart"))
        try:
            check(d.ready == {"ok": True}, f"ready {d.ready!r}")
            time.sleep(1.0)
            with open(os.path.join(d.dir, "console.log")) as f:
                boots = f.read().count("Hello from a Tandem guest!")
            check(boots >= 2, f"guest booted {boots} times in 1 s with on_reboot=restart")
            info = d.request({"cmd": "info"})["info"]
            check(info["domid"] == 7, "domid changed across restart")
            check(d.request({"cmd": "destroy"}) == {"ok": True}, "destroy failed")
            check(d.wait() == 0, "VMM exit status after destroy")
        finally:
            d.kill()


def case_poweroff_exit_status():
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp, config(guest("hello"), "code=5"))
        try:
            check(d.wait() == 0, f"VMM exit status {d.proc.returncode}")
            st = exit_status(d)
            check(st == {"reason": "poweroff", "code": 5, "message": ""}, f"{st!r}")
            with open(os.path.join(d.dir, "console.log")) as f:
                check(f.read().rstrip().endswith("SUCCESS"), "console.log lacks SUCCESS")
        finally:
            d.kill()


def case_hammer_control():
    """A guest that hammers hypercalls must not starve the control socket."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp, config(guest("hammer")))
        try:
            check(d.ready == {"ok": True}, f"ready {d.ready!r}")
            time.sleep(0.5)
            worst = 0.0
            for i in range(10):
                t0 = time.monotonic()
                check(d.request({"cmd": "pause"}) == {"ok": True}, "pause failed")
                worst = max(worst, time.monotonic() - t0)
                info1 = d.request({"cmd": "info"})["info"]
                check(info1["state"] == "paused", f"state {info1['state']} after pause")
                time.sleep(0.05)
                info2 = d.request({"cmd": "info"})["info"]
                check(info2["cpu_time_ns"] == info1["cpu_time_ns"],
                      "vCPU time advanced while paused")
                t0 = time.monotonic()
                check(d.request({"cmd": "unpause"}) == {"ok": True}, "unpause failed")
                worst = max(worst, time.monotonic() - t0)
                time.sleep(0.05)
            check(worst < 1.0, f"slowest pause/unpause took {worst:.3f} s")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                with open(os.path.join(d.dir, "console.log")) as f:
                    if "hammer: 5000 calls" in f.read():
                        break
                time.sleep(0.2)
            else:
                raise Fail("the hammer guest made no progress in 15 s")
            t0 = time.monotonic()
            check(d.request({"cmd": "destroy"}) == {"ok": True}, "destroy failed")
            check(d.wait() == 0, f"VMM exit status {d.proc.returncode}")
            check(time.monotonic() - t0 < 2.0, "destroy of a hammering guest took over 2 s")
            check(exit_status(d)["reason"] == "destroyed", "exit-status reason")
        finally:
            d.kill()


def case_statecheck_pause():
    """Registers, memory and clock stay consistent across many pause/unpause cycles."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp, config(guest("statecheck"), "mem=8"))
        try:
            check(d.ready == {"ok": True}, f"ready {d.ready!r}")
            cycles = 0
            end = time.monotonic() + 8
            while time.monotonic() < end:
                time.sleep(0.1 + 0.2 * (cycles % 3) / 2)
                check(d.request({"cmd": "pause"}) == {"ok": True}, "pause failed")
                time.sleep(0.02 * (cycles % 4))
                check(d.request({"cmd": "unpause"}) == {"ok": True}, "unpause failed")
                cycles += 1
            time.sleep(1.2)
            info = d.request({"cmd": "info"})["info"]
            check(info["state"] == "running", f"state {info['state']} (crashed on a mismatch?)")
            with open(os.path.join(d.dir, "console.log")) as f:
                log = f.read()
            check("MISMATCH" not in log, f"statecheck mismatch after {cycles} pauses: {log[-800:]}")
            check(log.count("register checks, ok") >= 5, f"too little progress: {log[-500:]!r}")
            check(d.request({"cmd": "destroy"}) == {"ok": True}, "destroy failed")
            check(d.wait() == 0, "VMM exit status after destroy")
        finally:
            d.kill()


def case_console_cap():
    """A guest flooding its console cannot fill the disk: console.log stops at 128 MiB."""
    cap = 128 << 20
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp, config(guest("flood"), "mb=160"))
        try:
            check(d.ready == {"ok": True}, f"ready {d.ready!r}")
            check(d.wait(timeout=50) == 0, f"VMM exit status {d.proc.returncode}")
            st = exit_status(d)
            check(st["reason"] == "poweroff" and st["code"] == 0, f"flood guest: {st!r}")
            path = os.path.join(d.dir, "console.log")
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                f.seek(cap - 64)
                tail = f.read()
            marker = b"[tandem-vmm: console.log reached 128 MiB"
            check(marker in tail, f"no cap marker at the end: {tail[-200:]!r}")
            check(cap < size < cap + 200, f"console.log is {size} bytes, cap {cap}")
        finally:
            d.kill()


def case_sigterm():
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp, config(guest("hammer")))
        try:
            check(d.ready == {"ok": True}, f"ready {d.ready!r}")
            time.sleep(0.3)
            d.proc.send_signal(signal.SIGTERM)
            check(d.wait() == 0, f"VMM exit status {d.proc.returncode} after SIGTERM")
            check(exit_status(d)["reason"] == "destroyed", "exit-status after SIGTERM")
            check("control.sock" not in d.files(), "control.sock left behind")
        finally:
            d.kill()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    ARGS = ap.parse_args()
    if not os.path.exists("/dev/kvm"):
        print("skip: /dev/kvm is missing")
        return 77
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("skip: /dev/kvm is not accessible to this user")
        return 77
    try:
        CASES[ARGS.case]()
    except Fail as e:
        print(f"FAIL {ARGS.case}: {e}")
        return 1
    except subprocess.TimeoutExpired as e:
        print(f"FAIL {ARGS.case}: timed out: {e}")
        return 1
    print(f"PASS {ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
