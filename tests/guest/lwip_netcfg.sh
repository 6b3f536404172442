#!/bin/bash
# Guest test: networked guests refuse bad ip=/gw=/ip6= and a missing vif with one clear message.
# usage: lwip_netcfg.sh TANDEM-VMM GUEST-DIR
# (Runs echo.elf directly under tandem-vmm --kernel, without devices: start-up stops before any
# packet is needed, with poweroff code 2 and the reason on the console.)
VMM=${1:?path of tandem-vmm}
G=${2:?guest image directory}
[ -e /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
[ -x "$VMM" ] || { echo "SKIP: no tandem-vmm at $VMM"; exit 77; }
[ -f "$G/echo.elf" ] || { echo "SKIP: $G/echo.elf is not built"; exit 77; }
fails=0

# expect CMDLINE REGEX: the guest powers off with code 2 and its console line matches REGEX.
expect() {
    local out rc
    out=$(timeout 30 "$VMM" --kernel "$G/echo.elf" --cmdline "$1" 2>&1)
    rc=$?
    if [ $rc != 2 ] || ! echo "$out" | grep -Eq "^echo: $2\$"; then
        echo "FAIL: cmdline \"$1\": exit $rc, expected 2 and a line matching 'echo: $2'; got:"
        echo "$out" | head -5
        fails=$((fails + 1))
    else
        echo "ok: \"$1\" -> $(echo "$out" | grep '^echo: ' | head -1)"
    fi
}

expect "port=7" "no address: the command line needs ip=ADDR/PREFIX and/or ip6=ADDR/64 \(extra=\)"
expect "ip=10.0.0.300/24" "ip=10.0.0.300: not an IPv4 address \(expected ADDR/PREFIX, e.g. 10.0.0.2/24\)"
expect "ip=10.0.0.3/33" "ip=10.0.0.3: prefix length must be a number from 0 to 32"
expect "ip=10.0.0.3/x" "ip=10.0.0.3: prefix length must be a number from 0 to 32"
expect "ip=10.0.0.3/24 gw=10.0.0" "gw=10.0.0: not an IPv4 address"
expect "gw=10.0.0.1 ip6=fd00::2/64" "gw=10.0.0.1: a gateway needs an IPv4 address \(ip=ADDR/PREFIX\)"
expect "ip6=fd00::zz/64" "ip6=fd00::zz: not an IPv6 address \(expected ADDR/64, e.g. fd00::2/64\)"
expect "ip6=fd00::2/48" "ip6=fd00::2: prefix length must be 64 \(lwIP's on-link rule\)"
expect "ip6=fe80::2/64" "ip6=fe80::2: must be a unicast global or ULA address \(link-local is automatic\)"
expect "ip=10.0.0.2/24 port=70000" "port=70000: must be 1..65535"
# Well-formed addresses get as far as looking for the vif.
expect "ip=10.0.0.2/24 gw=10.0.0.1 ip6=fd00::2/64" \
    "no network device: the domain has no vif number 0 \(vif=\[...\]\)"
expect "ip=10.0.0.2" "no network device: the domain has no vif number 0 \(vif=\[...\]\)"

[ $fails = 0 ] || { echo "FAIL: $fails cases"; exit 1; }
echo "PASS"
