#!/usr/bin/env python3
"""Run Tandem's test layers and print one summary; the last line is
'N passed, N failed, N skipped'.

Layers:
  unit       cmocka tests in the plain build            (meson suite 'unit')
  unit-asan  the same tests under ASan+UBSan            (meson suite 'unit')
  guest      guest images that print SUCCESS; /dev/kvm  (meson suite 'guest')
  system     lifecycle and network-namespace tests      (meson suite 'system')
  fuzz       a short libFuzzer run of every fuzz_* target in the fuzz build

A test passes with exit 0, is skipped with exit 77 (its last output line
says why) and fails otherwise.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures = []

    def add(self, layer, name, result, detail=""):
        label = f"{layer}/{name}"
        if result == "pass":
            self.passed += 1
            print(f"PASS  {label}")
        elif result == "skip":
            self.skipped += 1
            print(f"SKIP  {label}: {detail or 'skipped'}")
        else:
            self.failed += 1
            self.failures.append(label)
            print(f"FAIL  {label}{': ' + detail if detail else ''}")
        sys.stdout.flush()


def last_line(text):
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    return lines[-1] if lines else ""


def run_meson_suite(tally, layer, build, suite, timeout_mult):
    if not os.path.exists(os.path.join(build, "build.ninja")):
        tally.add(layer, "(setup)", "fail", f"build directory {build} is not configured")
        return
    listing = subprocess.run(["meson", "test", "-C", build, "--list", "--no-rebuild"],
                             capture_output=True, text=True)
    names = [l for l in listing.stdout.splitlines() if l.strip()]
    if not any(f"{suite} " in l or l.startswith(f"tandem:{suite}") or f":{suite}" in l
               for l in names):
        # meson names tests "project:suite / name"; no test in this suite yet.
        print(f"----  {layer}: no tests in suite '{suite}'")
        return
    log = os.path.join(build, "meson-logs", "testlog.json")
    if os.path.exists(log):
        os.unlink(log)
    print(f"----  {layer} ({build}, suite {suite})")
    sys.stdout.flush()
    proc = subprocess.run(["meson", "test", "-C", build, "--suite", suite, "--no-rebuild",
                           "--num-processes", "1", "--timeout-multiplier", str(timeout_mult)],
                          capture_output=True, text=True)
    if not os.path.exists(log):
        tally.add(layer, "(meson)", "fail", last_line(proc.stdout + proc.stderr))
        return
    with open(log) as f:
        for line in f:
            rec = json.loads(line)
            name = rec["name"]
            # meson names tests "project:suite / name"; the layer already says the suite.
            name = name.split(" / ", 1)[-1]
            res = rec["result"]
            out = rec.get("stdout") or ""
            err = rec.get("stderr") or ""
            if res == "OK" or res == "EXPECTEDFAIL":
                tally.add(layer, name, "pass")
            elif res == "SKIP":
                tally.add(layer, name, "skip", last_line(out) or last_line(err))
            else:
                tally.add(layer, name, "fail", res)
                tail = (out + err).splitlines()[-40:]
                for t in tail:
                    print(f"      | {t}")


def run_fuzz(tally, build, seconds):
    fdir = os.path.join(build, "tests", "fuzz")
    if not os.path.isdir(fdir):
        tally.add("fuzz", "(setup)", "fail", f"{fdir} missing: fuzz build not configured")
        return
    targets = sorted(n for n in os.listdir(fdir)
                     if n.startswith("fuzz_") and os.access(os.path.join(fdir, n), os.X_OK)
                     and os.path.isfile(os.path.join(fdir, n)))
    if not targets:
        print("----  fuzz: no fuzz targets built")
        return
    print(f"----  fuzz ({build}, {seconds}s per target)")
    for t in targets:
        seeds = os.path.join(HERE, "fuzz", "corpus", t[len("fuzz_"):])
        work = os.path.join(build, "fuzz-corpus", t)
        os.makedirs(work, exist_ok=True)
        cmd = [os.path.join(fdir, t), f"-max_total_time={seconds}", "-timeout=10",
               "-rss_limit_mb=2048", "-print_final_stats=0", work]
        if os.path.isdir(seeds):
            cmd.append(seeds)
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            tally.add("fuzz", t, "pass")
        else:
            tally.add("fuzz", t, "fail", f"exit {proc.returncode} after {time.time()-start:.0f}s")
            for t2 in proc.stderr.splitlines()[-40:]:
                print(f"      | {t2}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--asan-build", default="build-asan")
    ap.add_argument("--fuzz-build", default="build-fuzz")
    ap.add_argument("--layers", default="unit,unit-asan,guest,system,fuzz")
    ap.add_argument("--fuzz-seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "15")))
    args = ap.parse_args()
    os.chdir(ROOT)
    tally = Tally()
    layers = args.layers.split(",")
    for layer in layers:
        if layer == "unit":
            run_meson_suite(tally, layer, args.build, "unit", 1)
        elif layer == "unit-asan":
            run_meson_suite(tally, layer, args.asan_build, "unit", 3)
        elif layer == "guest":
            run_meson_suite(tally, layer, args.build, "guest", 1)
        elif layer == "system":
            run_meson_suite(tally, layer, args.build, "system", 1)
        elif layer == "fuzz":
            run_fuzz(tally, args.fuzz_build, args.fuzz_seconds)
        else:
            print(f"unknown layer {layer}", file=sys.stderr)
            return 2
    if tally.failures:
        print("failed: " + " ".join(tally.failures))
    print(f"{tally.passed} passed, {tally.failed} failed, {tally.skipped} skipped")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
