#!/usr/bin/env bash
# tests/live/replay.sh BIN FIXTURE OUTDIR
# Replays FIXTURE at its original timing (tcpreplay) into one end of a veth pair between two network namespaces
# of our own, while `whoclosed -i` captures on the other end (-w keeps the packets). Writes OUTDIR/live.ndjson,
# OUTDIR/live.pcap and OUTDIR/live.err. Bounded: the capture stops after the fixture's duration + 3 s, and every
# program runs under `timeout`. Nothing is routed anywhere: the frames just cross the veth.
set -euo pipefail
BIN=$1 FIX=$2 OUT=$3
NS="wcl$$"
cleanup() { ip netns del "${NS}a" 2>/dev/null || true; ip netns del "${NS}b" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "${NS}a"; ip netns add "${NS}b"
ip link add "${NS}x" type veth peer name "${NS}y"
ip link set "${NS}x" netns "${NS}a"; ip link set "${NS}y" netns "${NS}b"
ip -n "${NS}a" link set "${NS}x" up; ip -n "${NS}b" link set "${NS}y" up
ip netns exec "${NS}a" ethtool -K "${NS}x" tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec "${NS}b" ethtool -K "${NS}y" tso off gso off gro off >/dev/null 2>&1 || true
# The fixture's duration decides how long to capture.
dur=$(capinfos -u -M "$FIX" 2>/dev/null | awk -F: '/Capture duration/ {gsub(/[^0-9.]/, "", $2); print $2}')
dur=${dur:-0}
secs=$(python3 -c "import math,sys; print(math.ceil(float(sys.argv[1])) + 3)" "$dur")
ip netns exec "${NS}b" timeout -s INT $((secs + 10)) "$BIN" -i "${NS}y" --duration "$secs" -w "$OUT/live.pcap" \
  --format ndjson tcp or icmp or icmp6 >"$OUT/live.ndjson" 2>"$OUT/live.err" &
cap=$!
sleep 1
ip netns exec "${NS}a" timeout $((secs + 5)) tcpreplay -q -i "${NS}x" "$FIX" >/dev/null 2>&1
wait "$cap"
