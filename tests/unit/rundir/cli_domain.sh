#!/bin/bash
# CLI domain commands against fake-vmm (no KVM): output formats, exit codes and messages.
T=$(realpath -- "$1")
TANDEM_VMM=$(realpath -- "$2")
CFG=$(realpath -- "$3")
export TANDEM_VMM
TANDEM_RUNDIR=$(mktemp -d /tmp/tdmcli.XXXXXX) || exit 1
export TANDEM_RUNDIR
cleanup() {
    for p in "$TANDEM_RUNDIR"/domains/*/vmm.pid; do
        [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
    done
    rm -rf "$TANDEM_RUNDIR"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    exit 1
}

# expect RC "STDERR PART" COMMAND...
expect() {
    local want_rc=$1 want=$2 out rc
    shift 2
    out=$("$@" 2>&1 >/dev/null)
    rc=$?
    [ $rc -eq "$want_rc" ] || fail "'$*' exited $rc (want $want_rc): $out"
    case "$out" in *"$want"*) ;; *) fail "'$*' said '$out', which lacks '$want'" ;; esac
}

"$T" create "$CFG" name=web 'kernel="/fake.elf"' 2>/dev/null || fail "create web"
"$T" create -p "$CFG" name=db 'kernel="/fake.elf"' 2>/dev/null || fail "create -p db"

out=$("$T" list) || fail "list"
want=$(printf '%s\n' \
    'Name                                        ID   Mem VCPUs	State	Time(s)' \
    'web                                          1    64     1     r-----       1.5' \
    'db                                           2    64     1     --p---       1.5')
[ "$out" = "$want" ] || fail "list printed:
$out
want:
$want"
[ "$("$T" list db | tail -n +2)" = "$(echo "$want" | tail -1)" ] || fail "list db"

"$T" list -l web | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [e["domid"] for e in d] == [1], d
assert d[0]["config"]["c_info"]["name"] == "web", d
assert d[0]["info"]["state"] == "running", d
assert d[0]["info"]["cpu_time_ns"] == 1500000000, d
' || fail "list -l web"
[ "$("$T" list -l | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] ||
    fail "list -l has not 2 entries"

[ "$("$T" domid db)" = 2 ] || fail "domid db"
[ "$("$T" domname 2)" = db ] || fail "domname 2"
"$T" unpause db || fail "unpause db"
[ "$("$T" list db | awk 'NR == 2 { print $5 }')" = "r-----" ] || fail "db not running after unpause"
expect 1 "domain 'db' (id 2): domain is not paused" "$T" unpause db
"$T" rename db data || fail "rename"
expect 1 "a domain named 'web' already exists (id 1)" "$T" rename data web
expect 1 "no domain named 'db'" "$T" domid db
[ "$("$T" console --log data)" = "hello from db" ] || fail "console --log data"

# usage errors exit 2, unknown domains 1
expect 2 "Usage: tandem pause DOM" "$T" pause
expect 2 "Usage: tandem rename DOM NEWNAME" "$T" rename web
expect 2 "'x1' is not a domain id" "$T" domname x1
expect 2 "unknown option '-q'" "$T" list -q
expect 1 "no domain named 'nope'" "$T" list nope
expect 1 "no domain with id 7" "$T" destroy 7
expect 1 "no domain named 'nope'" "$T" console nope

"$T" destroy web || fail "destroy web"
"$T" destroy 2 || fail "destroy 2"
[ "$("$T" list | wc -l)" = 1 ] || fail "list not empty"
[ -z "$(ls -A "$TANDEM_RUNDIR/domains" "$TANDEM_RUNDIR/names" | grep -v :)" ] || fail "stale files"
echo PASS
