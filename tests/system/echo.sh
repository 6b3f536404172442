#!/bin/bash
# System test: the echo guest in primary, reached over TCP (IPv4 and IPv6) and ping from client.
# usage: echo.sh TANDEM TANDEM-VMM GUEST-DIR
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/kv_guest_lib.sh"
ng_init "$@" echo
hosts_setup primary client

IP=10.99.0.100
IP6=fd99::100
# Let the client learn neighbours from unsolicited announcements, to see the guest's own.
on_host client sysctl -qw net.ipv4.conf.br0.arp_accept=1 || fail "sysctl arp_accept"
# (Linux creates entries from unsolicited NAs only as a router, RFC 9131: forwarding on.)
if on_host client test -e /proc/sys/net/ipv6/conf/br0/accept_untracked_na; then
    on_host client sysctl -qw net.ipv6.conf.br0.forwarding=1 \
        net.ipv6.conf.br0.accept_untracked_na=1 && NA_CHECK=1
fi
on_host primary "$T" create "$NG_EXAMPLES/echo.cfg" "kernel=\"$G/echo.elf\"" \
    "extra=\"ip=$IP/24 ip6=$IP6/64 port=7\"" 'vif=["bridge=br0"]' ||
    fail "tandem create of the echo guest failed"
trap_show() { [ "${PASSED:-}" = 1 ] || show_domain primary echo; }
hosts_at_exit trap_show

wait_console primary echo "listening on port 7" 10 || fail "the echo guest did not start"
console primary echo | grep -E "^echo: vif .* ip $IP/24 .*ip6 $IP6/64" ||
    fail "the echo guest did not print its addresses"

# Announcements at link up: the client knows the guest's MAC before it sent the guest anything.
mac=$(console primary echo | sed -n 's/^echo: vif [0-9]* mac \([0-9a-f:]*\) .*/\1/p')
[ -n "$mac" ] || fail "no MAC in the guest's start line"
on_host client ip neigh show "$IP" dev br0 | grep -q "lladdr $mac" ||
    fail "no gratuitous ARP: client has no neighbour entry $IP -> $mac ($(on_host client ip neigh))"
if [ "${NA_CHECK:-}" = 1 ]; then
    on_host client ip -6 neigh show "$IP6" dev br0 | grep -q "lladdr $mac" ||
        fail "no unsolicited NA: client has no neighbour entry $IP6 -> $mac"
fi

# The guest answers ARP and ICMP echo (lwIP), for v4 and v6 (neighbour discovery).
on_host client ping -c 3 -i 0.2 -W 2 "$IP" >/dev/null || fail "no ping reply from $IP"
on_host client ping -6 -c 3 -i 0.2 -W 2 "$IP6" >/dev/null || fail "no ping reply from $IP6"

# Many connections at once, each sending 64 KiB of random bytes and expecting them back.
out=$(on_host client python3 "$HERE/echo_client.py" "$IP" 7 --conns 32 --bytes 65536) ||
    fail "IPv4 echo: $out"
echo "IPv4: $out"
out=$(on_host client python3 "$HERE/echo_client.py" "$IP6" 7 --conns 8 --bytes 65536) ||
    fail "IPv6 echo: $out"
echo "IPv6: $out"

on_host primary "$T" destroy echo || fail "tandem destroy echo failed"
PASSED=1
echo "PASS: echo guest served IPv4 and IPv6 clients from another host"
