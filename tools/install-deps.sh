#!/bin/sh
# Install the Debian packages Tandem needs to build and test, if any are missing.
set -eu
PKGS="meson ninja-build pkg-config gcc clang libclang-rt-14-dev python3 \
libjansson-dev libcmocka-dev libnl-3-dev libnl-route-3-dev liblz4-dev libzstd-dev libxxhash-dev libsodium-dev \
iproute2 dpkg-dev xz-utils iputils-ping openssh-server openssh-client"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
