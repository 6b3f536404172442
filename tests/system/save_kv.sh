#!/bin/bash
# System test: the kvstore guest under tandem-kvclient load is saved mid-load (the domain goes
# away), then restored on the same host: the client's TCP connections carry on (no errors, none
# broken) and every acknowledged write is there (tandem-kvclient --check: lost 0).
# usage: save_kv.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kv_guest_lib.sh"
CLIENT=$(realpath -m -- "${4:?path of tandem-kvclient}")
ng_init "$1" "$2" "$3" kvstore
hosts_setup primary client

IP=10.99.0.100
ADDR="$IP:7000"
DISK="$RUNDIR_PRIMARY/kv.img"
IMG="$RUNDIR_PRIMARY/kv.save"
HIST="$RUNDIR_CLIENT/history"
truncate -s 64M "$DISK" || fail "cannot make the disk image $DISK"
trap_show() { [ "${PASSED:-}" = 1 ] || show_domain primary kvstore; }
hosts_at_exit trap_show

ng_kvstore_create primary kvstore "$IP" "$DISK"

run_case() { # NAME SAVE-OPTIONS...
    local name=$1 out summary
    shift
    # 8 connections for 6 s; a request may wait up to 5 s (the domain is away for about a second).
    on_host_bg client "$CLIENT" --server "$ADDR" --conns 8 --duration 6 --timeout 5000 --quiet \
        --history "$HIST.$name" >"$HIST.$name.out" 2>&1
    CLIENT_PID=$HOST_PID
    sleep 2
    out=$(on_host primary "$T" save "$@" kvstore "$IMG" 2>&1) || fail "$name: save failed: $out"
    echo "$name: $out"
    on_host primary "$T" domid kvstore >/dev/null 2>&1 && fail "$name: kvstore still exists"
    out=$(on_host primary "$T" restore "$IMG" 2>&1) || fail "$name: restore failed: $out"
    echo "$name: $out"
    wait "$CLIENT_PID"
    summary=$(tail -1 "$HIST.$name.out")
    echo "$name: client: $summary"
    echo "$summary" | grep -Eq "^ops: [1-9][0-9]* .*errors: 0 " || fail "$name: client saw errors"
    echo "$summary" | grep -Eq "broken: 0( |$)" || fail "$name: connections broke: $summary"
    out=$(on_host client "$CLIENT" --check "$HIST.$name" --server "$ADDR")
    echo "$out" | tail -1
    echo "$out" | tail -1 | grep -Eq "^acknowledged: [1-9][0-9]* lost: 0$" ||
        fail "$name: checker verdict: $(echo "$out" | tail -3)"
}

run_case plain
run_case live -l
PASSED=1
echo "ok: kvstore saved mid-load and restored twice; connections kept, nothing lost"
