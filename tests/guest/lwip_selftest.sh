#!/bin/bash
# Guest test: run an lwIP self-test image under tandem-vmm; it must power off with 0 after SUCCESS.
# usage: lwip_selftest.sh TANDEM-VMM IMAGE [TIMEOUT-SECS]
VMM=${1:?path of tandem-vmm}
IMG=${2:?guest image}
[ -e /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
[ -x "$VMM" ] || { echo "SKIP: no tandem-vmm at $VMM"; exit 77; }
[ -f "$IMG" ] || { echo "SKIP: $IMG is not built"; exit 77; }
out=$(timeout "${3:-60}" "$VMM" --kernel "$IMG" 2>&1)
rc=$?
echo "$out" | tail -5
[ $rc = 0 ] || { echo "FAIL: $(basename "$IMG") exited with status $rc"; exit 1; }
[ "$(echo "$out" | tail -1)" = SUCCESS ] || { echo "FAIL: no SUCCESS as the last line"; exit 1; }
echo "PASS"
