# Helpers of the Remus system tests (remus_*.sh; sourced): a protected kvstore on primary, backup on backup.
#
# Usage: source "$(dirname "$0")/remus_lib.sh"; rm_init TANDEM TANDEM-VMM GUEST-DIR KVCLIENT
# Then per run: rm_hosts; rm_protect [tandem remus options]; rm_load HIST SECS; ...
RM_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$RM_HERE/kv_guest_lib.sh"

RM_IP=10.99.0.100
RM_ADDR="$RM_IP:7000"

rm_init() {
    CLIENT=$(realpath -m -- "${4:?path of tandem-kvclient}")
    ng_init "$1" "$2" "$3" kvstore
    [ -x "$CLIENT" ] || ng_skip "no tandem-kvclient at $CLIENT"
}

# rm_hosts: fresh primary/backup/client hosts and disk images (sets PDISK, BDISK).
rm_hosts() {
    hosts_setup primary backup client
    PDISK="$RUNDIR_PRIMARY/kv.img"
    BDISK="$RUNDIR_BACKUP/kv.img"
    truncate -s 16M "$PDISK" "$BDISK" || fail "cannot make the disk images"
}

# rm_create: the kvstore guest on primary, reachable from client.
rm_create() {
    on_host primary "$T" create "$NG_EXAMPLES/kvstore.cfg" "kernel=\"$G/kvstore.elf\"" \
        "memory=64" "extra=\"ip=$RM_IP/24 ip6=fd99::100/64 port=7000\"" "disk=[\"$PDISK,raw,xvda,rw\"]" \
        'vif=["bridge=br0"]' >/dev/null || fail "tandem create of the kvstore guest failed"
    wait_console primary kvstore "listening on port 7000" 20 || fail "the kvstore guest did not start"
    wait_tcp client "$RM_ADDR" 10 || fail "kvstore guest not reachable at $RM_ADDR from client"
}

# rm_protect [OPTIONS...]: tandem remus to the backup host through `ip netns exec`.
rm_protect() {
    on_host primary "$T" remus -s "ip netns exec $NS_BACKUP env TANDEM_RUNDIR=$RUNDIR_BACKUP TANDEM_VMM=$TANDEM_VMM" \
        --receiver "$T migrate-receive -r --disk-map $PDISK=$BDISK" "$@" kvstore "" \
        2>"$HOSTS_DIR/remus.err" || { cat "$HOSTS_DIR/remus.err"; fail "tandem remus failed"; }
}

# rm_status HOST: remus-status of kvstore on HOST (JSON).
rm_status() {
    on_host "$1" "$T" remus-status kvstore
}

# rm_load HIST SECS [CONNS]: client load in the background; sets CLIENT_PID.
rm_load() {
    on_host_bg client "$CLIENT" --server "$RM_ADDR" --conns "${3:-4}" --duration "$2" --timeout 3000 \
        --quiet --history "$1" >"$1.out" 2>&1
    CLIENT_PID=$HOST_PID
}

rm_vmm_pid() {
    cat "$(host_rundir "$1")/names/kvstore/vmm.pid" 2>/dev/null
}

# rm_wait_backup_running SECS: the backup domain took over (its vmm.pid exists).
rm_wait_backup_running() {
    local i=0 n=$(($1 * 10))
    while [ $i -lt $n ]; do
        [ -n "$(rm_vmm_pid backup)" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# rm_backup_log: the backup VMM's log (for messages).
rm_backup_log() {
    cat "$RUNDIR_BACKUP"/domains/*/vmm.log 2>/dev/null
}

# rm_check HIST: every acknowledged write of HIST is readable now (the server is wherever it runs).
rm_check() {
    local out rc acked
    acked=$(grep -c "^R .* ack \(SET\|DEL\|INCR\) " "$1")
    out=$(on_host client "$CLIENT" --check "$1" --server "$RM_ADDR")
    rc=$?
    echo "$out" | tail -1
    [ $rc = 0 ] || fail "checker exit $rc for $1: $(echo "$out" | tail -3)"
    echo "$out" | tail -1 | grep -Eq "^acknowledged: [0-9]+ lost: 0$" || fail "checker verdict: $(echo "$out" | tail -1)"
    RM_ACKED=$acked
}
