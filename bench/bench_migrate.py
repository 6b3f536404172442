#!/usr/bin/env python3
"""bench_migrate: live migration of idle and memdirty guests (256 MiB, 1 GiB, 4 GiB) over loopback TCP
with the PSK transport, against QEMU's own live migration of a same-size VM holding the same bytes.

Usage: bench_migrate.py BUILD [SIZE_MIB...]   (default sizes 256 1024 4096; BENCH_REPEAT=N runs
each case N times and keeps the fastest, default 2)
Needs root or /dev/kvm access and the plain build's guest images; prints "skipped: ..." otherwise.

Method, per size S (both "hosts" are runtime directories on this machine; the stream crosses
127.0.0.1 through `tandem migrate-receive --listen` / `tandem migrate --tcp`):
- idle: the ticker guest, created paused; the bench writes random bytes (one 64 MiB block from
  os.urandom, repeated) into guest RAM from 16 MiB to S-2 MiB through the VMM's memfd, then
  unpauses it, so nearly every page must cross;
- idle+enc: the same with --encrypt (the stream sealed with secretstream);
- memdirty: the memdirty guest (pages=25600/s, 100 MB/s, over a 64 MiB working set), filled the
  same way before it starts;
- reported: total time and downtime from the sender's statistics (the VMM's save: start to END
  written; downtime = guest paused to END written), the gap until the receiver said the domain
  runs, bytes on the wire, pre-copy rounds, throughput = bytes / total time;
- QEMU (TCG, -S paused, same RAM bytes in a shared memory-backend-file, max-bandwidth raised):
  `migrate tcp:127.0.0.1:PORT` to a second QEMU started with -incoming; total = command to
  "completed" on the source, its own downtime and ram.transferred. Ratio = tandem MB/s over QEMU MB/s.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_save import BLOCK, Qmp, fill, sh  # noqa: E402  (same fill and QMP client as bench_save)

FINAL = re.compile(r"total (\d+) ms, downtime ([\d.]+) ms \(paused (\d+) ms.*?\), ([\d.]+) MB, "
                   r"(\d+) pages, (\d+) pre-copy rounds")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tandem_run(tandem, vmm, kernel, cmdline, size, block, tmp, extra=()):
    a = dict(os.environ, TANDEM_RUNDIR=os.path.join(tmp, "a"), TANDEM_VMM=vmm)
    b = dict(os.environ, TANDEM_RUNDIR=os.path.join(tmp, "b"), TANDEM_VMM=vmm)
    key = os.path.join(tmp, "key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    cfg = os.path.join(tmp, "m.cfg")
    with open(cfg, "w") as f:
        f.write(f'name = "bmig"\nmemory = {size}\nvcpus = 1\nkernel = "{kernel}"\n'
                f'cmdline = "{cmdline}"\n')
    try:
        sh([tandem, "create", "-p", cfg], a)
        info = json.loads(sh([tandem, "list", "-l", "bmig"], a).stdout)[0]["info"]
        pid = info["vmm_pid"]
        memfd = next(os.path.join(f"/proc/{pid}/fd", fd) for fd in os.listdir(f"/proc/{pid}/fd")
                     if "tandem-guest-ram" in os.readlink(f"/proc/{pid}/fd/{fd}"))
        fill(memfd, 16 << 20, (size - 2) << 20, block)
        sh([tandem, "unpause", "bmig"], a)
        time.sleep(1.5)
        port = free_port()
        recv = subprocess.Popen([tandem, "migrate-receive", "--listen", f"127.0.0.1:{port}",
                                 "--key-file", key, "--timeout", "60"], env=b,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        t0 = time.monotonic()
        try:
            out = sh([tandem, "migrate", "--tcp", f"127.0.0.1:{port}", "--key-file", key, *extra,
                      "bmig"], a)
        except RuntimeError as e:
            recv.kill()
            raise RuntimeError(f"{e}\nreceiver: {recv.communicate()[1].strip()}") from None
        wall = time.monotonic() - t0
        recv.wait(timeout=60)
        m = FINAL.search(out.stderr)
        if not m:
            raise RuntimeError(f"no statistics in: {out.stderr.strip()}")
        total_ms, down_ms, handover_ms = int(m[1]), float(m[2]), int(m[3])
        mb, rounds = float(m[4]), int(m[6])
        return total_ms, down_ms, handover_ms, mb, rounds, wall
    finally:
        sh([tandem, "destroy", "bmig"], a, check=False)
        sh([tandem, "destroy", "bmig"], b, check=False)


def qemu_run(qemu, size, block, tmp):
    ram = os.path.join("/dev/shm", f"bench-mig-qemu-{os.getpid()}")
    with open(ram, "wb") as f:
        f.truncate(size << 20)
    fill(ram, 16 << 20, (size - 2) << 20, block)
    port = free_port()
    common = [qemu, "-machine", "pc,memory-backend=mem", "-accel", "tcg", "-m", f"{size}M",
              "-nodefaults", "-display", "none", "-S"]
    src = common + ["-object", f"memory-backend-file,id=mem,size={size}M,mem-path={ram},share=on"]
    dstcmd = common + ["-object", f"memory-backend-ram,id=mem,size={size}M"]
    procs = []
    try:
        qd = os.path.join(tmp, "qd.sock")
        procs.append(subprocess.Popen(dstcmd + ["-qmp", f"unix:{qd},server=on,wait=off",
                                                "-incoming", f"tcp:127.0.0.1:{port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        dst = Qmp(qd)
        qs = os.path.join(tmp, "qs.sock")
        procs.append(subprocess.Popen(src + ["-qmp", f"unix:{qs},server=on,wait=off"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        q = Qmp(qs)
        q.cmd("migrate-set-parameters", **{"max-bandwidth": 100 << 30})
        t0 = time.monotonic()
        q.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        while True:
            r = q.cmd("query-migrate")["return"]
            if r.get("status") in ("completed", "failed"):
                break
            time.sleep(0.002)
        total = time.monotonic() - t0
        if r.get("status") != "completed":
            raise RuntimeError(f"qemu migration {r.get('status')}: {r.get('error-desc', '')}")
        while dst.cmd("query-migrate")["return"].get("status") not in ("completed", "failed"):
            time.sleep(0.002)
        return total * 1000, r.get("downtime", 0), r["ram"]["transferred"] / 1e6
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if os.path.exists(ram):
            os.unlink(ram)


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    sizes = [int(x) for x in sys.argv[2:]] or [256, 1024, 4096]
    tandem = os.path.join(build, "cli", "tandem")
    vmm = os.path.join(build, "vmm", "tandem-vmm")
    guests = os.path.join(build, "guest")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or not os.path.exists(
            os.path.join(guests, "memdirty.elf")):
        print("skipped: /dev/kvm or the guest images are missing")
        return 0
    qemu = shutil.which("qemu-system-x86_64")
    repeat = max(1, int(os.environ.get("BENCH_REPEAT", "2")))
    block = os.urandom(BLOCK)
    print(f"best of {repeat} runs each (the machine is shared; BENCH_REPEAT=N for more)")
    print(f"{'MiB':>5} {'guest':>8} {'total ms':>8} {'down ms':>8} {'run ms':>6} {'MB':>8} "
          f"{'rounds':>6} {'MB/s':>7}"
          + (f" {'qemu ms':>8} {'qemu dn':>7} {'qemu MB':>8} {'qemu MB/s':>9} {'x qemu':>6}"
             if qemu else ""))
    for size in sizes:
        qline = ""
        qrate = None
        if qemu:
            best = None
            for _ in range(repeat):
                tmp = tempfile.mkdtemp(prefix="bmigq.", dir="/tmp")
                try:
                    r = qemu_run(qemu, size, block, tmp)
                    if best is None or r[0] < best[0]:
                        best = r
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            q_ms, q_down, q_mb = best
            qrate = q_mb / (q_ms / 1000)
            qline = f" {q_ms:>8.0f} {q_down:>7} {q_mb:>8.1f} {qrate:>9.0f}"
        for name, kernel, cmdline, extra in (
                ("idle", "ticker.elf", "count=100000", ()),
                ("idle+enc", "ticker.elf", "count=100000", ("--encrypt",)),
                ("memdirty", "memdirty.elf", "pages=25600 mem=64 report=1000", ())):
            best = None
            for _ in range(repeat):
                tmp = tempfile.mkdtemp(prefix="bmig.", dir="/tmp")
                try:
                    r = tandem_run(tandem, vmm, os.path.join(guests, kernel), cmdline, size,
                                   block, tmp, extra)
                    if best is None or r[0] < best[0]:
                        best = r
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            total, down, handover, mb, rounds, _ = best
            rate = mb / (total / 1000) if total else 0
            line = (f"{size:>5} {name:>8} {total:>8} {down:>8.3f} {handover:>6} {mb:>8.1f} "
                    f"{rounds:>6} {rate:>7.0f}")
            if qemu:
                line += qline + (f" {rate / qrate:>6.2f}" if qrate else "")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
