#!/bin/bash
# Benchmark: the kvstore guest vs tandem-kvstore-native, same client, same hosts, same kind of disk.
# usage: bench/bench_kv.sh BUILD [SECONDS]   (root and /dev/kvm; exits 77 with a reason otherwise)
#
# Both servers run in the `primary` test host (tests/lib/hosts.sh) with their log on the same file
# system (a raw disk image for the guest, a plain file for the native server; both fdatasync per
# group commit); tandem-kvclient runs in `client`, across the switch, closed loop, 1 and 16
# connections, mix set=60,get=30,incr=5,del=5 over 1000 keys. Prints one line per run and the
# guest/native ratios. KV_BENCH_DIR=/dev/shm puts both logs on tmpfs (flushes nearly free: the
# network path and the guest's exits alone).
set -u
BUILD=$(realpath -- "${1:-build}")
SECS=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
T="$BUILD/cli/tandem"
export TANDEM_VMM="$BUILD/vmm/tandem-vmm"
CLIENT="$BUILD/kvclient/tandem-kvclient"
NATIVE="$BUILD/kvstore/tandem-kvstore-native"
GUEST="$BUILD/guest/kvstore.elf"

skip() {
    echo "bench_kv: skipped: $*"
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no usable /dev/kvm"
for f in "$T" "$TANDEM_VMM" "$CLIENT" "$NATIVE" "$GUEST"; do
    [ -e "$f" ] || skip "$f is not built"
done
source "$HERE/../tests/lib/hosts.sh"
hosts_setup primary client

IP=10.99.0.100
PORT=7000
# Result of the last run: ops/s p50 p99
R_OPS="" R_P50="" R_P99=""

# run LABEL ADDR CONNS: one closed-loop run from client; prints the client's summary line.
run() {
    local out line
    out=$(on_host client "$CLIENT" --server "$2" --conns "$3" --duration "$SECS" --keys 1000 \
        --quiet 2>&1)
    line=$(echo "$out" | tail -1)
    R_OPS=$(echo "$line" | sed -n 's/.*ops\/s: \([0-9.]*\).*/\1/p')
    R_P50=$(echo "$line" | sed -n 's/.*p50_us: \([0-9]*\).*/\1/p')
    R_P99=$(echo "$line" | sed -n 's/.*p99_us: \([0-9]*\).*/\1/p')
    printf '%-7s conns=%-3s ops/s %9s  p50_us %7s  p99_us %7s   (%s)\n' "$1" "$3" "$R_OPS" \
        "$R_P50" "$R_P99" "$(echo "$line" | sed -n 's/.*\(errors: [0-9]*\).*/\1/p')"
}

DIR=$(mktemp -d "${KV_BENCH_DIR:-$RUNDIR_PRIMARY}/kvbench.XXXXXX") || exit 1
hosts_at_exit "rm -rf '$DIR'"
fs=$(df -T "$DIR" | awk 'NR == 2 {print $2}')
echo "kvstore guest vs native: server in primary, tandem-kvclient in client (across the switch)," \
    "log on $fs, ${SECS}s per run, native and guest runs interleaved"

# Both servers stay up; runs alternate so that load from elsewhere on the machine hits both alike.
on_host_bg primary "$NATIVE" --listen "$IP_PRIMARY:$PORT" --log "$DIR/native.log" \
    --size 64 >"$RUNDIR_PRIMARY/native.out" 2>&1
NPID=$HOST_PID
wait_tcp client "$IP_PRIMARY:$PORT" 5 || { cat "$RUNDIR_PRIMARY/native.out"; exit 1; }

# Preallocated like the native log (posix_fallocate): first writes into a sparse file would cost
# a journal commit in every flush (about 3x slower here).
fallocate -l 64M "$DIR/kv.img" || truncate -s 64M "$DIR/kv.img"
on_host primary "$T" create "$HERE/../examples/kvstore.cfg" "kernel=\"$GUEST\"" \
    "extra=\"ip=$IP/24 port=$PORT\"" "disk=[\"$DIR/kv.img,raw,xvda,rw\"]" \
    'vif=["bridge=br0"]' >/dev/null 2>&1 || { echo "bench_kv: tandem create failed"; exit 1; }
wait_tcp client "$IP:$PORT" 10 || { echo "bench_kv: kvstore guest not reachable"; exit 1; }

for c in 1 16; do
    run native "$IP_PRIMARY:$PORT" "$c"
    n_ops=$R_OPS n_p50=$R_P50 n_p99=$R_P99
    run guest "$IP:$PORT" "$c"
    awk -v c="$c" -v go="$R_OPS" -v no="$n_ops" -v g50="$R_P50" -v n50="$n_p50" -v g99="$R_P99" \
        -v n99="$n_p99" 'BEGIN {
        printf "ratio   conns=%-3s ops/s guest/native %.2f   p50 guest/native %.2f   p99 guest/native %.2f\n",
            c, (no > 0 ? go / no : 0), (n50 > 0 ? g50 / n50 : 0), (n99 > 0 ? g99 / n99 : 0) }'
done
on_host primary "$T" destroy kvstore >/dev/null 2>&1
kill "$NPID" && wait "$NPID" 2>/dev/null
exit 0
