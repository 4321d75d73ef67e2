#!/usr/bin/env python3
"""Writes the adversarial captures measured by adversarial.sh (stdlib only; raw IPv4 link type, classic pcap).

usage: adversarial.py OUTDIR [NAME...]     (no NAME: all of them; existing files are kept)

Each capture is what an attacker on the wire, or a broken network, could make whoclosed read:
  syn_flood      1 M SYNs from random sources to one server (never answered)
  flows_1m       1 M concurrent connections, handshake and data, never closed
  churn_1m       1 M short connections, one a millisecond, each opened and reset (the table stays small as
                 each one's linger ends, the file does not)
  seq_gaps       10 connections, 200 k data segments at random / huge sequence jumps, out of window
  ooo_endless    one connection whose first data segment never comes: 500 k segments after the hole
  hpack_bomb     h2c: 20 k HEADERS blocks churning the dynamic table, each expanding 16 KiB into 64 MiB
  continuation   h2c: one HEADERS then 4096 CONTINUATION frames of 16 KiB (64 MiB), never END_HEADERS
  goaway_16mb    h2c: a GOAWAY whose debug data is 16 MiB (the largest frame), then the connection closes
"""
import os
import random
import struct
import sys

T0 = 1_704_067_200
rnd = random.Random(7)


class Pcap:
    def __init__(self, path):
        self.f = open(path, "wb", buffering=1 << 20)
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))
        self.us = 0

    def pkt(self, data, dt_us=10):
        self.us += dt_us
        self.f.write(struct.pack("<IIII", T0 + self.us // 1_000_000, self.us % 1_000_000, len(data), len(data)))
        self.f.write(data)

    def close(self):
        self.f.close()


IP_HDR = struct.Struct(">BBHHHBBH4s4s")
TCP_HDR = struct.Struct(">HHIIBBHHH")


def tcp(src, sport, dst, dport, seq, ack, flags, payload=b"", win=65535):
    ip = IP_HDR.pack(0x45, 0, 40 + len(payload), 1, 0x4000, 64, 6, 0, src, dst)
    return ip + TCP_HDR.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, win, 0, 0) + payload


SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08
CLIENT = bytes([10, 0, 0, 1])
SERVER = bytes([10, 0, 0, 2])


def ip4(n):
    return struct.pack(">I", n)


class Conn:
    """One TCP connection between CLIENT:sport and SERVER:dport, keeping sequence numbers."""

    def __init__(self, w, sport, dport=80, src=CLIENT, dst=SERVER):
        self.w, self.sport, self.dport, self.src, self.dst = w, sport, dport, src, dst
        self.c, self.s = 1000, 900_000

    def handshake(self):
        w = self.w
        w.pkt(tcp(self.src, self.sport, self.dst, self.dport, self.c, 0, SYN))
        w.pkt(tcp(self.dst, self.dport, self.src, self.sport, self.s, self.c + 1, SYN | ACK))
        self.c += 1
        self.s += 1
        w.pkt(tcp(self.src, self.sport, self.dst, self.dport, self.c, self.s, ACK))

    def send(self, data, mss=1448):
        """Client to server, in segments of `mss`, each acknowledged by the server every 16 segments."""
        for i in range(0, len(data), mss):
            piece = data[i:i + mss]
            self.w.pkt(tcp(self.src, self.sport, self.dst, self.dport, self.c, self.s, PSH | ACK, piece), 1)
            self.c += len(piece)
            if (i // mss) % 16 == 15:
                self.w.pkt(tcp(self.dst, self.dport, self.src, self.sport, self.s, self.c, ACK), 1)

    def reply(self, data):
        self.w.pkt(tcp(self.dst, self.dport, self.src, self.sport, self.s, self.c, PSH | ACK, data))
        self.s += len(data)

    def close(self):
        w = self.w
        w.pkt(tcp(self.src, self.sport, self.dst, self.dport, self.c, self.s, FIN | ACK))
        w.pkt(tcp(self.dst, self.dport, self.src, self.sport, self.s, self.c + 1, FIN | ACK))
        w.pkt(tcp(self.src, self.sport, self.dst, self.dport, self.c + 1, self.s + 1, ACK))


def syn_flood(w):
    for _ in range(1_000_000):
        src = ip4(rnd.getrandbits(32))
        w.pkt(tcp(src, rnd.randrange(1024, 65536), SERVER, 443, rnd.getrandbits(32), 0, SYN), 1)


def flows_1m(w):
    data = b"x" * 64
    for i in range(1_000_000):
        src = ip4(0x0A000000 + (i >> 12))
        sport = 1024 + (i & 0xFFF)
        c, s = rnd.getrandbits(32), rnd.getrandbits(32)
        w.pkt(tcp(src, sport, SERVER, 443, c, 0, SYN), 1)
        w.pkt(tcp(SERVER, 443, src, sport, s, c + 1, SYN | ACK), 1)
        w.pkt(tcp(src, sport, SERVER, 443, c + 1, s + 1, PSH | ACK, data), 1)


def churn_1m(w):
    for i in range(1_000_000):
        src = ip4(0x0A000000 + (i >> 12))
        sport = 1024 + (i & 0xFFF)
        c, s = rnd.getrandbits(32), rnd.getrandbits(32)
        w.pkt(tcp(src, sport, SERVER, 443, c, 0, SYN), 333)
        w.pkt(tcp(SERVER, 443, src, sport, s, c + 1, SYN | ACK), 333)
        w.pkt(tcp(src, sport, SERVER, 443, c + 1, s + 1, RST | ACK), 334)


def seq_gaps(w):
    conns = [Conn(w, 40000 + i) for i in range(10)]
    for c in conns:
        c.handshake()
    payload = bytes(range(256)) * 6
    for n in range(200_000):
        c = conns[n % 10]
        kind = n % 4
        if kind == 0:
            seq = c.c + rnd.getrandbits(31)  # anywhere ahead (out of window)
        elif kind == 1:
            seq = c.c + 0x7FFFFFFF  # the farthest "ahead" on the circle
        elif kind == 2:
            seq = c.c - rnd.randrange(1, 1 << 30)  # far behind
        else:
            seq = c.c + 1448 * rnd.randrange(2, 4000)  # a hole, then data
        w.pkt(tcp(CLIENT, c.sport, SERVER, c.dport, seq, c.s, PSH | ACK, payload[:1448]), 5)
    for c in conns:
        c.close()


def ooo_endless(w):
    c = Conn(w, 40100)
    c.handshake()
    payload = b"y" * 1448
    start = c.c
    # The first segment (start .. start+1448) never comes; the rest arrive, in reverse within blocks of 64.
    for block in range(500_000 // 64):
        base = 1 + block * 64
        for k in reversed(range(64)):
            seq = start + 1448 * (base + k)
            w.pkt(tcp(CLIENT, c.sport, SERVER, c.dport, seq, c.s, PSH | ACK, payload), 2)
        # The server keeps acknowledging only what it has in order (duplicate ACKs).
        w.pkt(tcp(SERVER, c.dport, CLIENT, c.sport, c.s, start, ACK), 2)


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream) + payload


def hpack_int(v, prefix_bits, first):
    m = (1 << prefix_bits) - 1
    if v < m:
        return bytes([first | v])
    out = [first | m]
    v -= m
    while v >= 128:
        out.append((v & 127) | 128)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack_str(s):
    return hpack_int(len(s), 7, 0) + s


def h2_start(w, sport):
    c = Conn(w, sport, 8080)
    c.handshake()
    c.send(PREFACE + frame(4, 0, 0, b""))
    c.reply(frame(4, 0, 0, b"") + frame(4, 1, 0, b""))
    return c


def hpack_bomb(w):
    c = h2_start(w, 40200)
    big = b"v" * 4000
    stream = 1
    for n in range(20_000):
        # A literal with incremental indexing of a 4000-byte value (evicts the table: churn), then 4000 indexed
        # references to it (index 62, the newest entry): 4 KiB of HPACK decoding to 16 MB of header list.
        block = b"\x40" + hpack_str(b"x-bomb-%d" % (n % 7)) + hpack_str(big) + b"\xbe" * 4000
        block = hpack_int(4096, 5, 0x20) + block  # a size update first, every block
        c.send(frame(1, 0x04 | 0x01, stream, block))
        stream += 2
    c.close()


def continuation(w):
    c = h2_start(w, 40300)
    c.send(frame(1, 0x01, 1, b"\x82\x86\x84" + b"\x40" + hpack_str(b"x-a") + hpack_str(b"b" * 100)))
    chunk = (b"\x40" + hpack_str(b"x-cont") + hpack_str(b"c" * 16000))[:16384]
    for _ in range(4096):
        c.send(frame(9, 0, 1, chunk))
    c.close()


def goaway_16mb(w):
    c = h2_start(w, 40400)
    c.send(frame(1, 0x05, 1, b"\x82\x86\x84"))
    debug = b"d" * ((1 << 24) - 1 - 8)
    c.reply(frame(7, 0, 0, struct.pack(">II", 1, 11) + debug[:0]))  # a first, small GOAWAY from the server
    # Then the client sends a GOAWAY of 16 MiB.
    c.send(frame(7, 0, 0, struct.pack(">II", 0, 2) + debug))
    c.close()


ALL = {
    "syn_flood": syn_flood,
    "flows_1m": flows_1m,
    "churn_1m": churn_1m,
    "seq_gaps": seq_gaps,
    "ooo_endless": ooo_endless,
    "hpack_bomb": hpack_bomb,
    "continuation": continuation,
    "goaway_16mb": goaway_16mb,
}


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(ALL)
    os.makedirs(out, exist_ok=True)
    for n in names:
        path = os.path.join(out, n + ".pcap")
        if os.path.exists(path):
            continue
        tmp = path + ".part"
        w = Pcap(tmp)
        ALL[n](w)
        w.close()
        os.rename(tmp, path)
        print(f"{n}: {os.path.getsize(path) / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
