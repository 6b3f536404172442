#!/usr/bin/env python3
"""Checkpoint engine tests at the VMM level: `save` over the control socket, `--restore-fd` into a fresh VMM.

Usage: save_test.py --vmm PATH --guests DIR CASE
Exit 0 = pass, 77 = skip (no usable /dev/kvm), anything else = fail.
"""
import argparse
import array
import json
import os
import re
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


def config(kernel, cmdline="", memkb=65536, name="stest"):
    return {"c_info": {"name": name, "uuid": "6a1f2b3c-4d5e-4f60-8172-8394a5b6c7d9"},
            "b_info": {"max_vcpus": 1, "max_memkb": memkb, "target_memkb": memkb,
                       "kernel": kernel, "cmdline": cmdline}}


class Vmm:
    """A daemon-mode tandem-vmm in its own folder, booted or restored from a stream file."""

    def __init__(self, tmp, sub, cfg, domid=7, restore=None, paused=False):
        self.dir = os.path.join(tmp, sub)
        os.mkdir(self.dir)
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        r, w = os.pipe()
        cmd = [ARGS.vmm, "--domain-dir", self.dir, "--domid", str(domid), "--ready-fd", str(w)]
        fds = [w]
        rfd = None
        if restore is not None:
            rfd = os.open(restore, os.O_RDONLY)
            cmd += ["--restore-fd", str(rfd)]
            fds.append(rfd)
        if paused:
            cmd.append("--paused")
        self.proc = subprocess.Popen(cmd, pass_fds=fds, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        os.close(w)
        if rfd is not None:
            os.close(rfd)
        with os.fdopen(r) as rf:
            line = rf.readline()
        self.ready = json.loads(line) if line else None

    def request(self, obj, timeout=10.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(timeout)
        try:
            s.connect(os.path.join(self.dir, "control.sock"))
            s.send(json.dumps(obj).encode())
            return json.loads(s.recv(65536).decode())
        finally:
            s.close()

    def save(self, path, timeout=120.0, **opts):
        """Send `save` with the file as the stream; returns (final reply, progress messages)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(timeout)
        progress = []
        try:
            s.connect(os.path.join(self.dir, "control.sock"))
            req = dict(cmd="save", **opts)
            s.sendmsg([json.dumps(req).encode()],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
            os.close(fd)
            fd = -1
            while True:
                msg = json.loads(s.recv(65536).decode())
                if "progress" in msg:
                    progress.append(msg["progress"])
                    continue
                return msg, progress
        finally:
            if fd >= 0:
                os.close(fd)
            s.close()

    def console(self):
        with open(os.path.join(self.dir, "console.log"), errors="replace") as f:
            return f.read()

    def destroy(self):
        if self.proc.poll() is None:
            try:
                self.request({"cmd": "destroy"})
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for(fn, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if fn():
            return
        time.sleep(0.1)
    raise Fail(f"timed out waiting for {what}")


def statecheck_rounds(text):
    return [int(m) for m in re.findall(r"statecheck: (\d+) rounds, \d+ register checks, ok", text)]


def run_statecheck(live):
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "image")
        a = Vmm(tmp, "a", config(guest("statecheck"), "mem=8"))
        b = None
        try:
            check(a.ready == {"ok": True}, f"ready {a.ready!r}")
            wait_for(lambda: len(statecheck_rounds(a.console())) >= 2, 20, "statecheck progress")
            reply, prog = a.save(img, live=live, downtime_ms=50, max_iters=10)
            check(reply.get("ok") is True, f"save failed: {reply!r}")
            st = reply["stats"]
            for k in ("total_ms", "downtime_ms", "bytes", "pages", "iterations"):
                check(k in st, f"stats lack {k}: {st!r}")
            check(st["bytes"] == os.path.getsize(img), f"stats bytes {st['bytes']} != file size")
            check(prog and all("phase" in p for p in prog), f"progress messages {prog[:3]!r}")
            if live:
                check(any(p["phase"] == "precopy" for p in prog), "no precopy progress")
            check(a.request({"cmd": "info"})["info"]["state"] == "paused",
                  "domain not left paused after save")
            before = statecheck_rounds(a.console())[-1]
            a.destroy()
            # Restore into a fresh VMM process.
            b = Vmm(tmp, "b", config(guest("statecheck"), "mem=8"), domid=8, restore=img)
            check(b.ready == {"ok": True}, f"restore ready {b.ready!r}")
            check(b.request({"cmd": "info"})["info"]["state"] == "paused",
                  "restored domain not paused")
            check(b.request({"cmd": "unpause"}) == {"ok": True}, "unpause failed")
            wait_for(lambda: len(statecheck_rounds(b.console())) >= 3, 20,
                     "statecheck progress after restore")
            text = b.console()
            check("MISMATCH" not in text, f"statecheck mismatch after restore: {text[-800:]}")
            after = statecheck_rounds(text)
            check(after[0] >= before, f"rounds went back: {before} before, {after[0]} after")
            check(b.request({"cmd": "info"})["info"]["state"] == "running", "not running")
        finally:
            a.kill()
            if b:
                b.kill()


def case_save_statecheck():
    """Non-live save, restore into a fresh VMM: registers, memory and clock continue."""
    run_statecheck(False)


def case_save_statecheck_live():
    """Live pre-copy save while statecheck rewrites its memory, restore into a fresh VMM."""
    run_statecheck(True)


def ticks(text):
    return [float(m) for m in re.findall(r"guest time (\d+\.\d+) s", text)]


def case_save_ticker():
    """Guest time stays monotonic across save + restore, and continues from the captured time."""
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "image")
        a = Vmm(tmp, "a", config(guest("ticker"), "count=1000"))
        b = None
        try:
            check(a.ready == {"ok": True}, f"ready {a.ready!r}")
            wait_for(lambda: len(ticks(a.console())) >= 2, 10, "ticks")
            reply, _ = a.save(img)
            check(reply.get("ok") is True, f"save failed: {reply!r}")
            last = ticks(a.console())[-1]
            a.destroy()
            time.sleep(1.5)  # guest time must not include this gap
            b = Vmm(tmp, "b", config(guest("ticker"), "count=1000"), domid=8, restore=img)
            check(b.ready == {"ok": True}, f"restore ready {b.ready!r}")
            b.request({"cmd": "unpause"})
            wait_for(lambda: len(ticks(b.console())) >= 2, 10, "ticks after restore")
            t = ticks(b.console())
            check(all(x < y for x, y in zip(t, t[1:])), f"ticks not monotonic: {t}")
            check(t[0] > last, f"guest time went back: {last} before, {t[0]} after")
            check(t[0] < last + 1.4, f"guest time jumped over the saved gap: {last} -> {t[0]}")
        finally:
            a.kill()
            if b:
                b.kill()


def case_save_size():
    """Only touched pages are written: a 1 GiB idle guest's image is small."""
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "image")
        a = Vmm(tmp, "a", config(guest("ticker"), "count=1000", memkb=1 << 20))
        try:
            check(a.ready == {"ok": True}, f"ready {a.ready!r}")
            wait_for(lambda: len(ticks(a.console())) >= 1, 10, "ticks")
            reply, _ = a.save(img)
            check(reply.get("ok") is True, f"save failed: {reply!r}")
            size = os.path.getsize(img)
            check(size < 8 << 20, f"image of an idle 1 GiB guest is {size} bytes")
            check(a.request({"cmd": "unpause"}) == {"ok": True}, "unpause failed")
            reply, _ = a.save(img, live=True, leave_running=True)
            check(reply.get("ok") is True, f"live save failed: {reply!r}")
            check(os.path.getsize(img) < 8 << 20, "live image too big")
            check(a.request({"cmd": "info"})["info"]["state"] == "running",
                  "leave_running left the domain paused")
        finally:
            a.kill()


def case_save_bandwidth():
    """bandwidth_mbps caps the stream rate; compression shrinks a guest's mostly-code image."""
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "image")
        a = Vmm(tmp, "a", config(guest("statecheck"), "mem=8"))
        try:
            check(a.ready == {"ok": True}, f"ready {a.ready!r}")
            wait_for(lambda: len(statecheck_rounds(a.console())) >= 1, 20, "statecheck progress")
            reply, _ = a.save(img, leave_running=True)
            check(reply.get("ok") is True, f"save failed: {reply!r}")
            free_ms = reply["stats"]["total_ms"]
            nbytes = reply["stats"]["bytes"]
            reply, _ = a.save(img, leave_running=True, bandwidth_mbps=20)
            check(reply.get("ok") is True, f"capped save failed: {reply!r}")
            want_ms = nbytes / 20e6 * 1000 * 0.8
            check(reply["stats"]["total_ms"] >= want_ms,
                  f"20 MB/s cap: {nbytes} bytes in {reply['stats']['total_ms']} ms "
                  f"(uncapped {free_ms} ms)")
            reply, _ = a.save(img, leave_running=True, compression="zstd")
            check(reply.get("ok") is True, f"zstd save failed: {reply!r}")
            check(reply["stats"]["bytes"] < nbytes, "zstd did not shrink the image")
            reply, _ = a.save(img, compression="bogus")
            check(reply.get("ok") is False and "compression" in reply["error"],
                  f"bad compression accepted: {reply!r}")
            check(a.request({"cmd": "info"})["info"]["state"] == "running", "not running")
        finally:
            a.kill()


def case_save_fail_resumes():
    """A stream that breaks mid-save: the error names the phase, the domain keeps running."""
    with tempfile.TemporaryDirectory() as tmp:
        a = Vmm(tmp, "a", config(guest("statecheck"), "mem=8"))
        try:
            check(a.ready == {"ok": True}, f"ready {a.ready!r}")
            r, w = os.pipe()
            os.close(r)  # nobody reads: the first write fails (EPIPE)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.settimeout(30)
            s.connect(os.path.join(a.dir, "control.sock"))
            s.sendmsg([json.dumps({"cmd": "save", "live": True}).encode()],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))])
            os.close(w)
            while True:
                msg = json.loads(s.recv(65536).decode())
                if "progress" not in msg:
                    break
            s.close()
            check(msg.get("ok") is False, f"save into a closed pipe succeeded: {msg!r}")
            check(re.search(r"save failed in phase \w+ after \d+ bytes", msg["error"]),
                  f"error lacks phase and bytes: {msg['error']!r}")
            check(a.request({"cmd": "info"})["info"]["state"] == "running",
                  "domain not resumed after a failed save")
            n = len(statecheck_rounds(a.console()))
            wait_for(lambda: len(statecheck_rounds(a.console())) > n, 10, "progress after failure")
            check("MISMATCH" not in a.console(), "mismatch after a failed save")
            reply = a.request({"cmd": "save"})
            check(reply.get("ok") is False and "exactly one" in reply["error"],
                  f"save without an fd: {reply!r}")
        finally:
            a.kill()


def case_save_concurrent():
    """During a slow save the VMM still answers info, refuses pause, and destroy cancels the save."""
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "image")
        a = Vmm(tmp, "a", config(guest("statecheck"), "mem=8"))
        try:
            check(a.ready == {"ok": True}, f"ready {a.ready!r}")
            fd = os.open(img, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.settimeout(30)
            s.connect(os.path.join(a.dir, "control.sock"))
            # ~10 MB at 1 MB/s: about 10 s.
            s.sendmsg([json.dumps({"cmd": "save", "live": True, "bandwidth_mbps": 1}).encode()],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
            os.close(fd)
            json.loads(s.recv(65536).decode())  # first progress message: the save runs
            t0 = time.monotonic()
            info = a.request({"cmd": "info"}, timeout=2)
            check(info.get("ok") is True, f"info during a save: {info!r}")
            check(time.monotonic() - t0 < 1.0, "info waited for the save")
            r = a.request({"cmd": "pause"}, timeout=2)
            check(r.get("ok") is False and "in progress" in r["error"], f"pause during save: {r!r}")
            r = a.request({"cmd": "save"}, timeout=2)
            check(r.get("ok") is False and "in progress" in r["error"], f"second save: {r!r}")
            t0 = time.monotonic()
            check(a.request({"cmd": "destroy"}, timeout=5) == {"ok": True}, "destroy refused")
            while True:
                msg = json.loads(s.recv(65536).decode())
                if "progress" not in msg:
                    break
            check(msg.get("ok") is False and "cancelled" in msg["error"],
                  f"save not cancelled by destroy: {msg!r}")
            check(a.proc.wait(timeout=10) == 0, f"VMM exit {a.proc.returncode}")
            check(time.monotonic() - t0 < 3.0, f"destroy took {time.monotonic() - t0:.1f} s")
            with open(os.path.join(a.dir, "exit-status")) as f:
                check(json.load(f)["reason"] == "destroyed", "exit-status reason")
        finally:
            a.kill()


def case_save_requester_gone():
    """The requester closes its connection mid-save: the save stops and the domain keeps running."""
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "image")
        a = Vmm(tmp, "a", config(guest("statecheck"), "mem=8"))
        try:
            check(a.ready == {"ok": True}, f"ready {a.ready!r}")
            fd = os.open(img, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.settimeout(30)
            s.connect(os.path.join(a.dir, "control.sock"))
            s.sendmsg([json.dumps({"cmd": "save", "bandwidth_mbps": 1}).encode()],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
            os.close(fd)
            json.loads(s.recv(65536).decode())
            s.close()  # like a killed `tandem save`
            wait_for(lambda: a.request({"cmd": "info"}, timeout=2)["info"]["state"] == "running",
                     5, "the domain to run again")
            with open(os.path.join(a.dir, "vmm.log")) as f:
                log = f.read()
            check("requester closed its control connection" in log, f"vmm.log: {log[-500:]}")
        finally:
            a.kill()


def corrupt_variants(data):
    """(name, bytes) pairs of damaged streams: one flipped byte inside each record, and more."""
    out = [("wrong magic", b"X" + data[1:]),
           ("truncated", data[: len(data) // 2]),
           ("future version", None)]
    # Walk the records: header is 32 bytes? Find it from the format: records start after header.
    hlen = 32
    off, n = hlen, 0
    while off + 16 <= len(data):
        rtype, length = struct.unpack_from("<II", data, off)
        body = (length + 7) & ~7
        flip = off + 16 + min(length, 40) // 2 if length else off + 4
        bad = bytearray(data)
        bad[flip] ^= 0x5A
        out.append((f"flipped byte in record {n + 1} (type {rtype})", bytes(bad)))
        off += 16 + body
        n += 1
        if rtype == 8:
            break
    return out


def case_save_corrupt():
    """Damaged images are refused with a message naming offset and record; the VMM leaves nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "image")
        a = Vmm(tmp, "a", config(guest("ticker"), "count=1000"))
        try:
            check(a.ready == {"ok": True}, f"ready {a.ready!r}")
            reply, _ = a.save(img)
            check(reply.get("ok") is True, f"save failed: {reply!r}")
        finally:
            a.kill()
        data = open(img, "rb").read()
        i = 0
        for name, bad in corrupt_variants(data):
            if bad is None:
                continue
            path = os.path.join(tmp, f"bad{i}")
            with open(path, "wb") as f:
                f.write(bad)
            b = Vmm(tmp, f"b{i}", config(guest("ticker"), "count=1000"), domid=9, restore=path)
            try:
                check(b.ready and b.ready.get("ok") is False, f"{name}: accepted ({b.ready!r})")
                msg = b.ready["error"]
                if name != "wrong magic":
                    check(re.search(r"offset \d+", msg) and re.search(r"record \d+", msg),
                          f"{name}: message does not name offset and record: {msg!r}")
                check(b.proc.wait(timeout=10) == 1, f"{name}: VMM exit {b.proc.returncode}")
                left = sorted(os.listdir(b.dir))
                check(left == ["config.json"], f"{name}: VMM left {left}")
            finally:
                b.kill()
            i += 1
        check(i >= 8, f"only {i} damaged variants tried")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    ARGS = ap.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("skip: /dev/kvm is not usable")
        return 77
    try:
        CASES[ARGS.case]()
    except Fail as e:
        print(f"FAIL {ARGS.case}: {e}")
        return 1
    print(f"ok {ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
