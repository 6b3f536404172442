#!/bin/bash
# System test: create -c, list, list -l, domid/domname, pause/unpause, rename, duplicate name, destroy.
source "$(dirname "$0")/lifecycle_lib.sh"
lc_init "$@"

# hello: `create -c` shows what the guest wrote and returns when it powers off.
out=$(timeout 30 "$T" create -c "$LC_CFG" name=hello "kernel=\"$G/hello.elf\"" 2>&1) ||
    fail "create -c hello failed: $out"
case "$out" in *SUCCESS*) ;; *) fail "create -c hello did not show the guest's SUCCESS: $out" ;; esac
assert_clean

# ticker: list shows it running, as a table and as JSON.
create t1 ticker || fail "create t1"
line=$("$T" list | awk '$1 == "t1"')
[ -n "$line" ] || fail "list does not show t1"
set -- $line
[ "$2" = 1 ] && [ "$3" = 32 ] && [ "$4" = 1 ] && [ "$5" = "r-----" ] ||
    fail "list line of t1 is '$line' (want id 1, 32 MiB, 1 vCPU, r-----)"
"$T" list | head -1 | grep -q "^Name  *ID   Mem VCPUs.State.Time(s)$" || fail "list header"
"$T" list -l | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert isinstance(d, list) and len(d) == 1, d
e = d[0]
assert e["domid"] == 1, e
assert e["config"]["c_info"]["name"] == "t1", e
assert e["config"]["b_info"]["kernel"].endswith("/ticker.elf"), e
assert len(e["config"]["c_info"]["uuid"]) == 36, e
assert e["info"]["state"] == "running", e
assert e["info"]["name"] == "t1" and e["info"]["vmm_pid"] > 0, e
assert e["info"]["uuid"] == e["config"]["c_info"]["uuid"], e
' || fail "list -l JSON of t1 is wrong"
[ "$("$T" domid t1)" = 1 ] || fail "domid t1"
[ "$("$T" domname 1)" = t1 ] || fail "domname 1"
expect_fail "no domain named 'nosuch'" "$T" domid nosuch
expect_fail "no domain with id 9" "$T" domname 9
expect_fail "no domain named 'nosuch'" "$T" pause nosuch

# Duplicate name: refused, and nothing half-made is left.
expect_fail "a domain named 't1' already exists (id 1)" create t1 ticker
[ "$(ls "$TANDEM_RUNDIR/domains")" = 1 ] || fail "duplicate create left a folder"

# pause stops the ticker's output, unpause resumes it.
wait_for 5 grep -q "tick 2" "$TANDEM_RUNDIR/domains/1/console.log" || fail "ticker does not tick"
"$T" pause t1 || fail "pause t1"
[ "$(state_of t1)" = "--p---" ] || fail "paused t1 shows state '$(state_of t1)'"
before=$(console_bytes t1)
sleep 2.5
after=$(console_bytes t1)
[ "$before" = "$after" ] || fail "console grew while paused ($before -> $after bytes)"
"$T" unpause t1 || fail "unpause t1"
[ "$(state_of t1)" = "r-----" ] || fail "unpaused t1 shows state '$(state_of t1)'"
wait_for 3 test "$(console_bytes t1)" -gt "$after" || fail "console did not grow after unpause"

# rename: new name works, old is gone, taken names are refused.
create other ticker || fail "create other"
expect_fail "a domain named 'other' already exists (id 2)" "$T" rename t1 other
expect_fail "domain name 'a/b' has character '/'" "$T" rename t1 a/b
"$T" rename t1 t2 || fail "rename t1 t2"
[ "$("$T" domid t2)" = 1 ] || fail "domid t2 after rename"
[ "$("$T" domname 1)" = t2 ] || fail "domname 1 after rename"
expect_fail "no domain named 't1'" "$T" domid t1
"$T" list -l t2 | grep -q '"name": "t2"' || fail "list -l t2 does not show the new name"
create t1 ticker || fail "the old name is not free after rename"

# create -p: the guest has not run until unpause.
"$T" create -p "$LC_CFG" name=held "kernel=\"$G/ticker.elf\"" || fail "create -p held"
[ "$(state_of held)" = "--p---" ] || fail "create -p gives state '$(state_of held)'"
sleep 1.5
[ "$(console_bytes held)" = 0 ] || fail "a domain created paused wrote to its console"
"$T" unpause held || fail "unpause held"
wait_for 3 sh -c "\"$T\" console --log held | grep -q 'tick 1'" || fail "held does not tick after unpause"

# destroy: gone from list, nothing left behind.
for d in t2 other t1 held; do
    "$T" destroy "$d" || fail "destroy $d"
done
expect_fail "no domain named 't2'" "$T" destroy t2
[ -z "$("$T" list | tail -n +2)" ] || fail "list not empty after destroy"
assert_clean
echo "PASS"
