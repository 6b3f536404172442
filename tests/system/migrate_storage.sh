#!/bin/bash
# System test: tandem migrate --copy-storage. The backup's receiver runs in its own mount namespace
# where another directory is bind-mounted over the disk's folder, so the same path names a
# different file there (two hosts without shared storage). kvstore under load moves with its disk;
# destroyed and created again on backup from the copied disk it replays its log and no
# acknowledged write is lost. Also: --copy-storage onto the sender's own file is refused and the
# source keeps running; an existing file on the receiver is never overwritten. The disk holds 31 MiB
# of random bytes besides the log, copied while kvstore runs under load and writes its log (the
# re-sent dirty blocks are counted and must be > 0); the copied random region must be identical.
# usage: migrate_storage.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kv_guest_lib.sh"
source "$HERE/migrate_lib.sh"
CLIENT=$(realpath -m -- "${4:?path of tandem-kvclient}")
ng_init "$1" "$2" "$3" kvstore
command -v unshare >/dev/null || ng_skip "no unshare (util-linux)"
hosts_setup primary backup client
mig_init

IP=10.99.0.100
ADDR="$IP:7000"
M="$HOSTS_DIR/disks"        # the path in the config
B="$HOSTS_DIR/disks-backup" # what backup's receiver sees at $M
HIST="$RUNDIR_CLIENT/history"
mkdir -p "$M" "$B"
truncate -s 64M "$M/kv.img" || fail "cannot make the disk image"
# 31 MiB of random bytes in the log's second region (kvstore starts in the first), so the live
# copy takes long enough for the loaded guest to write during it.
head -c $((31 << 20)) /dev/urandom >"$HOSTS_DIR/fill" || fail "cannot make random bytes"
dd if="$HOSTS_DIR/fill" of="$M/kv.img" bs=1M seek=33 conv=notrunc status=none || fail "cannot fill the disk"
trap_show() {
    [ "${PASSED:-}" = 1 ] && return
    show_domain primary kvstore
    show_domain backup kvstore
}
hosts_at_exit trap_show

cat >"$HOSTS_DIR/recv-wrap.sh" <<WRAP
#!/bin/sh
# The receiver in a private mount namespace where $B is mounted over $M.
exec unshare -m --propagation private sh -c 'mount --bind "$B" "$M" && exec env TANDEM_RUNDIR="$RUNDIR_BACKUP" TANDEM_VMM="$TANDEM_VMM" "$T" migrate-receive'
WRAP
chmod +x "$HOSTS_DIR/recv-wrap.sh"

ng_kvstore_create primary kvstore "$IP" "$M/kv.img"

# 1. Onto the sender's own file (same path, same file): refused, the source keeps running.
out=$(migrate_shell primary backup kvstore --copy-storage 2>&1) && fail "copy onto the same file was accepted"
echo "$out" | tail -1
echo "$out" | grep -q "sender's own file" || fail "no clear refusal: $out"
[ "$(exactly_one kvstore)" = primary ] || fail "not on primary after the refusal"

# 2. An existing file on the receiver is not overwritten.
echo keep >"$B/kv.img"
out=$(on_host primary "$T" migrate --copy-storage -s "ip netns exec" --receiver "$HOSTS_DIR/recv-wrap.sh" \
    kvstore "$NS_BACKUP" 2>&1) && fail "an existing disk file on the receiver was overwritten"
echo "$out" | grep -q "already exists" || fail "no clear refusal: $out"
[ "$(cat "$B/kv.img")" = keep ] || fail "the receiver's existing file was changed"
rm "$B/kv.img"
[ "$(exactly_one kvstore)" = primary ] || fail "not on primary after the refusal"

# 3. Under load, with the disk copied.
on_host_bg client "$CLIENT" --server "$ADDR" --conns 4 --duration 5 --timeout 3000 --quiet \
    --history "$HIST" >"$HIST.out" 2>&1
CLIENT_PID=$HOST_PID
sleep 1.5
out=$(on_host primary "$T" migrate --copy-storage -s "ip netns exec" --receiver "$HOSTS_DIR/recv-wrap.sh" \
    kvstore "$NS_BACKUP" 2>&1) || fail "migrate --copy-storage failed: $out"
echo "$out" | tail -2
[ "$(exactly_one kvstore)" = backup ] || fail "kvstore does not run on backup"
[ -s "$B/kv.img" ] || fail "no disk file on backup's side"
# Copied while the guest ran, with the blocks it wrote meanwhile sent again.
live=$(echo "$out" | sed -n 's/^disks copied live: \([0-9]*\)\.[0-9] MB.* re-sent \([0-9]*\) dirty blocks.*/\1 \2/p')
[ -n "$live" ] || fail "no live disk copy reported: $out"
set -- $live
[ "$1" -ge 32 ] || fail "only $1 MB of the disk went across"
[ "$2" -gt 0 ] || fail "no dirty block was re-sent: the guest wrote nothing during the copy?"
cmp -n $((31 << 20)) -i $((33 << 20)):0 "$B/kv.img" "$HOSTS_DIR/fill" || fail "the copied disk's random region differs"
wait "$CLIENT_PID"
rc=$?
summary=$(tail -1 "$HIST.out")
echo "$summary"
[ $rc = 0 ] || fail "the client saw errors: $summary"

# The copied disk holds the log: a fresh domain on backup from it loses nothing.
on_host backup "$T" destroy kvstore || fail "destroy on backup"
ng_kvstore_create backup kvstore "$IP" "$B/kv.img"
replayed=$(console backup kvstore | sed -n 's/.*: \([0-9]*\) records replayed.*/\1/p' | tail -1)
echo "replayed from the copied disk: $replayed records"
[ "${replayed:-0}" -gt 0 ] || fail "the copied disk holds no log records"
check=$(on_host client "$CLIENT" --check "$HIST" --server "$ADDR")
echo "$check" | tail -1
echo "$check" | tail -1 | grep -Eq "^acknowledged: [1-9][0-9]* lost: 0$" || fail "checker verdict"

on_host backup "$T" destroy kvstore || fail "destroy kvstore"
PASSED=1
echo "PASS: --copy-storage moved kvstore with its disk; refusals for the same file and an existing file"
