#!/bin/sh
# Benchmark baseline: tandem-kvstore-native on loopback driven by tandem-kvclient, 1 and 16 connections.
# usage: kvstore/bench-native.sh BUILD [SECONDS]
# The log lives in a temporary file under BUILD (a real disk: fdatasync per group commit).
# KV_SERVER_OPTS=--async-flush measures the asynchronous flush path instead.
set -eu
BUILD=${1:-build}
SECS=${2:-5}
SERVER="$BUILD/tandem-kvstore-native"
CLIENT="$BUILD/tandem-kvclient"
dir=$(mktemp -d "$BUILD/kvbench.XXXXXX")
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"$SERVER" --listen 127.0.0.1:0 --log "$dir/kv.log" --size 256 ${KV_SERVER_OPTS:-} >"$dir/server.out" 2>&1 &
pid=$!
i=0
while ! grep -q listening "$dir/server.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 100 ] && { cat "$dir/server.out"; echo "kv bench: server did not start" >&2; exit 1; }
    sleep 0.05
done
addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$dir/server.out")
fs=$(df -T "$dir" | awk 'NR == 2 {print $2}')
echo "kvstore native baseline${KV_SERVER_OPTS:+ ($KV_SERVER_OPTS)}: loopback, log on $fs, mix set=60,get=30,incr=5,del=5, ${SECS}s each"
for conns in 1 16; do
    printf 'conns=%-3s ' "$conns"
    "$CLIENT" --server "$addr" --conns "$conns" --duration "$SECS" --keys 1000 --quiet | tail -1
done
