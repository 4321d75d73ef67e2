#!/usr/bin/env python3
"""Builds the fuzz corpora from capture files (called by seed.sh; stdlib only).

usage: seed.py OUTDIR CAPTURE...

Writes, under OUTDIR:
  source_file/, pipeline/  the captures themselves (files over 64 KiB cut to their first 64 KiB)
  decode/                  packets of each classic-pcap capture in the decode target's record format
  http2/                   each TCP connection's payloads in the http2 target's operation format
  hpack/                   HPACK header blocks of HEADERS frames found in those payloads
"""
import hashlib
import os
import struct
import sys

MAX_FILE = 64 * 1024
# Must match whoclosed_fuzz::LINKS (fuzz/src/lib.rs).
LINKS = [0, 1, 9, 10, 12, 14, 50, 101, 104, 105, 108, 113, 127, 228, 229, 239, 242, 276, 147]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def put(outdir, target, data):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pcap_packets(raw):
    """(linktype, [bytes]) of a classic pcap file, or None."""
    if len(raw) < 24:
        return None
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None
    link = struct.unpack(e + "I", raw[20:24])[0] & 0xFFFF
    pos, out = 24, []
    while pos + 16 <= len(raw) and len(out) < 2000:
        _, _, caplen, _ = struct.unpack(e + "IIII", raw[pos:pos + 16])
        pos += 16
        if caplen > 262144 or pos + caplen > len(raw):
            break
        out.append(raw[pos:pos + caplen])
        pos += caplen
    return link, out


def ip_offset(link, p):
    """Offset of the IP header for the common link types, or None."""
    if link == 1:
        off, et = 14, p[12:14]
        while et in (b"\x81\x00", b"\x88\xa8") and len(p) >= off + 4:
            et, off = p[off + 2:off + 4], off + 4
        return off if et in (b"\x08\x00", b"\x86\xdd") else None
    if link in (101, 228, 229, 12, 14):
        return 0
    if link in (0, 108):
        return 4
    if link == 113:
        return 16
    if link == 276:
        return 20
    return None


def tcp_of(link, p):
    off = ip_offset(link, p)
    if off is None or len(p) < off + 20:
        return None
    v = p[off] >> 4
    if v == 4:
        ihl = (p[off] & 15) * 4
        if p[off + 9] != 6:
            return None
        tot = struct.unpack(">H", p[off + 2:off + 4])[0]
        src, dst, t = p[off + 12:off + 16], p[off + 16:off + 20], off + ihl
        end = min(len(p), off + tot) if tot else len(p)
    elif v == 6:
        if len(p) < off + 40 or p[off + 6] != 6:
            return None
        plen = struct.unpack(">H", p[off + 4:off + 6])[0]
        src, dst, t = p[off + 8:off + 24], p[off + 24:off + 40], off + 40
        end = min(len(p), t + plen) if plen else len(p)
    else:
        return None
    if len(p) < t + 20:
        return None
    sp, dp, seq = struct.unpack(">HHI", p[t:t + 8])
    flags = p[t + 13]
    doff = (p[t + 12] >> 4) * 4
    return (src, sp, dst, dp, seq, flags, p[t + doff:end])


def streams(link, pkts):
    """Per connection: the list of (dir, payload), dir 0 = client to server (SYN sender or higher port)."""
    conns = {}
    for p in pkts:
        t = tcp_of(link, p)
        if t is None:
            continue
        src, sp, dst, dp, _seq, flags, payload = t
        a, b = (src, sp), (dst, dp)
        key = (min(a, b), max(a, b))
        c = conns.setdefault(key, {"client": None, "ops": []})
        if c["client"] is None and (flags & 0x12) == 0x02:
            c["client"] = a
        if payload:
            c["ops"].append((a, payload))
    out = []
    for key, c in conns.items():
        client = c["client"] or (key[0] if key[0][1] > key[1][1] else key[1])
        ops = [(0 if a == client else 1, pl) for a, pl in c["ops"]]
        if ops:
            out.append(ops)
    return out


def http2_seed(ops):
    out = bytearray([0])  # config: no frames kept, default header list cap, no preface injected
    for d, pl in ops[:400]:
        for i in range(0, len(pl), 255):
            piece = pl[i:i + 255]
            out += bytes([d, len(piece)]) + piece
    return bytes(out)


def header_blocks(ops):
    """HEADERS frame blocks of the client and server streams (padding and priority removed)."""
    blocks = []
    for d in (0, 1):
        s = b"".join(pl for dd, pl in ops if dd == d)
        if d == 0:
            i = s.find(PREFACE)
            if i < 0:
                continue
            s = s[i + len(PREFACE):]
        pos = 0
        while pos + 9 <= len(s) and len(blocks) < 64:
            ln = int.from_bytes(s[pos:pos + 3], "big")
            typ, fl = s[pos + 3], s[pos + 4]
            body = s[pos + 9:pos + 9 + ln]
            pos += 9 + ln
            if typ != 1:
                continue
            if fl & 0x08 and body:
                pad = body[0]
                body = body[1:len(body) - pad] if pad < len(body) else b""
            if fl & 0x20:
                body = body[5:]
            if body:
                blocks.append(body)
    return blocks


def main():
    outdir, files = sys.argv[1], sys.argv[2:]
    for f in files:
        try:
            with open(f, "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        put(outdir, "source_file", raw[:MAX_FILE])
        put(outdir, "pipeline", raw[:MAX_FILE])
        parsed = pcap_packets(raw)
        if parsed is None:
            continue
        link, pkts = parsed
        if link in LINKS:
            sel = LINKS.index(link)
            rec = bytearray()
            for p in pkts[:64]:
                p = p[:65535]
                rec += bytes([sel, 0]) + struct.pack("<H", len(p)) + p
            if rec:
                put(outdir, "decode", bytes(rec))
        for ops in streams(link, pkts):
            put(outdir, "http2", http2_seed(ops))
            for b in header_blocks(ops):
                put(outdir, "hpack", bytes([2]) + struct.pack("<H", 4096) + bytes([0]) + b)


if __name__ == "__main__":
    main()
