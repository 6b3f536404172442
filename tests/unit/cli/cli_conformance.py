#!/usr/bin/env python3
"""Xen's own disk and vif parser cases, run through `tandem -N block-attach`
and `tandem -N network-attach` exactly as xl's check script runs xl:
exit status, and stdout byte for byte where the case gives it.

usage: cli_conformance.py TANDEM CONFORMANCE_DIR
"""
import json
import os
import subprocess
import sys


def main():
    tandem, cdir = sys.argv[1], sys.argv[2]
    files = {"disk": "xl-disk-cases.json", "vif": "xl-vif-cases.json"}
    if not all(os.path.exists(os.path.join(cdir, f)) for f in files.values()):
        print(f"conformance cases not found in {cdir}")
        return 77
    failures = total = 0
    for kind, fname in files.items():
        with open(os.path.join(cdir, fname)) as f:
            cases = json.load(f)
        for case in cases:
            total += 1
            words = case["specs"] if "specs" in case else [case["spec"]]
            cmd = "block-attach" if kind == "disk" else "network-attach"
            p = subprocess.run([tandem, "-N", cmd, "0"] + words, capture_output=True, text=True)
            want_rc = case["rc"]
            problem = None
            if (p.returncode != 0) != (want_rc != 0):
                problem = f"exit {p.returncode}, want {want_rc}"
            elif want_rc != 0 and not p.stderr.strip():
                problem = "failed without a message on stderr"
            elif want_rc != 0 and p.stdout:
                problem = f"failed but printed to stdout: {p.stdout!r}"
            elif "stdout_exact" in case and p.stdout != case["stdout_exact"]:
                problem = f"stdout {p.stdout!r}, want {case['stdout_exact']!r}"
            if problem:
                failures += 1
                print(f"FAIL {kind} {words!r}: {problem}; stderr: {p.stderr.strip()}")
    print(f"{total - failures}/{total} conformance cases pass through the CLI")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
