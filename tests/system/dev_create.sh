#!/bin/bash
# Disks and vifs through `tandem create`: a working domain (ping, block-list, network-list) and
# bad vif/disk configs that must fail clearly, leaving no TAP and no domain behind.
# Usage: dev_create.sh TANDEM_EXE TANDEM_VMM_EXE GUEST_DIR. Needs root and /dev/kvm (else skip 77).
set -u
source "$(dirname "$0")/lifecycle_lib.sh"
[ "$(id -u)" -eq 0 ] || lc_skip "network namespaces and TAP devices need root"
lc_init "$@"
[ -f "$G/netecho.elf" ] || lc_skip "guest image $G/netecho.elf is not built"

NS=tdm-dev$$
ip netns add "$NS" || lc_skip "cannot create a network namespace"
trap 'lc_cleanup; ip netns del "$NS" 2>/dev/null' EXIT
N() { ip netns exec "$NS" "$@"; }
N ip link set lo up
N ip link add br0 type bridge
N ip addr add 10.78.0.1/24 dev br0
N ip link set br0 up
IMG=$TANDEM_RUNDIR/disk.img
truncate -s 4M "$IMG"

vifs() { N ip -o link show | grep -o 'vif[0-9]*\.[0-9]*' || true; }
assert_no_taps() { [ -z "$(vifs)" ] || fail "$1: TAP devices left behind: $(vifs)"; }
# Create in the namespace (the VMM and its TAP live there).
ncreate() {
    local name=$1
    shift
    N "$T" create "$LC_CFG" "name=\"$name\"" "kernel=\"$G/netecho.elf\"" "$@"
}

# --- a domain with a disk and a vif, MAC generated
ncreate dev1 "disk=['$IMG,raw,xvda,rw']" "vif=['bridge=br0']" 'extra="ip=10.78.0.2 secs=60"' ||
    fail "create with a disk and a vif"
domid=$("$T" domid dev1) || fail "domid"
nl=$("$T" network-list dev1) || fail "network-list"
echo "$nl"
echo "$nl" | grep -Eq "^0 +0 +00:16:3e:[0-9a-f:]{8} .* vif$domid\.0@br0\$" ||
    fail "network-list does not show the generated MAC and vif$domid.0@br0: $nl"
mac=$(echo "$nl" | awk 'NR == 2 { print $3 }')
# The generated MAC is recorded in the domain's config (what list -l, save and Remus carry).
cfgmac=$("$T" list -l dev1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["config"]["nics"][0]["mac"])')
[ "$cfgmac" = "$mac" ] || fail "list -l shows MAC '$cfgmac', network-list '$mac'"
bl=$("$T" block-list dev1) || fail "block-list"
echo "$bl"
echo "$bl" | grep -Eq "^51712 +0 +0 .* $IMG \(rw\)\$" || fail "block-list: $bl"
N ip -d link show "vif$domid.0" | grep -q "master br0" || fail "vif$domid.0 is not on br0"
N ping -c 3 -i 0.2 -W 2 10.78.0.2 >/dev/null || fail "the guest does not answer ping"
N bridge fdb show dev "vif$domid.0" | grep -q "$mac" || fail "frames did not come from $mac"
# The same MAC again, on the same bridge, is refused while dev1 runs.
expect_fail "MAC $mac is already in use on bridge br0" \
    N "$T" create "$LC_CFG" 'name="dup"' "kernel=\"$G/netecho.elf\"" "vif=['bridge=br0,mac=$mac']"
"$T" list dup >/dev/null 2>&1 && fail "refused domain 'dup' exists"
"$T" destroy dev1 || fail "destroy"
assert_no_taps "after destroy"
assert_clean

# --- a restored domain keeps its MAC although the bridge learned it from elsewhere meanwhile
# (as after migration or failover); a new domain with that MAC is still refused.
ncreate dev2 "vif=['bridge=br0,mac=00:16:3e:aa:cc:01']" 'extra="ip=10.78.0.3 secs=120"' ||
    fail "create dev2"
N "$T" save dev2 "$TANDEM_RUNDIR/dev2.save" || fail "save dev2"
assert_no_taps "after save"
N ip link add txv0 type veth peer name txv1
N ip link set txv0 master br0 up
N ip link set txv1 address 00:16:3e:aa:cc:01 up
learned() { N bridge fdb show br br0 | grep -q "00:16:3e:aa:cc:01 dev txv0"; }
wait_for 10 learned || fail "the bridge did not learn txv1's MAC"
expect_fail "MAC 00:16:3e:aa:cc:01 is already in use on bridge br0 (by a station the bridge has learned on port txv0)" \
    ncreate dev3 "vif=['bridge=br0,mac=00:16:3e:aa:cc:01']"
N "$T" restore "$TANDEM_RUNDIR/dev2.save" || fail "restore of a domain whose MAC the bridge learned"
N ip link del txv0
N ping -c 2 -i 0.2 -W 2 10.78.0.3 >/dev/null || fail "the restored guest does not answer ping"
"$T" destroy dev2 || fail "destroy dev2"
assert_no_taps "after destroying the restored domain"
assert_clean

# --- bad vifs
expect_fail "vif vif1.0: bridge 'nobr0' does not exist" \
    ncreate bad1 "vif=['bridge=nobr0']"
assert_no_taps "missing bridge"
assert_clean
expect_fail 'mac: expected xx:xx:xx:xx:xx:xx' ncreate bad2 "vif=['bridge=br0,mac=00:16:3e:zz:00:01']"
assert_no_taps "bad MAC syntax"
assert_clean
N ip link add txv0 type veth peer name txv1
N ip link set txv0 address 00:16:3e:aa:bb:01 master br0 up
expect_fail "MAC 00:16:3e:aa:bb:01 is already in use on bridge br0 (by port txv0)" \
    ncreate bad3 "vif=['bridge=br0,mac=00:16:3e:aa:bb:01']"
N ip link del txv0
assert_no_taps "duplicate MAC"
assert_clean
# A vif that fails after a good one: the good one's TAP goes too.
expect_fail "bridge 'nobr0' does not exist" ncreate bad4 "vif=['bridge=br0', 'bridge=nobr0']"
assert_no_taps "second vif failing"
assert_clean

# --- bad disks
expect_fail "disk xvda: cannot open $TANDEM_RUNDIR/missing.img read-write: No such file" \
    ncreate bad5 "disk=['$TANDEM_RUNDIR/missing.img,raw,xvda,rw']" "vif=['bridge=br0']"
assert_no_taps "missing disk"
assert_clean
expect_fail "disk xvdb: format 'qcow2' is not supported, only raw" \
    ncreate bad6 "disk=['$IMG,qcow2,xvdb,rw']" "vif=['bridge=br0']"
assert_no_taps "qcow2"
assert_clean
echo "PASS"
