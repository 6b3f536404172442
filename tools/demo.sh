#!/bin/sh
# `make demo`: the main job Tandem can run today, with commentary.
set -eu
BUILD=${1:-build}
T="$BUILD/tandem"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "The example domain configuration, parsed (tandem -N create examples/hello.cfg)"
"$T" -N create examples/hello.cfg

say "An xl disk spec, parsed as 'xl -N block-attach' does"
"$T" -N block-attach 0 'format=raw, vdev=xvda, access=rw, target=/srv/tandem/kv.img'

say "A Remus-replicated disk (tap:remus:HOST:PORT|aio:PATH)"
"$T" -N block-attach 0 'tap:remus:backup:9000|aio:/srv/tandem/kv.img,xvda,w'

say "A vif spec with a rate limit"
"$T" -N network-attach 0 'mac=00:16:3e:00:00:01,bridge=br0,rate=10Mb/s@20ms'
