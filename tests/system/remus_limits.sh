#!/bin/bash
# System test: Remus refuses, with a clear message, disks too large for the in-memory initial copy
# (VMM_DISKBUF_IMAGE_MAX, 1 GiB in all): the domain runs on unprotected; the same domain can be
# protected without disk replication (-F -d).
# usage: remus_limits.sh TANDEM TANDEM-VMM GUEST-DIR TANDEM-KVCLIENT
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/remus_lib.sh"
rm_init "$@"
[ -f "$G/ticker.elf" ] || ng_skip "guest image $G/ticker.elf is not built"
hosts_setup primary
trap_show() { [ "${PASSED:-}" = 1 ] || show_domain primary tk; }
hosts_at_exit trap_show

BIG="$RUNDIR_PRIMARY/big.img"
truncate -s 2G "$BIG" || fail "cannot make a sparse 2 GiB image"
on_host primary "$T" create "$NG_EXAMPLES/ticker.cfg" name=tk "kernel=\"$G/ticker.elf\"" memory=32 \
    "disk=[\"$BIG,raw,xvda,rw\"]" >/dev/null || fail "tandem create with a 2 GiB disk failed"
out=$(on_host primary "$T" remus -F -b tk 2>&1) && fail "protecting a domain with 2 GiB of disk was accepted"
echo "$out" | grep -q "add up to 2048 MiB" || fail "the refusal does not say why: $out"
echo "$out" | grep -q "limited to 1024 MiB" || fail "the refusal does not name the limit: $out"
on_host primary "$T" remus-status tk | grep -qE '"state": "(unprotected|off|stopped)"' ||
    fail "state after the refusal: $(on_host primary "$T" remus-status tk)"
on_host primary "$T" list | grep -q "^tk " || fail "the domain did not run on after the refusal"
echo "1. refused: $(echo "$out" | tail -1)"
on_host primary "$T" remus -F -b -d tk 2>&1 || fail "protecting it without disk replication failed"
on_host primary "$T" remus-status tk | grep -q '"state": "protected"' || fail "not protected with -d"
echo "2. protected without disk replication (-F -d)"
PASSED=1
echo "PASS: remus_limits"
