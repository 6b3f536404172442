#!/bin/sh
# Run Tandem's benchmarks against a build directory: sh bench/run.sh BUILD. One section per component.
set -eu
BUILD=${1:-build}

# --- stream format (bench_stream): 256 MiB and 1 GiB, random and half-zero pages
echo "== stream format"
"$BUILD/bench/bench_stream" 256 1024

# --- kvstore native baseline (kvstore/bench-native.sh): 1 and 16 connections over loopback
echo "== kvstore native"
sh "$(dirname "$0")/../kvstore/bench-native.sh" "$BUILD" 5

# --- kvstore guest vs native (bench/bench_kv.sh): 1 and 16 connections from the client test host
# to the primary, ops/s, p50/p99 and guest/native ratios. Needs root and /dev/kvm (else skipped).
echo "== kvstore guest vs native"
bash "$(dirname "$0")/bench_kv.sh" "$BUILD" 5 || echo "bench_kv: skipped or failed (status $?)"

# --- tandem-vmm (bench_hypercall, bench_membw): hypercall round trip, create time 64 MiB / 1 GiB,
# guest vs host memory bandwidth. Needs /dev/kvm and the plain build's guest images.
echo "== tandem-vmm"
if [ -r /dev/kvm ] && [ -x "$BUILD/bench/bench_hypercall" ]; then
    "$BUILD/bench/bench_hypercall" "$BUILD/vmm/tandem-vmm" "$BUILD/guest" 5 "$BUILD/cli/tandem"
    "$BUILD/bench/bench_membw" "$BUILD/vmm/tandem-vmm" "$BUILD/guest" 64 10
else
    echo "skipped: /dev/kvm or $BUILD/bench/bench_hypercall missing"
fi

# --- save/restore (bench_save.py): random-filled 256 MiB / 1 GiB / 4 GiB guests, save and restore
# time vs raw sequential write/read of the same bytes, and vs QEMU migrate-to-file when
# qemu-system-x86_64 is installed. Needs /dev/kvm (prints "skipped" otherwise).
echo "== save/restore"
python3 "$(dirname "$0")/bench_save.py" "$BUILD" 256 1024 4096 || echo "bench_save: failed (status $?)"

# --- devices (bench_dev.sh): frames/s through a vif and block MB/s, rings and per-request
# hypercalls, each against a plain host process doing the same (TAP, file) as a ratio.
# Needs root and /dev/kvm (prints "skipped" otherwise).
echo "== devices"
bash "$(dirname "$0")/bench_dev.sh" "$BUILD" 3

# --- live migration (bench_migrate.py): idle and memdirty guests of 256 MiB, 1 GiB, 4 GiB over
# loopback PSK TCP: total time, downtime, bytes, MB/s, against QEMU's migration of the same bytes.
# Needs /dev/kvm (prints "skipped" otherwise); QEMU columns only when qemu-system-x86_64 exists.
echo "== live migration"
python3 "$(dirname "$0")/bench_migrate.py" "$BUILD" || echo "bench_migrate: failed (status $?)"

# --- Remus (bench_remus.sh, docs/remus.md "Measured"): kvstore unprotected vs protected at
# 10/40/100 Hz, idle checkpoint rate, pause vs dirty pages (memdirty), failover time, then a soak of
# REMUS_SOAK primary kills (default 50). Needs root and /dev/kvm (prints "SKIP" otherwise).
echo "== remus"
bash "$(dirname "$0")/bench_remus.sh" "$BUILD" 4 "${REMUS_SOAK:-50}" || echo "bench_remus: failed (status $?)"
