#!/usr/bin/env python3
"""Write damaged copies of a saved image (tests/system/save_cli.sh): one file per way to break it.

Usage: save_images.py IMAGE OUTDIR
Names: magic, version (future, valid header checksum), trunc-N (cut inside record N),
unknown (a non-skippable unknown record with a valid checksum after DOMAIN_CONFIG),
flip-N (one byte flipped inside record N's body, or its header when it has none).
Prints one line per file: NAME RECORD-NUMBER (0 for the header).
"""
import ctypes
import ctypes.util
import os
import struct
import sys

_xx = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
_xx.XXH3_64bits.restype = ctypes.c_uint64
_xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def xxh3(b):
    return _xx.XXH3_64bits(bytes(b), len(b))


def records(data):
    off, n = 32, 0
    while off + 16 <= len(data):
        rtype, length = struct.unpack_from("<II", data, off)
        n += 1
        yield n, off, rtype, length
        off += 16 + ((length + 7) & ~7)
        if rtype == 8:
            break


def main():
    src, out = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    os.makedirs(out, exist_ok=True)

    def put(name, rec, blob):
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
        print(name, rec)

    put("magic", 0, b"TANDEMXX" + data[8:])
    hdr = bytearray(data[:32])
    struct.pack_into("<I", hdr, 8, 2)
    struct.pack_into("<Q", hdr, 24, xxh3(hdr[:24]))
    put("version", 0, bytes(hdr) + data[32:])
    recs = list(records(data))
    for n, off, rtype, length in recs:
        cut = off + 16 + length // 2 if length else off + 8
        put(f"trunc-{n}", n, data[:cut])
        bad = bytearray(data)
        bad[off + 16 + length // 2 if length else off + 2] ^= 0x40
        put(f"flip-{n}", n, bytes(bad))
    # Unknown, not skippable: type 0x1234 with a correct checksum, right after record 1.
    n1, off1, _, len1 = recs[0]
    after = off1 + 16 + ((len1 + 7) & ~7)
    body = b"\x01" * 8
    head = struct.pack("<II", 0x1234, len(body))
    rec = head + struct.pack("<Q", xxh3(head + body)) + body
    put("unknown", 2, data[:after] + rec + data[after:])


if __name__ == "__main__":
    main()
