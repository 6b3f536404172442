#!/bin/bash
# System test: faults during live migration of the kvstore guest. The receiver and the sender are
# each SIGKILLed at the start of every interlock phase (TANDEM_MIGRATE_TEST_STOP stops them there),
# the receiver also between unpausing and confirming, both in the middle of the stream; the link
# is cut mid-stream (TCP), and a sender with the wrong key knocks on the TCP listener. Each case
# must end with exactly one copy that runs (or, over TCP where the protocol cannot know, the
# source left paused with a message saying so) and nothing left on the other host; the survivor
# serves kvstore clients.
# usage: migrate_faults.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
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
OUT="$HOSTS_DIR/out"
truncate -s 64M "$DISK" || fail "cannot make the disk image $DISK"
trap_show() {
    [ "${PASSED:-}" = 1 ] && return
    echo "--- last sender output"
    cat "$OUT" 2>/dev/null
    echo "--- primary: $(domains primary) backup: $(domains backup)"
    show_domain primary kvstore
    show_domain backup kvstore
}
hosts_at_exit trap_show

ng_kvstore_create primary kvstore "$IP" "$DISK"

# serves: a short client run against the survivor must succeed.
serves() {
    local out
    out=$(on_host client "$CLIENT" --server "$ADDR" --conns 2 --ops 50 --timeout 3000 --quiet 2>&1) ||
        fail "$1: kvstore does not serve after the fault: $(echo "$out" | tail -1)"
}

# on_primary CASE: the case must end with kvstore running on primary only, nothing on backup.
on_primary() {
    wait_until 30 no_domains backup || fail "$1: backup still has: $(domains backup)"
    wait_until 30 running primary kvstore || fail "$1: kvstore is not running on primary: $(state primary kvstore)"
    [ "$(exactly_one kvstore)" = primary ] || fail "$1: not exactly one copy"
    serves "$1"
    echo "ok: $1: source runs, nothing on backup"
}

# on_backup CASE: kvstore runs on backup; the source is destroyed or left paused (not running).
# Puts the domain back on primary for the next case.
on_backup() {
    wait_until 30 running backup kvstore || fail "$1: kvstore is not running on backup: $(state backup kvstore)"
    running primary kvstore && fail "$1: kvstore runs on both hosts"
    [ "$(exactly_one kvstore)" = backup ] || fail "$1: not exactly one copy"
    serves "$1"
    echo "ok: $1: runs on backup; source $(state primary kvstore)"
    if has_domain primary kvstore; then
        on_host primary "$T" destroy kvstore || fail "$1: destroy the paused source"
    fi
    migrate_shell backup primary kvstore >"$OUT" 2>&1 || fail "$1: moving back failed: $(cat "$OUT")"
    on_primary "$1 (moved back)"
}

# paused_source CASE: the receiver died after go: the sender must say the source is left paused.
paused_source() {
    grep -q "left PAUSED" "$OUT" || fail "$1: the sender did not say it left the source paused"
    wait_until 30 no_domains backup || fail "$1: backup still has: $(domains backup)"
    [ "$(state primary kvstore)" != none ] || fail "$1: the source is gone"
    running primary kvstore && fail "$1: the source runs although the receiver may have it"
    echo "ok: $1: source left paused with a message, nothing on backup; unpausing it"
    on_host primary "$T" unpause kvstore || fail "$1: unpause"
    on_primary "$1 (after unpause)"
}

# recv_fault PHASE [ok]: SIGKILL the receiver stopped at the start of PHASE; the sender must fail
# (or, with "ok", succeed: it learned through --query that the domain runs on backup).
recv_fault() {
    local phase=$1 pid rc
    on_host_bg primary "$T" migrate -s "ip netns exec" \
        --receiver "env TANDEM_MIGRATE_TEST_STOP=recv:$phase $(receiver_cmd backup)" kvstore \
        "$NS_BACKUP" >"$OUT" 2>&1
    local spid=$HOST_PID
    wait_until 30 find_proc "$RUNDIR_BACKUP" "recv:$phase" T >/dev/null ||
        fail "receiver never stopped at $phase: $(cat "$OUT")"
    pid=$(find_proc "$RUNDIR_BACKUP" "recv:$phase" T)
    kill -9 "$pid"
    wait "$spid"
    rc=$?
    if [ "${2:-}" = ok ]; then
        [ $rc = 0 ] || fail "receiver killed at $phase: the sender did not settle it: $(cat "$OUT")"
    else
        [ $rc != 0 ] || fail "receiver killed at $phase: the sender reported success"
    fi
    echo "receiver killed at $phase: sender says: $(grep -v '^migrat' "$OUT" | tail -1)"
}

# recv_fault_tcp PHASE: the same with the TCP transport (no --query there).
recv_fault_tcp() {
    local phase=$1 pid
    on_host_bg backup env TANDEM_MIGRATE_TEST_STOP="recv:$phase" "$T" migrate-receive \
        --listen "$IP_BACKUP:7402" --key-file "$KEY" --timeout 30 >"$HOSTS_DIR/recv.out" 2>&1
    pid=$HOST_PID
    wait_tcp primary "$IP_BACKUP:7402" 5 || fail "the TCP receiver does not listen"
    on_host_bg primary "$T" migrate --tcp "$IP_BACKUP:7402" --key-file "$KEY" kvstore >"$OUT" 2>&1
    local spid=$HOST_PID
    wait_until 30 proc_stopped "$pid" || fail "TCP receiver never stopped at $phase: $(cat "$OUT")"
    kill -9 "$pid"
    wait "$spid" && fail "TCP receiver killed at $phase: the sender reported success"
    echo "TCP receiver killed at $phase: sender says: $(tail -1 "$OUT")"
}

# send_fault PHASE: SIGKILL the sender stopped at the start of PHASE.
send_fault() {
    local phase=$1 pid
    on_host_bg primary env TANDEM_MIGRATE_TEST_STOP="send:$phase" "$T" migrate -s "ip netns exec" \
        --receiver "$(receiver_cmd backup)" kvstore "$NS_BACKUP" >"$OUT" 2>&1
    pid=$HOST_PID
    wait_until 30 proc_stopped "$pid" || fail "sender never stopped at $phase: $(cat "$OUT")"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    echo "sender killed at $phase; receiver says: $(grep 'migrate-receive\|tandem:' "$OUT" | tail -1)"
}

# 1. The receiver dies at each phase.
for phase in hello config ready stream have-state; do
    recv_fault "$phase"
    on_primary "receiver killed at $phase"
done
# After go: the sender asks the backup (--query); the incoming copy never ran, so it resumes.
for phase in go running; do
    recv_fault "$phase"
    grep -q "resumed here" "$OUT" || fail "receiver killed at $phase: the sender did not resume"
    on_primary "receiver killed at $phase"
done
# Killed after it unpaused, before it confirmed: the query finds it running; the source goes.
recv_fault confirm ok
grep -q "done after all" "$OUT" || fail "receiver killed at confirm: $(cat "$OUT")"
on_backup "receiver killed after unpause, before confirming"
# Over TCP nobody can be asked: the source is left paused with a message.
recv_fault_tcp go
paused_source "TCP receiver killed at go"

# 2. The receiver dies in the middle of the stream (its VMM is reading; 1 MB/s makes it last).
on_host_bg primary "$T" migrate --bandwidth 1 -s "ip netns exec" --receiver "$(receiver_cmd backup)" \
    kvstore "$NS_BACKUP" >"$OUT" 2>&1
spid=$HOST_PID
wait_until 30 has_domain backup kvstore--incoming || fail "no incoming domain on backup: $(cat "$OUT")"
pid=$(find_proc "$RUNDIR_BACKUP" -) || fail "no receiver process found"
kill -9 "$pid"
wait "$spid" && fail "receiver killed mid-stream: the sender reported success"
echo "receiver killed mid-stream: sender says: $(tail -1 "$OUT")"
on_primary "receiver killed mid-stream"

# 3. The sender dies at each phase.
for phase in hello config ready stream have-state go; do
    send_fault "$phase"
    on_primary "sender killed at $phase"
done
for phase in running destroy; do
    send_fault "$phase"
    on_backup "sender killed at $phase"
done

# 4. The sender dies in the middle of the stream: its guard resumes the source after the save.
on_host_bg primary "$T" migrate --bandwidth 1 -s "ip netns exec" --receiver "$(receiver_cmd backup)" \
    kvstore "$NS_BACKUP" >"$OUT" 2>&1
spid=$HOST_PID
wait_until 30 has_domain backup kvstore--incoming || fail "no incoming domain on backup: $(cat "$OUT")"
kill -9 "$spid"
wait "$spid" 2>/dev/null
on_primary "sender killed mid-stream"

# 5. The link between primary and backup is cut mid-stream (TCP transport).
on_host_bg backup "$T" migrate-receive --listen "$IP_BACKUP:7400" --key-file "$KEY" --timeout 60 \
    >"$HOSTS_DIR/recv.out" 2>&1
rpid=$HOST_PID
sleep 0.5
on_host_bg primary "$T" migrate --bandwidth 1 --tcp "$IP_BACKUP:7400" --key-file "$KEY" kvstore \
    >"$OUT" 2>&1
spid=$HOST_PID
wait_until 30 has_domain backup kvstore--incoming || fail "no incoming domain on backup: $(cat "$OUT")"
cut_link backup
wait "$spid" && fail "link cut: the sender reported success"
echo "link cut: sender says: $(tail -1 "$OUT")"
wait "$rpid" && fail "link cut: the receiver reported success"
echo "link cut: receiver says: $(tail -1 "$HOSTS_DIR/recv.out")"
heal_link backup
sleep 1
on_primary "link cut mid-stream"

# 5b. The receiver's VMM is killed mid-stream with the stream sealed (--encrypt): both relays stop,
# the sender's save fails at once and the source resumes.
on_host_bg backup "$T" migrate-receive --listen "$IP_BACKUP:7403" --key-file "$KEY" --timeout 60 \
    >"$HOSTS_DIR/recv.out" 2>&1
rpid=$HOST_PID
wait_tcp primary "$IP_BACKUP:7403" 5 || fail "the TCP receiver does not listen"
on_host_bg primary "$T" migrate --bandwidth 1 --encrypt --tcp "$IP_BACKUP:7403" --key-file "$KEY" \
    kvstore >"$OUT" 2>&1
spid=$HOST_PID
wait_until 30 pgrep -f -- "--domain-dir $RUNDIR_BACKUP/" >/dev/null || fail "no receiving VMM: $(cat "$OUT")"
sleep 0.5
kill -9 "$(pgrep -f -- "--domain-dir $RUNDIR_BACKUP/")"
t0=$(date +%s)
wait "$spid" && fail "receiving VMM killed: the sender reported success"
[ $(($(date +%s) - t0)) -lt 30 ] || fail "the sender took $(($(date +%s) - t0)) s to notice"
echo "receiving VMM killed (encrypted): sender says: $(tail -1 "$OUT")"
wait "$rpid" && fail "receiving VMM killed: the receiver reported success"
on_primary "receiving VMM killed mid-stream (--encrypt)"

# 6. Wrong key on the TCP listener: both say so, nothing is created, the listener keeps listening.
on_host_bg backup "$T" migrate-receive --listen "$IP_BACKUP:7401" --key-file "$KEY" --timeout 5 \
    >"$HOSTS_DIR/recv.out" 2>&1
rpid=$HOST_PID
sleep 0.5
on_host primary "$T" migrate --tcp "$IP_BACKUP:7401" --key-file "$BADKEY" kvstore >"$OUT" 2>&1 &&
    fail "a sender with the wrong key was accepted"
cat "$OUT"
grep -q "key does not match" "$OUT" || fail "the sender does not say the key is wrong"
wait "$rpid"
cat "$HOSTS_DIR/recv.out"
grep -q "does not know our key" "$HOSTS_DIR/recv.out" || fail "the receiver does not say the key is wrong"
on_primary "wrong key"

on_host primary "$T" destroy kvstore || fail "destroy kvstore"
PASSED=1
echo "PASS: every fault left exactly one runnable kvstore and nothing on the other host"
