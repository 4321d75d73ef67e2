#!/usr/bin/env bash
# benches/live.sh — live capture: the packet rates whoclosed keeps up with on a veth, next to tcpdump -w /dev/null.
#
# Why: reading files says nothing of live capture, where a reader too slow for the link loses packets in the
# kernel (and then verdicts miss them). This replays a capture into one end of a veth pair (two namespaces of
# their own, no addresses, nothing routed anywhere) at fixed packet rates, and captures on the other end.
#
# Usage: sudo benches/live.sh [CAPTURE] [--rates "50000 100000 200000 0"] [--seconds S] [--buffer MIB]
#                             [--whoclosed PATH]
#   CAPTURE     the packets to replay (default benches/data/workload.pcap)
#   --rates     packets/s steps for tcpreplay --pps; 0 is --topspeed (default "25000 50000 100000 200000 400000 0")
#   --seconds   length of each step (default 5): the step replays rate x seconds packets (-L), at most the file
#   --buffer    kernel capture buffer for every reader, MiB (default 32, whoclosed's default; tcpdump gets -B too)
# Each step runs three readers in turn on the same packets: whoclosed -i (the kernel's batches, its default),
# whoclosed -i --immediate, and tcpdump -i -w /dev/null. Per run: the rate tcpreplay reached, the packets the
# reader got, the kernel's drops. A reader "keeps up" at a rate when it dropped nothing.
# Both ends share this machine's 2 cores with tcpreplay: the figures are for this machine, as the doc says.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CAP="$HERE/data/workload.pcap"
RATES="25000 50000 100000 200000 400000 0"
SECS=5
BUF=32
WC="$ROOT/target/release/whoclosed"
while [ $# -gt 0 ]; do
  case "$1" in
    --rates) RATES=${2:?}; shift 2 ;;
    --seconds) SECS=${2:?}; shift 2 ;;
    --buffer) BUF=${2:?}; shift 2 ;;
    --whoclosed) WC=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "live.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) CAP=$1; shift ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "live.sh: needs root (namespaces, capture)" >&2; exit 2; }
[ -r "$CAP" ] || { echo "live.sh: cannot read $CAP (benches/workload.sh makes it)" >&2; exit 2; }
[ -x "$WC" ] || { echo "live.sh: no whoclosed at $WC (cargo build --release)" >&2; exit 2; }
for t in tcpreplay tcpdump capinfos timeout; do
  command -v $t >/dev/null || { echo "live.sh: $t is missing (apt-get install tcpreplay tcpdump wireshark-common)" >&2; exit 2; }
done
TOTAL=$(capinfos -c -M -T -r "$CAP" | awk -F'\t' 'NR == 1 {print $2}')

# Two namespaces joined by a veth pair; no addresses, IPv6 off: the replayed packets reach nothing but the readers.
A=blive-a B=blive-b
down() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; }
TMP=$(mktemp -d)
trap 'down; rm -rf "$TMP"' EXIT
down
ip netns add $A; ip netns add $B
ip link add blivea type veth peer name bliveb
ip link set blivea netns $A; ip link set bliveb netns $B
for x in "$A blivea" "$B bliveb"; do
  set -- $x
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
  ip -n "$1" link set "$2" up
done
ethtool_off() { ip netns exec "$1" ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1 || true; }
ethtool_off $A blivea; ethtool_off $B bliveb

# One run: reader $1 (whoclosed | whoclosed-immediate | tcpdump) at rate $2 (0 = topspeed); prints one result line.
run() {
  local who=$1 rate=$2 n dur out err rp pid got drops
  if [ "$rate" = 0 ]; then n=$TOTAL; else n=$((rate * SECS)); [ "$n" -gt "$TOTAL" ] && n=$TOTAL; fi
  dur=$((SECS * 3 + 10))   # the reader's bound: the replay plus room on a busy machine
  out="$TMP/out" err="$TMP/err"
  case $who in
    whoclosed) ip netns exec $B timeout $((dur + 10)) "$WC" -i bliveb -B "$BUF" --format ndjson --duration $dur \
                 >"$out" 2>"$err" & ;;
    whoclosed-immediate) ip netns exec $B timeout $((dur + 10)) "$WC" -i bliveb -B "$BUF" --immediate \
                 --format ndjson --duration $dur >"$out" 2>"$err" & ;;
    tcpdump) ip netns exec $B timeout $dur tcpdump -n -B $((BUF * 1024)) -i bliveb -w /dev/null >"$out" 2>"$err" & ;;
  esac
  pid=$!
  sleep 1.5   # the reader is listening (whoclosed says nothing when it starts; tcpdump's line is not enough)
  if [ "$rate" = 0 ]; then
    ip netns exec $A timeout $((dur + 5)) tcpreplay -q -i blivea --topspeed -L "$n" "$CAP" >"$TMP/rp" 2>&1 || true
  else
    ip netns exec $A timeout $((dur + 5)) tcpreplay -q -i blivea --pps "$rate" -L "$n" "$CAP" >"$TMP/rp" 2>&1 || true
  fi
  sleep 2                          # the last packets reach the reader
  kill -TERM $pid 2>/dev/null || true   # timeout passes it on; both readers print their counts on SIGTERM
  wait $pid || true
  rp=$(sed -n 's/^Rated: .* \([0-9.]*\) pps.*/\1/p' "$TMP/rp")
  local sent; sent=$(sed -n 's/^Actual: \([0-9]*\) packets.*/\1/p' "$TMP/rp")
  if [ "$who" = tcpdump ]; then
    got=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$err")
    drops=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$err")
  else
    got=$(sed -n 's/^whoclosed: \([0-9]*\) packets, .*/\1/p' "$err")
    drops=$(sed -n 's/^whoclosed: .* kernel drops \([0-9]*\),.*/\1/p' "$err")
  fi
  echo "${rate} ${who} ${sent:-?} ${rp:-?} ${got:-?} ${drops:-?}"
}

echo "live.sh: replaying $CAP ($TOTAL packets) over a veth pair, ${SECS} s a step, capture buffers ${BUF} MiB"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$TMP/res"
for rate in $RATES; do
  for who in whoclosed whoclosed-immediate tcpdump; do
    printf '\r  rate %s: %-16s' "$([ "$rate" = 0 ] && echo topspeed || echo "$rate")" "$who" >&2
    run "$who" "$rate" >> "$TMP/res"
  done
done
printf '\r%50s\r' '' >&2
python3 - "$TMP/res" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1])]
names = {"whoclosed": "whoclosed -i", "whoclosed-immediate": "whoclosed -i --immediate", "tcpdump": "tcpdump -i -w /dev/null"}
print()
print(f'| {"step (pps)":>10} | {"reader":<27} | {"sent":>9} | {"replay pps":>10} | {"got":>9} | {"kernel drops":>12} | {"dropped":>7} |')
print(f'|{"-" * 11}:|{"-" * 29}|{"-" * 10}:|{"-" * 11}:|{"-" * 10}:|{"-" * 13}:|{"-" * 8}:|')
best = {}
for rate, who, sent, rp, got, drops in rows:
    try:
        pct = 100 * int(drops) / max(1, int(got) + int(drops))
        pcts = f"{pct:.1f} %"
    except ValueError:
        pct, pcts = None, "?"
    rps = f"{float(rp):,.0f}" if rp != "?" else "?"
    step = "topspeed" if rate == "0" else f"{int(rate):,}"
    print(f"| {step:>10} | {names[who]:<27} | {sent:>9} | {rps:>10} | {got:>9} | {drops:>12} | {pcts:>7} |")
    if pct == 0 and rp != "?":
        best[who] = max(best.get(who, 0), float(rp))
print()
for who in names:
    b = best.get(who)
    print(f'  {names[who]:<28} highest replay rate with no kernel drop: {f"{b:,.0f} packets/s" if b else "none"}')
EOF
