#!/bin/bash
# System test: Remus over authenticated TCP (tandem remus --tcp / remus-receive --listen); the primary's
# link is cut under client load. The backup takes over after the failover timeout and serves the
# client with nothing acknowledged lost; the primary, cut off, keeps running UNPROTECTED. Both copies
# now run: the split brain that docs/remus.md "Split brain" describes (no arbiter yet), shown here.
# usage: remus_partition.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/remus_lib.sh"
rm_init "$@"
rm_hosts
trap_show() { [ "${PASSED:-}" = 1 ] || { show_domain primary kvstore; echo "--- backup vmm.log"; rm_backup_log | tail -30; cat "$HOSTS_DIR/recv.log"; }; }
hosts_at_exit trap_show

KEY="$HOSTS_DIR/remus.key"
head -c 32 /dev/urandom >"$KEY" && chmod 600 "$KEY"
rm_create
on_host_bg backup "$T" remus-receive --listen "$IP_BACKUP:7100" --key-file "$KEY" --timeout 20 \
    --disk-map "$PDISK=$BDISK" >"$HOSTS_DIR/recv.log" 2>&1
RECV_PID=$HOST_PID
for i in $(seq 1 50); do grep -q listening "$HOSTS_DIR/recv.log" && break; sleep 0.1; done
on_host primary "$T" remus --tcp "$IP_BACKUP:7100" --key-file "$KEY" -i 25 --timeout 500 --heartbeat 50 \
    kvstore 2>"$HOSTS_DIR/remus.err" || fail "tandem remus --tcp failed: $(cat "$HOSTS_DIR/remus.err")"
rm_status primary | grep -q '"state": "protected"' || fail "not protected: $(rm_status primary)"

HIST="$RUNDIR_CLIENT/history.cut"
rm_load "$HIST" 4
sleep 1.2
t0=$(date +%s%N)
cut_link primary
rm_wait_backup_running 5 || fail "the backup did not take over after the link was cut"
t1=$(date +%s%N)
wait "$CLIENT_PID"
summary=$(tail -1 "$HIST.out")
echo "$summary" | grep -q " errors: 0 " || fail "the client saw errors: $summary"
rm_check "$HIST"
echo "link cut: backup took over $(((t1 - t0) / 1000000)) ms later (failover timeout 500 ms); client: $(echo "$summary" | cut -d' ' -f1-6)"
wait "$RECV_PID" || fail "remus-receive did not report the takeover: $(cat "$HOSTS_DIR/recv.log")"
grep -q "FAILOVER done" "$HOSTS_DIR/recv.log" || fail "remus-receive log: $(cat "$HOSTS_DIR/recv.log")"
st=$(rm_status primary)
for i in $(seq 1 30); do echo "$st" | grep -q '"state": "unprotected"' && break; sleep 0.1; st=$(rm_status primary); done
echo "$st" | grep -q '"state": "unprotected"' || fail "the cut-off primary does not say it is unprotected: $st"
[ -n "$(rm_vmm_pid primary)" ] || fail "the cut-off primary stopped"
echo "split brain, as documented: the cut-off primary still runs, $(echo "$st" | sed -n 's/.*"reason": "\(.*\)".*/unprotected: \1/p')"
PASSED=1
echo "PASS: partition -> backup promoted after the timeout, nothing acknowledged lost"
