#!/bin/bash
# `make demo`: a Remus-protected kvstore survives the death of its primary (docs/remus.md), with commentary.
# Needs root and /dev/kvm; without them it shows the configuration parsing it can do anywhere.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@" # `make demo` runs it with sh
BUILD=$(realpath -- "${1:-build}")
T="$BUILD/tandem"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

dry_run() {
    say "The example domain configuration, parsed (tandem -N create examples/hello.cfg)"
    "$T" -N create examples/hello.cfg
    say "An xl disk spec, parsed as 'xl -N block-attach' does"
    "$T" -N block-attach 0 'format=raw, vdev=xvda, access=rw, target=/srv/tandem/kv.img'
    say "A Remus-replicated disk (tap:remus:HOST:PORT|aio:PATH)"
    "$T" -N block-attach 0 'tap:remus:backup:9000|aio:/srv/tandem/kv.img,xvda,w'
    say "A vif spec with a rate limit"
    "$T" -N network-attach 0 'mac=00:16:3e:00:00:01,bridge=br0,rate=10Mb/s@20ms'
}

why=""
[ "$(id -u)" = 0 ] || why="not root"
[ -z "$why" ] && { [ -r /dev/kvm ] && [ -w /dev/kvm ]; } || why="${why:-/dev/kvm is missing or not accessible}"
[ -z "$why" ] && [ -f "$BUILD/guest/kvstore.elf" ] && [ -x "$BUILD/kvclient/tandem-kvclient" ] ||
    why="${why:-the kvstore guest or tandem-kvclient is not built}"
if [ -n "$why" ]; then
    say "The live Remus demo needs root, /dev/kvm and a full build ($why): showing what runs anywhere"
    dry_run
    exit 0
fi

# The test hosts library builds primary/backup/client namespaces and removes them at exit.
source "$(dirname "$0")/../tests/system/remus_lib.sh"
rm_init "$T" "$BUILD/vmm/tandem-vmm" "$BUILD/guest" "$BUILD/kvclient/tandem-kvclient"
say "Three hosts as network namespaces on one switch: primary, backup, client"
rm_hosts
echo "(everything made here is removed when the demo ends)"

say "The kvstore guest (a durable key-value store, its log on a 16 MiB disk) starts on the primary"
rm_create
echo "console: $(console primary kvstore | tail -1)"

say "tandem remus -i 25 kvstore: initial sync to the backup, then a checkpoint every 25 ms"
rm_protect -i 25 --timeout 300 --heartbeat 50
sed 's/^/  /' "$HOSTS_DIR/remus.err"
sleep 1
on_host primary "$T" remus-status kvstore | grep -E '^  "(summary|achieved_hz|epoch|acked)"|^    "(pause_us_avg|dirty_pages_avg|ack_ms_avg)"' | sed 's/^ */  /'

HIST="$RUNDIR_CLIENT/history"
say "The client writes and reads with 4 connections for 4 s (every request and reply recorded)"
rm_load "$HIST" 4
sleep 1.5
say "SIGKILL of the primary's VMM, in the middle of the load"
kill -9 "$(rm_vmm_pid primary)"
t0=$(date +%s%N)
rm_wait_backup_running 5 || { echo "the backup did not take over"; exit 1; }
t1=$(date +%s%N)
echo "the backup runs the domain $(((t1 - t0) / 1000000)) ms later:"
rm_backup_log | grep -E 'FAILOVER|applied epoch|domain running' | cut -c29- | sed 's/^/  /'
wait "$CLIENT_PID"
say "The client finished without reconnecting (its TCP connections moved with the domain):"
echo "  $(tail -1 "$HIST.out")"

say "The checker reads back every acknowledged write from the domain, now on the backup:"
acked=$(grep -c "^R .* ack \(SET\|DEL\|INCR\) " "$HIST")
verdict=$(on_host client "$CLIENT" --check "$HIST" --server "$RM_ADDR" | tail -1)
echo "  $acked acknowledged writes; $verdict"
if echo "$verdict" | grep -q "lost: 0$"; then
    say "Verdict: nothing a client saw acknowledged was lost. (Cleaning up.)"
else
    say "Verdict: acknowledged writes were LOST"
    exit 1
fi
