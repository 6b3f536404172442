#!/usr/bin/env python3
"""bench_save: tandem save / restore of guests with random-filled memory, against raw sequential
write/read of the same bytes and, when qemu-system-x86_64 is installed, QEMU's migrate-to-file.

Usage: bench_save.py BUILD [SIZE_MIB...]   (default sizes 256 1024 4096)
Needs /dev/kvm and the plain build's guest images; prints "skipped: ..." otherwise.

Method, per size S:
- `tandem create -p` of the ticker guest with S MiB (paused: it never runs), then the bench
  writes random bytes (a 64 MiB block from os.urandom, repeated) into the guest RAM from
  16 MiB to S-2 MiB through the VMM's memfd (/proc/PID/fd), so nearly every page must be sent;
- save: wall time of `tandem save -c DOM FILE` (includes the CLI's fsync); restore: wall time of
  `tandem restore -p FILE` (validates the whole image, then the VMM reads it; page cache hot);
- raw baselines: write the image's byte count from memory to a file + fsync; read it back
  sequentially (page cache hot, as for the restore); measured right after the save while the
  domain still holds its RAM, so both see the same memory pressure (dirty-page throttling);
- QEMU (TCG, paused, -S): RAM is a shared memory-backend-file filled with the same bytes;
  `migrate exec:cat>FILE` with max-bandwidth raised, then `-incoming exec:cat FILE`.
Ratios > 1 mean tandem takes longer than the baseline.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BLOCK = 64 << 20


def sh(cmd, env=None, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def fill(fd_path, start, end, block):
    with open(fd_path, "r+b", buffering=0) as f:
        f.seek(start)
        off = start
        while off < end:
            n = min(len(block), end - off)
            f.write(block[:n])
            off += n


def raw_write_read(path, nbytes, block):
    t0 = time.monotonic()
    with open(path, "wb", buffering=0) as f:
        left = nbytes
        while left > 0:
            n = min(len(block), left)
            f.write(block[:n])
            left -= n
        os.fsync(f.fileno())
    tw = time.monotonic() - t0
    t0 = time.monotonic()
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass
    tr = time.monotonic() - t0
    os.unlink(path)
    return tw, tr


class Qmp:
    def __init__(self, path):
        for _ in range(100):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.f = self.s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r


def qemu_bench(qemu, size_mib, tmp, block):
    ram = os.path.join("/dev/shm", f"bench-save-qemu-{os.getpid()}")
    img = os.path.join(tmp, "qemu.img")
    with open(ram, "wb") as f:
        f.truncate(size_mib << 20)
    fill(ram, 16 << 20, (size_mib - 2) << 20, block)
    base = [qemu, "-machine", "pc,memory-backend=mem", "-accel", "tcg", "-m", f"{size_mib}M",
            "-object", f"memory-backend-file,id=mem,size={size_mib}M,mem-path={ram},share=on",
            "-nodefaults", "-display", "none", "-S"]
    try:
        qs = os.path.join(tmp, "q1.sock")
        p = subprocess.Popen(base + ["-qmp", f"unix:{qs},server=on,wait=off"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        q = Qmp(qs)
        q.cmd("migrate-set-parameters", **{"max-bandwidth": 100 << 30})
        t0 = time.monotonic()
        # "completed" means QEMU has handed everything to cat; wait until cat has written it.
        q.cmd("migrate", uri=f"exec:cat > {img} && touch {img}.done")
        while q.cmd("query-migrate")["return"].get("status") not in ("completed", "failed"):
            time.sleep(0.005)
        while not os.path.exists(img + ".done"):
            time.sleep(0.002)
        with open(img, "rb") as f:
            os.fsync(f.fileno())
        t_save = time.monotonic() - t0
        p.kill()
        p.wait()
        qs = os.path.join(tmp, "q2.sock")
        t0 = time.monotonic()
        p = subprocess.Popen(base + ["-qmp", f"unix:{qs},server=on,wait=off",
                                     "-incoming", f"exec:cat {img}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        q = Qmp(qs)
        while q.cmd("query-migrate")["return"].get("status") not in ("completed", "failed"):
            time.sleep(0.005)
        t_restore = time.monotonic() - t0
        p.kill()
        p.wait()
        return t_save, t_restore, os.path.getsize(img)
    finally:
        for f in (ram, img, img + ".done"):
            if os.path.exists(f):
                os.unlink(f)


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    sizes = [int(x) for x in sys.argv[2:]] or [256, 1024, 4096]
    tandem = os.path.join(build, "cli", "tandem")
    vmm = os.path.join(build, "vmm", "tandem-vmm")
    kernel = os.path.join(build, "guest", "ticker.elf")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or not os.path.exists(kernel):
        print("skipped: /dev/kvm or the guest images are missing")
        return 0
    qemu = shutil.which("qemu-system-x86_64")
    block = os.urandom(BLOCK)
    print(f"{'MiB':>5} {'image MB':>9} {'save s':>7} {'MB/s':>7} {'raw wr s':>8} {'ratio':>6} "
          f"{'restore s':>9} {'MB/s':>7} {'raw rd s':>8} {'ratio':>6}"
          + (f" {'qemu save s':>11} {'qemu rest s':>11} {'save/q':>7} {'rest/q':>7}" if qemu else ""))
    for size in sizes:
        tmp = tempfile.mkdtemp(prefix="bsave.", dir="/tmp")
        env = dict(os.environ, TANDEM_RUNDIR=os.path.join(tmp, "r"), TANDEM_VMM=vmm,
                   TANDEM_SAVE_TIMEOUT_MS="600000")
        cfg = os.path.join(tmp, "b.cfg")
        with open(cfg, "w") as f:
            f.write(f'name = "bsave"\nmemory = {size}\nvcpus = 1\nkernel = "{kernel}"\n'
                    'cmdline = "count=100000"\n')
        img = os.path.join(tmp, "img")
        try:
            sh([tandem, "create", "-p", cfg], env)
            info = json.loads(sh([tandem, "list", "-l", "bsave"], env).stdout)[0]["info"]
            pid = info["vmm_pid"]
            memfd = next(os.path.join(f"/proc/{pid}/fd", fd) for fd in os.listdir(f"/proc/{pid}/fd")
                         if "tandem-guest-ram" in os.readlink(f"/proc/{pid}/fd/{fd}"))
            fill(memfd, 16 << 20, (size - 2) << 20, block)
            t0 = time.monotonic()
            sh([tandem, "save", "-c", "bsave", img], env)
            t_save = time.monotonic() - t0
            nbytes = os.path.getsize(img)
            # Baseline under the same memory conditions: the domain's RAM is still resident.
            raw_w, raw_r = raw_write_read(os.path.join(tmp, "raw"), nbytes, block)
            sh([tandem, "destroy", "bsave"], env)
            t0 = time.monotonic()
            sh([tandem, "restore", "-p", img], env)
            t_rest = time.monotonic() - t0
            sh([tandem, "destroy", "bsave"], env)
            os.unlink(img)
            mb = nbytes / 1e6
            line = (f"{size:>5} {mb:>9.1f} {t_save:>7.2f} {mb / t_save:>7.0f} {raw_w:>8.2f} "
                    f"{t_save / raw_w:>6.2f} {t_rest:>9.2f} {mb / t_rest:>7.0f} {raw_r:>8.2f} "
                    f"{t_rest / raw_r:>6.2f}")
            if qemu:
                qs, qr, _ = qemu_bench(qemu, size, tmp, block)
                line += f" {qs:>11.2f} {qr:>11.2f} {t_save / qs:>7.2f} {t_rest / qr:>7.2f}"
            print(line, flush=True)
        finally:
            try:
                sh([tandem, "destroy", "bsave"], env, check=False)
            except OSError:
                pass  # the CLI vanished (rebuilt meanwhile): the rundir goes below anyway
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
