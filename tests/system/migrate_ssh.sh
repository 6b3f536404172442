#!/bin/bash
# System test: the default remote-shell route with a real sshd. A throwaway sshd (Debian
# openssh-server; host key, user key and authorized_keys in a temp dir) listens only inside the
# backup namespace; `tandem migrate -s 'ssh <options>' kvstore root@BACKUP` moves a kvstore domain
# under client load there through it, and the client sees no broken connection.
# usage: migrate_ssh.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kv_guest_lib.sh"
source "$HERE/migrate_lib.sh"
CLIENT=$(realpath -m -- "${4:?path of tandem-kvclient}")
ng_init "$1" "$2" "$3" kvstore
SSHD=/usr/sbin/sshd
[ -x "$SSHD" ] || ng_skip "no $SSHD (Debian openssh-server; tools/install-deps.sh installs it)"
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || ng_skip "no ssh / ssh-keygen (openssh-client)"
hosts_setup primary backup client
mig_init

IP=10.99.0.100
ADDR="$IP:7000"
DISK="$HOSTS_DIR/kv.img"
HIST="$RUNDIR_CLIENT/history"
S="$HOSTS_DIR/ssh"
mkdir -m 700 "$S"
truncate -s 64M "$DISK" || fail "cannot make the disk image $DISK"
trap_show() {
    [ "${PASSED:-}" = 1 ] && return
    echo "--- sshd log"
    tail -20 "$S/sshd.log" 2>/dev/null
    show_domain primary kvstore
    show_domain backup kvstore
}
hosts_at_exit trap_show

ssh-keygen -q -t ed25519 -N '' -f "$S/host_key" || fail "ssh-keygen host key"
ssh-keygen -q -t ed25519 -N '' -f "$S/id" || fail "ssh-keygen user key"
cp "$S/id.pub" "$S/authorized_keys"
echo "$IP_BACKUP $(cat "$S/host_key.pub")" >"$S/known_hosts"
cat >"$S/sshd_config" <<CFG
ListenAddress $IP_BACKUP:22
HostKey $S/host_key
AuthorizedKeysFile $S/authorized_keys
PidFile $S/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
CFG
mkdir -p /run/sshd # privilege separation directory sshd insists on
on_host_bg backup "$SSHD" -D -e -f "$S/sshd_config" >"$S/sshd.log" 2>&1
wait_tcp primary "$IP_BACKUP:22" 10 || fail "sshd does not listen in backup: $(cat "$S/sshd.log")"
SSH="ssh -F /dev/null -i $S/id -o UserKnownHostsFile=$S/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes"
out=$(on_host primary $SSH "root@$IP_BACKUP" echo ssh-ok 2>&1)
[ "$out" = ssh-ok ] || fail "ssh into backup does not work: $out"

ng_kvstore_create primary kvstore "$IP" "$DISK"
on_host_bg client "$CLIENT" --server "$ADDR" --conns 4 --duration 5 --timeout 3000 --quiet \
    --history "$HIST" >"$HIST.out" 2>&1
CLIENT_PID=$HOST_PID
sleep 1.5

# The remote command: ssh ... root@BACKUP env TANDEM_RUNDIR=... tandem migrate-receive.
out=$(on_host primary "$T" migrate -s "$SSH" --receiver "$(receiver_cmd backup)" kvstore \
    "root@$IP_BACKUP" 2>&1) || fail "migrate over ssh failed: $out"
echo "$out"
[ "$(exactly_one kvstore)" = backup ] || fail "kvstore does not run on backup after migrate over ssh"
grep -q "Accepted publickey" "$S/sshd.log" || fail "sshd did not log the sender's login"

wait "$CLIENT_PID"
rc=$?
summary=$(tail -1 "$HIST.out")
echo "$summary"
[ $rc = 0 ] || fail "the client saw errors: $summary"
echo "$summary" | grep -q "errors: 0 .*broken: 0 " || fail "client summary: $summary"
check=$(on_host client "$CLIENT" --check "$HIST" --server "$ADDR")
echo "$check" | tail -1
echo "$check" | tail -1 | grep -Eq "^acknowledged: [1-9][0-9]* lost: 0$" || fail "checker verdict"

on_host backup "$T" destroy kvstore || fail "destroy kvstore"
PASSED=1
echo "PASS: kvstore migrated to backup through a real sshd under load, no broken connection, none lost"
