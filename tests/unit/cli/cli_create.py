#!/usr/bin/env python3
"""`tandem -N create` and CLI behaviour that needs no hypervisor: the example
configs print sensible JSON, bad configs give one line naming file, line and
problem, help and usage are truthful.

usage: cli_create.py TANDEM SOURCE_ROOT
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL {what}")


def run(tandem, *args):
    return subprocess.run([tandem, *args], capture_output=True, text=True)


def main():
    tandem, root = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.chdir(root)
    examples = sorted(glob.glob("examples/*.cfg"))
    check(examples, "examples/*.cfg exist")
    for ex in examples:
        p = run(tandem, "-N", "create", ex)
        check(p.returncode == 0, f"-N create {ex} exits 0 ({p.stderr.strip()})")
        if p.returncode == 0:
            d = json.loads(p.stdout)
            check(d["c_info"]["name"], f"{ex}: has a name")
            check(os.path.isabs(d["b_info"]["kernel"]), f"{ex}: kernel path is absolute")
            check(d["b_info"]["target_memkb"] > 0, f"{ex}: memory set")

    with tempfile.TemporaryDirectory() as tmp:
        def cfg(text):
            path = os.path.join(tmp, "bad.cfg")
            with open(path, "w") as f:
                f.write(text)
            return path

        path = cfg("name = 'x'\nkernel = '/k'\nmemory = [1,\n")
        p = run(tandem, "-N", "create", path)
        check(p.returncode == 1, "syntax error exits 1")
        lines = p.stderr.strip().splitlines()
        check(len(lines) == 1, f"syntax error is one line: {p.stderr!r}")
        check(lines and lines[0].startswith(f"tandem: {path}:") and
              "config parsing error near" in lines[0], f"syntax error names file and line: {p.stderr!r}")

        path = cfg("name = 'x'\nkernel = '/k'\nmemory = 0\n")
        p = run(tandem, "-N", "create", path)
        check(p.returncode == 1 and f"{path}:3: memory:" in p.stderr,
              f"bad memory names file:line:option: {p.stderr!r}")

        path = cfg("name = 'x'\nkernel = '/k'\n")
        p = run(tandem, "-N", "create", path, "memory=300", "name=over")
        check(p.returncode == 0, f"overrides accepted: {p.stderr!r}")
        if p.returncode == 0:
            d = json.loads(p.stdout)
            check(d["b_info"]["target_memkb"] == 300 * 1024, "memory override applied")
            check(d["c_info"]["name"] == "over", "name override applied")

        p = run(tandem, "-N", "create", os.path.join(tmp, "missing.cfg"))
        check(p.returncode == 1 and "missing.cfg" in p.stderr, f"missing file named: {p.stderr!r}")

    p = run(tandem, "help")
    check(p.returncode == 0 and "create" in p.stdout and "block-attach" in p.stdout, "help lists commands")
    p = run(tandem, "create", "--help")
    check(p.returncode == 0 and p.stdout.startswith("Usage: tandem create"), "create --help")
    names = [line.split()[0] for line in run(tandem, "help").stdout.split("Commands:\n")[-1]
             .split("\n\n")[0].splitlines() if line.strip()]
    check(len(names) >= 10, f"help lists the command table: {names!r}")
    for name in names:
        p = run(tandem, name, "--help")
        check(p.returncode == 0 and p.stdout.startswith(f"Usage: tandem {name}"),
              f"{name} --help: {p.returncode} {p.stdout[:60]!r}")
    # block-attach/network-attach only check a spec: their help says hot-plug is refused.
    for name, spec in (("block-attach", "/a.img,raw,xvda,w"), ("network-attach", "bridge=br0")):
        check("refused" in run(tandem, name, "--help").stdout, f"{name} --help says it is refused")
        p = run(tandem, name, "1", spec)
        check(p.returncode == 1 and "not supported" in p.stderr and not p.stdout,
              f"{name} without -N refuses a valid spec: {p.returncode} {p.stderr!r}")
    p = run(tandem, "no-such-command")
    check(p.returncode == 2 and "unknown command" in p.stderr, "unknown command exits 2")
    p = run(tandem, "-N", "create")
    check(p.returncode == 2 and "Usage:" in p.stderr, "missing FILE is a usage error")
    p = run(tandem, "-N", "block-attach", "0", "foo")
    check(p.returncode == 1 and p.stderr.startswith("tandem: ") and not p.stdout,
          f"bad disk spec: message on stderr only: {p.stderr!r}")
    p = run(tandem, "-N", "config-check", "x")
    check(p.returncode == 2, "-N refused by commands that do not take it")

    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
