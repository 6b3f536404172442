#!/bin/bash
# Device benchmarks: frames/s through a vif and block MB/s, guest (rings and per-request
# hypercalls) against the same work done by a plain host process, as ratios.
# Usage: bench_dev.sh BUILD [RUNS]. Needs root (namespace, TAP) and /dev/kvm.
set -u
BUILD=${1:-build}
RUNS=${2:-3}
VMM=$BUILD/vmm/tandem-vmm
G=$BUILD/guest
BD=$BUILD/bench/bench_dev
if [ "$(id -u)" -ne 0 ] || [ ! -w /dev/kvm ] || [ ! -x "$BD" ] || [ ! -f "$G/netperf.elf" ]; then
    echo "skipped: needs root, /dev/kvm, $BD and $G/netperf.elf"
    exit 0
fi
NS=tdm-bdev$$
TMP=$(mktemp -d /tmp/tdm-bdev.XXXXXX)
trap 'ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"' EXIT
ip netns add "$NS"
N() { ip netns exec "$NS" "$@"; }
N ip link set lo up
N ip link add br0 type bridge
N ip link set br0 up
COUNT=100000
GMAC=00:16:3e:00:0b:01

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
field() { sed -n "s/.* $1 \([0-9]*\).*/\1/p"; }

guest_tx() { # rings(0/1)
    N "$VMM" --kernel "$G/netperf.elf" --vif "bridge=br0,mac=$GMAC" \
        --cmdline "mode=tx count=$COUNT tg_rings=$1" | field pps
}
guest_rx() { # rings(0/1)
    N "$VMM" --kernel "$G/netperf.elf" --vif "bridge=br0,mac=$GMAC" \
        --cmdline "mode=rx count=$COUNT secs=30 tg_rings=$1" >"$TMP/rx.out" &
    local pid=$!
    for _ in $(seq 100); do grep -q READY "$TMP/rx.out" 2>/dev/null && break; sleep 0.05; done
    sleep 0.1
    N "$BD" send br0 "$GMAC" "$COUNT" 60 >/dev/null
    wait $pid
    field pps <"$TMP/rx.out"
}
host_tap() { # write|read
    N ip tuntap add dev tdmb0 mode tap
    N ip link set tdmb0 master br0 up
    N bridge fdb replace "$GMAC" dev tdmb0 master static
    if [ "$1" = write ]; then
        N "$BD" tap-write tdmb0 "$COUNT" 60 | field pps
    else
        N "$BD" tap-read tdmb0 "$COUNT" >"$TMP/hr.out" &
        local pid=$!
        for _ in $(seq 100); do grep -q READY "$TMP/hr.out" 2>/dev/null && break; sleep 0.05; done
        sleep 0.1
        N "$BD" send br0 "$GMAC" "$COUNT" 60 >/dev/null
        wait $pid
        field pps <"$TMP/hr.out"
    fi
    N ip link del tdmb0
}
guest_blk() { # rings kib -> "write read"
    "$VMM" --memory 64 --kernel "$G/blkperf.elf" --disk "$TMP/disk.img,raw,xvda,rw" \
        --cmdline "mib=$3 kib=$2 flush_every=$4 tg_blk_ring=$1" |
        sed -n 's/.*write_flush_MBps \([0-9]*\) read_MBps \([0-9]*\).*/\1 \2/p'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "-- net: 60-byte frames, $COUNT per run, median of $RUNS"
for what in tx rx; do
    hw=$(for _ in $(seq "$RUNS"); do host_tap "$([ $what = tx ] && echo write || echo read)"; done | median)
    r1=$(for _ in $(seq "$RUNS"); do guest_$what 1; done | median)
    r0=$(for _ in $(seq "$RUNS"); do guest_$what 0; done | median)
    printf "net %s pps: host %s  guest rings %s (%s)  guest hypercalls %s (%s)\n" "$what" "$hw" \
        "$r1" "$(ratio "$r1" "$hw")" "$r0" "$(ratio "$r0" "$hw")"
done

# Both images allocated up front, so neither side pays for block allocation.
fallocate -l 256M "$TMP/disk.img"
fallocate -l 256M "$TMP/host.img"
echo "-- block: sequential writes + fdatasync after each request, then reads, median of $RUNS"
for spec in "1024 128 1" "4 16 1000000"; do
    set -- $spec
    kib=$1 mib=$2 fe=$3
    if [ "$kib" = 1024 ]; then
        h=$(for _ in $(seq "$RUNS"); do "$BD" file "$TMP/host.img" "$mib" |
            sed -n 's/.*write_flush_MBps \([0-9]*\) read_MBps \([0-9]*\).*/\1 \2/p'; done)
        hw=$(echo "$h" | awk '{ print $1 }' | median)
        hr=$(echo "$h" | awk '{ print $2 }' | median)
    fi
    g1=$(for _ in $(seq "$RUNS"); do guest_blk 1 "$kib" "$mib" "$fe"; done)
    g0=$(for _ in $(seq "$RUNS"); do guest_blk 0 "$kib" "$mib" "$fe"; done)
    ga=$(for _ in $(seq "$RUNS"); do guest_blk -1 "$kib" "$mib" "$fe"; done)
    wa=$(echo "$ga" | awk '{ print $1 }' | median); ra=$(echo "$ga" | awk '{ print $2 }' | median)
    w1=$(echo "$g1" | awk '{ print $1 }' | median); r1=$(echo "$g1" | awk '{ print $2 }' | median)
    w0=$(echo "$g0" | awk '{ print $1 }' | median); r0=$(echo "$g0" | awk '{ print $2 }' | median)
    if [ "$kib" = 1024 ]; then
        printf "block 1 MiB write+flush MB/s: host %s  rings %s (%s)  hypercalls %s (%s)\n" \
            "$hw" "$w1" "$(ratio "$w1" "$hw")" "$w0" "$(ratio "$w0" "$hw")"
        printf "block 1 MiB read MB/s:        host %s  rings %s (%s)  hypercalls %s (%s)\n" \
            "$hr" "$r1" "$(ratio "$r1" "$hr")" "$r0" "$(ratio "$r0" "$hr")"
    else
        printf "block 4 KiB write MB/s (no flush): rings %s  hypercalls %s  default (faster of both) %s\n" \
            "$w1" "$w0" "$wa"
        printf "block 4 KiB read MB/s:             rings %s  hypercalls %s  default (faster of both) %s\n" \
            "$r1" "$r0" "$ra"
    fi
done
