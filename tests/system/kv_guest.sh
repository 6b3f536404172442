#!/bin/bash
# System test: the kvstore guest in primary driven from client; destroyed mid-load, and its VMM
# killed -9 mid-load, each time created again from the same disk: every acknowledged write is
# still there (tandem-kvclient --check).
# usage: kv_guest.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kv_guest_lib.sh"
CLIENT=$(realpath -m -- "${4:?path of tandem-kvclient}")
ng_init "$1" "$2" "$3" kvstore
hosts_setup primary client

IP=10.99.0.100
IP6=fd99::100
ADDR="$IP:7000"
DISK="$RUNDIR_PRIMARY/kv.img"
HIST="$RUNDIR_CLIENT/history"
truncate -s 64M "$DISK" || fail "cannot make the disk image $DISK"
trap_show() { [ "${PASSED:-}" = 1 ] || show_domain primary kvstore; }
hosts_at_exit trap_show

create_kv() {
    ng_kvstore_create primary kvstore "$IP" "$DISK"
}

create_kv
console primary kvstore | grep "records replayed"

# A clean run: across the switch, no errors.
out=$(on_host client "$CLIENT" --server "$ADDR" --conns 4 --ops 2000) || fail "clean run failed: $out"
echo "$out" | tail -1
echo "$out" | tail -1 | grep -q "^ops: 2000 .*errors: 0 " || fail "clean run summary: $(echo "$out" | tail -1)"

# Many connections at once (group commit across all of them); none may fail.
out=$(on_host client "$CLIENT" --server "$ADDR" --conns 200 --duration 2 --timeout 5000 --quiet) ||
    fail "200-connection run failed: $(echo "$out" | tail -1)"
echo "$out" | tail -1
echo "$out" | tail -1 | grep -q "errors: 0 " || fail "200-connection run: $(echo "$out" | tail -1)"

# IPv6 to the same store.
out=$(on_host client "$CLIENT" --server "[$IP6]:7000" --conns 2 --ops 200) || fail "IPv6 run failed: $out"
echo "$out" | tail -1 | grep -q "^ops: 200 .*errors: 0 " || fail "IPv6 run summary: $(echo "$out" | tail -1)"

# load HISTORY: 8 connections for 4 s in the background; sets CLIENT_PID.
load() {
    on_host_bg client "$CLIENT" --server "$ADDR" --conns 8 --duration 4 --timeout 1000 --quiet \
        --history "$1" >"$1.out" 2>&1
    CLIENT_PID=$HOST_PID
}

# check HISTORY: after the restart every acknowledged write of HISTORY is there.
check() {
    local acked check rc replayed
    acked=$(grep -c "^R .* ack \(SET\|DEL\|INCR\) " "$1")
    [ "$acked" -gt 100 ] || fail "only $acked writes acknowledged before the stop"
    replayed=$(console primary kvstore | sed -n 's/.*: \([0-9]*\) records replayed.*/\1/p' | tail -1)
    echo "acknowledged writes: $acked, replayed: $replayed records"
    [ "${replayed:-0}" -gt 0 ] || fail "the new domain replayed no log records"
    check=$(on_host client "$CLIENT" --check "$1" --server "$ADDR")
    rc=$?
    echo "$check" | tail -3
    [ $rc = 0 ] || fail "checker exit $rc for $1"
    echo "$check" | tail -1 | grep -Eq "^acknowledged: [1-9][0-9]* lost: 0$" || fail "checker verdict"
}

# 1. tandem destroy in the middle of the load; a new domain from the same disk.
load "$HIST.destroy"
sleep 2
on_host primary "$T" destroy kvstore || fail "tandem destroy kvstore failed"
wait "$CLIENT_PID"
tail -1 "$HIST.destroy.out"
create_kv
check "$HIST.destroy"

# 2. A crash: SIGKILL of the VMM in the middle of the load (no orderly stop, no final flush).
load "$HIST.kill"
sleep 2
vmm_pid=$(cat "$(host_rundir primary)/names/kvstore/vmm.pid") || fail "no vmm.pid for kvstore"
kill -9 "$vmm_pid" || fail "kill -9 $vmm_pid"
wait "$CLIENT_PID"
tail -1 "$HIST.kill.out"
create_kv
check "$HIST.kill"

on_host primary "$T" destroy kvstore || fail "tandem destroy kvstore failed"
PASSED=1
echo "PASS: acknowledged writes survived destroy + create and kill -9 + create of the kvstore guest"
