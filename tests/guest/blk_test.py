#!/usr/bin/env python3
"""Block device guest tests: the blktest guest under tandem-vmm --disk (direct mode).

Usage: blk_test.py --vmm PATH --guests DIR CASE
Exit 0 = pass, 77 = skip (no usable /dev/kvm), anything else = fail.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ARGS = None


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def vmm(disk, cmdline="", timeout=60):
    cmd = [ARGS.vmm, "--kernel", os.path.join(ARGS.guests, "blktest.elf"), "--cmdline", cmdline]
    if disk:
        cmd += ["--disk", disk]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def expect_success(p, what):
    check(p.returncode == 0, f"{what}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    check(p.stdout.rstrip().endswith("SUCCESS"), f"{what}: no SUCCESS in {p.stdout[-800:]!r}")


def expect_refused(p, pattern, what):
    check(p.returncode == 1, f"{what}: exit {p.returncode}, expected 1; {p.stderr!r}")
    err = p.stderr.strip()
    check(re.search(pattern, err), f"{what}: message {err!r} does not match {pattern!r}")
    check(len(err.splitlines()) == 1, f"{what}: expected one message line, got {err!r}")
    check(p.stdout == "", f"{what}: guest ran despite the refusal: {p.stdout!r}")


def case_blk_roundtrip(tmp):
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    spec = f"{img},raw,xvda,rw"
    # The per-request hypercalls (tg_rings=0) and the ring must agree on everything.
    expect_success(vmm(spec, "seed=6 tg_blk_ring=1"), "write+verify over the ring")
    expect_success(vmm(spec, "seed=6 mode=verify tg_blk_ring=0"), "verify over hypercalls")
    p = vmm(spec, "seed=7")  # write, flush, read back, and the bad requests (paths chosen by speed)
    expect_success(p, "write+verify")
    check("disk xvda handle 0 capacity 8388608 sector 512 flags 0" in p.stdout,
          f"boot-info entry wrong: {p.stdout!r}")
    # A new VMM process sees what the first one flushed.
    expect_success(vmm(spec, "seed=7 mode=verify"), "verify after VMM restart")
    expect_success(vmm(spec, "seed=7 mode=verify tg_blk_ring=1"), "verify over the ring")
    p = vmm(spec, "seed=7 tg_blk_ring=1")  # the bad requests through the ring
    expect_success(p, "write+verify+bad requests over the ring")
    # ...and the checker can fail: another seed's pattern is not there.
    p = vmm(spec, "seed=8 mode=verify")
    check(p.returncode != 0 and "differs from seed 8" in p.stdout,
          f"verify with the wrong seed passed: {p.stdout!r}")
    # The data is in the file where the guest put it (byte 8 of sector 0 = offset 8 ^ seed<<40).
    with open(img, "rb") as f:
        head = f.read(16)
    check(int.from_bytes(head[8:16], "little") == (7 << 40) ^ 8,
          f"image bytes {head.hex()} are not the guest's pattern")


def case_blk_readonly(tmp):
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    expect_success(vmm(f"{img},raw,xvda,rw", "seed=3 mode=write"), "write")
    os.chmod(img, 0o444)  # read-only opens need no write permission
    before = open(img, "rb").read()
    expect_success(vmm(f"{img},raw,xvda,ro", "seed=3 mode=ro"), "read-only")
    check(open(img, "rb").read() == before, "read-only disk changed")


def case_blk_bad_disks(tmp):
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    missing = os.path.join(tmp, "missing.img")
    expect_refused(vmm(f"{missing},raw,xvda,rw"),
                   rf"disk xvda: cannot open {re.escape(missing)}.*No such file", "missing")
    expect_refused(vmm(f"{img},qcow2,xvdb,rw"),
                   r"disk xvdb: format 'qcow2' is not supported, only raw", "qcow2")
    expect_refused(vmm(f"{img},vhd,xvdc,rw"),
                   r"disk xvdc: format 'vhd' is not supported, only raw", "vhd")
    expect_refused(vmm(f"{tmp},raw,xvda,ro"),
                   r"disk xvda: .* neither a regular file nor a block device", "directory")
    small = os.path.join(tmp, "small.img")
    with open(small, "wb") as f:
        f.write(b"x" * 100)
    expect_refused(vmm(f"{small},raw,xvda,rw"), r"disk xvda: .* smaller than one 512-byte sector",
                   "tiny image")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("case")
    ARGS = ap.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("skip: /dev/kvm is not usable here")
        return 77
    fn = globals().get("case_" + ARGS.case)
    if not fn:
        print(f"unknown case {ARGS.case}")
        return 2
    with tempfile.TemporaryDirectory(prefix="tandem-blk-") as tmp:
        try:
            fn(tmp)
        except Fail as e:
            print(f"FAIL: {e}")
            return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
