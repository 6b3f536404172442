#!/bin/bash
# System test: the kvstore guest under tandem-kvclient load migrated primary -> backup through the
# remote-shell path (ip netns exec) and back over authenticated, encrypted TCP: the client sees no broken
# connection or error, and no acknowledged write is lost.
# usage: migrate_kv.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kv_guest_lib.sh"
source "$HERE/migrate_lib.sh"
CLIENT=$(realpath -m -- "${4:?path of tandem-kvclient}")
ng_init "$1" "$2" "$3" kvstore
hosts_setup primary backup client
mig_init

IP=10.99.0.100
ADDR="$IP:7000"
DISK="$HOSTS_DIR/kv.img"
HIST="$RUNDIR_CLIENT/history"
truncate -s 64M "$DISK" || fail "cannot make the disk image $DISK"
trap_show() {
    [ "${PASSED:-}" = 1 ] && return
    show_domain primary kvstore
    show_domain backup kvstore
}
hosts_at_exit trap_show

ng_kvstore_create primary kvstore "$IP" "$DISK"

# 8 connections for 8 s, never reconnecting: a broken connection is an error.
on_host_bg client "$CLIENT" --server "$ADDR" --conns 8 --duration 8 --timeout 3000 --quiet \
    --progress 1 --history "$HIST" >"$HIST.out" 2>&1
CLIENT_PID=$HOST_PID
sleep 2

# 1. primary -> backup through the remote shell.
out=$(migrate_shell primary backup kvstore 2>&1) || fail "migrate to backup failed: $out"
echo "$out" | tail -1
[ "$(exactly_one kvstore)" = backup ] || fail "kvstore does not run on backup after migrate"
wait_console backup kvstore "generation|announc" 5 || echo "note: no announcement line on the console"
sleep 2

# 2. backup -> primary over TCP with the key, the stream sealed (--encrypt).
on_host_bg primary "$T" migrate-receive --listen "$IP_PRIMARY:7400" --key-file "$KEY" --timeout 20 \
    >"$HOSTS_DIR/recv.out" 2>&1
RECV_PID=$HOST_PID
wait_tcp backup "$IP_PRIMARY:7400" 5 || fail "the TCP receiver does not listen"
out=$(on_host backup "$T" migrate --tcp "$IP_PRIMARY:7400" --key-file "$KEY" --encrypt kvstore 2>&1) ||
    fail "migrate back over TCP failed: $out; receiver: $(cat "$HOSTS_DIR/recv.out")"
echo "$out" | tail -1
wait "$RECV_PID" || fail "the TCP receiver failed: $(cat "$HOSTS_DIR/recv.out")"
[ "$(exactly_one kvstore)" = primary ] || fail "kvstore does not run on primary after migrating back"

wait "$CLIENT_PID"
rc=$?
grep progress "$HIST.out" | tr '\n' ' ' | cut -c1-600
echo
summary=$(tail -1 "$HIST.out")
echo "$summary"
[ $rc = 0 ] || fail "the client saw errors across the migrations: $summary"
echo "$summary" | grep -q "errors: 0 .*broken: 0 " || fail "client summary: $summary"
acked=$(grep -c "^R .* ack \(SET\|DEL\|INCR\) " "$HIST")
[ "$acked" -gt 100 ] || fail "only $acked writes acknowledged"
check=$(on_host client "$CLIENT" --check "$HIST" --server "$ADDR")
echo "$check" | tail -1
echo "$check" | tail -1 | grep -Eq "^acknowledged: [1-9][0-9]* lost: 0$" || fail "checker verdict"

on_host primary "$T" destroy kvstore || fail "destroy kvstore"
PASSED=1
echo "PASS: kvstore migrated primary -> backup (shell) -> primary (TCP) under load, $acked acknowledged writes, none lost, no broken connection"
