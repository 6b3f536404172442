#!/bin/bash
# Fetch Debian's lwip source package with a private apt state, verify it and unpack it into a cache dir.
#
# usage: fetch-lwip.sh [--refresh] OUTDIR
#
# Prints the unpacked source directory (OUTDIR/lwip-VERSION) as its last line.
# A no-op (no network) when OUTDIR already holds a verified unpacked copy,
# unless --refresh is given. The system's apt configuration is only read
# (to find the Debian mirror, suite and keyring), never changed.
# See docs/lwip.md.
set -euo pipefail

die() {
    echo "fetch-lwip: $*" >&2
    exit 1
}

refresh=0
if [ "${1:-}" = "--refresh" ]; then
    refresh=1
    shift
fi
[ $# = 1 ] || die "usage: fetch-lwip.sh [--refresh] OUTDIR"
mkdir -p "$1" || die "cannot create output directory '$1'"
OUT=$(cd "$1" && pwd)
# One fetch at a time per cache (several build directories may configure at once).
if command -v flock >/dev/null; then
    exec 9>"$OUT/.lock"
    flock 9
fi
STAMP_NAME=.tandem-lwip-verified

# A cached copy is valid when its stamp exists and the files it lists still hash the same.
cached_copy() {
    local d
    for d in "$OUT"/lwip-*/; do
        d=${d%/}
        [ -f "$d/$STAMP_NAME" ] || continue
        if (cd "$d" && sha256sum --quiet --check "$STAMP_NAME" >/dev/null 2>&1); then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if [ $refresh = 0 ] && dir=$(cached_copy); then
    echo "fetch-lwip: using cached $dir" >&2
    echo "$dir"
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get is not available (a Debian host is needed to fetch lwip)"
command -v dpkg-source >/dev/null || die "dpkg-source is not available (install dpkg-dev)"

# First Debian main archive entry of the system's apt sources: "URI SUITE KEYRING".
find_mirror() {
    local f
    # deb822 .sources files
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && uris != "" &&
                    suites != "" && uris !~ /security/ && !done) {
                    split(uris, u, " "); split(suites, s, " ");
                    print u[1], s[1], (signed == "" ? "-" : signed); done = 1
                }
                types = uris = suites = comps = signed = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
            /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
            /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
            /^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
            /^Signed-By:/ { sub(/^Signed-By:[ \t]*/, ""); signed = $0 }
            END { flush() }' "$f" | head -1
    done
    # one-line .list files
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" {
                i = 2; signed = "-"
                if ($2 ~ /^\[/) {
                    while (i <= NF && $i !~ /\]$/) { if ($i ~ /signed-by=/) { signed = $i }; i++ }
                    if ($i ~ /signed-by=/) signed = $i
                    i++
                }
                sub(/.*signed-by=/, "", signed); sub(/\]$/, "", signed)
                uri = $i; suite = $(i + 1)
                for (j = i + 2; j <= NF; j++)
                    if ($j == "main" && uri !~ /security/) { print uri, suite, signed; exit }
            }' "$f"
    done
}

read -r MIRROR SUITE KEYRING < <(find_mirror | head -1) ||
    die "no Debian 'deb ... main' entry found in /etc/apt/sources.list(.d)"
[ "$KEYRING" = "-" ] && KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || die "archive keyring '$KEYRING' not found"

# Private apt state under OUT: its own sources list, lists, cache; no system change.
APT="$OUT/apt"
mkdir -p "$APT/etc/sources.list.d" "$APT/etc/preferences.d" "$APT/state/lists/partial" \
    "$APT/cache/archives/partial" "$OUT/download"
echo "deb-src [signed-by=$KEYRING] $MIRROR $SUITE main" >"$APT/etc/sources.list"
apt_opts=(
    -o "Dir::Etc::sourcelist=$APT/etc/sources.list"
    -o "Dir::Etc::sourceparts=$APT/etc/sources.list.d"
    -o "Dir::Etc::preferencesparts=$APT/etc/preferences.d"
    -o "Dir::State=$APT/state"
    -o "Dir::State::status=/var/lib/dpkg/status"
    -o "Dir::Cache=$APT/cache"
    -o "APT::Get::List-Cleanup=false"
    -o "Debug::NoLocking=true"
)
echo "fetch-lwip: deb-src $MIRROR $SUITE main (private apt state in $APT)" >&2
apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update of the private source list failed"

# apt-get source checks every file against the Sources index, which the signed Release covers.
(cd "$OUT/download" && rm -f lwip_* &&
    apt-get "${apt_opts[@]}" -qq source --download-only lwip >&2) ||
    die "apt-get source --download-only lwip failed"
dsc=$(ls "$OUT"/download/lwip_*.dsc 2>/dev/null | head -1)
[ -n "$dsc" ] || die "no lwip .dsc was downloaded"
version=$(sed -n 's/^Version: *//p' "$dsc" | head -1)
upstream=${version#*:}
upstream=${upstream%-*}
[ -n "$upstream" ] || die "no Version in $dsc"

# dpkg-source checks the .dsc's checksums of every file before unpacking.
dest="$OUT/lwip-$upstream"
tmp="$OUT/.unpack.$$"
rm -rf "$tmp"
(cd "$OUT/download" && dpkg-source --no-copy -x "$(basename "$dsc")" "$tmp" >&2) ||
    die "dpkg-source could not verify or unpack $dsc"
[ -f "$tmp/src/core/tcp.c" ] || die "unpacked lwip has no src/core/tcp.c; layout changed?"
(cd "$tmp" && find src -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z |
    xargs -0 sha256sum >"$STAMP_NAME")
rm -rf "$dest"
mv "$tmp" "$dest"
echo "fetch-lwip: lwip $version unpacked and verified in $dest" >&2
echo "$dest"
