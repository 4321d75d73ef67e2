#!/usr/bin/env bash
# benches/workload.sh — builds the benchmark's capture: real, mixed TCP traffic made in network namespaces.
#
# Why: the performance targets (docs/performance.md) are measured on a capture of real stacks, not on synthetic
# packets, so that the decoders and the connection table do the work they do on real captures. Nothing here is
# routed out of the lab's namespaces; every program runs under `timeout` and every loop is bounded.
#
# Usage: sudo benches/workload.sh [--size-mb N] [--out FILE] [--rate MBIT] [--big] [--copies-only] [--no-verdicts]
#   --size-mb N   size of the capture to make, in MB (10^6 bytes; default 1100)
#   --out FILE    where (default benches/data/workload.pcap); FILE's pcapng copy goes beside it (.pcapng)
#   --rate MBIT   bandwidth cap on the router, each way (default 800): keeps tcpdump free of kernel drops
#   --big         also write FILE's 10x version (.x10.pcap): ten time-shifted copies end to end (~11 GB)
#   --copies-only make FILE's copies (pcapng, and x10 with --big) from the FILE already there, no new traffic
#   --no-verdicts skip the check of whoclosed's verdicts per kind of traffic (benches/verdicts.py)
#
# The traffic (all at once, sharing the router's bandwidth cap; captured by tcpdump on the client's veth, MTU 1500,
# offloads off, default snaplen):
#   h2     cleartext HTTP/2: h2load against nghttpd on :8080 — many small streams over IPv4, large responses
#          (256 KiB .. 32 MiB) over IPv6; h2load closes its connections when done
#   grpc   grpcio (Python) h2c on :50051: unary, server/client streaming and bidi calls, one call past its
#          deadline per channel; most channels closed by the client, a few left open until the server's stop
#          (GOAWAY "Server shutdown")
#   bulk   large transfers on :5001 (download, the server closes first) and :5002 (upload, the client closes
#          first) through loss (iptables statistic, 0.2 %) and reordering (1 packet in 256 held in a slow htb lane);
#          this kernel has no sch_netem, so that is how the router impairs them
#   churn  tens of thousands of short request/response connections on :7000-7004, one port per way of ending
#          (client FIN, server FIN, client RST, refused by a closed port, server RST)
# It writes FILE, FILE's pcapng copy, FILE.manifest.json (what each generator did, what verdict each kind should
# get), and prints the sizes, packets and connections per kind.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SIZE_MB=1100
OUT="$HERE/data/workload.pcap"
RATE=800
BIG=0
COPIES_ONLY=0
VERDICTS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) SIZE_MB=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --rate) RATE=${2:?}; shift 2 ;;
    --big) BIG=1; shift ;;
    --copies-only) COPIES_ONLY=1; shift ;;
    --no-verdicts) VERDICTS=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "workload.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$SIZE_MB" in ''|*[!0-9]*) echo "workload.sh: --size-mb wants a whole number" >&2; exit 2 ;; esac
[ "$SIZE_MB" -ge 20 ] || { echo "workload.sh: --size-mb must be at least 20" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "workload.sh: needs root (network namespaces)" >&2; exit 2; }
for t in ip tc iptables ip6tables tcpdump nghttpd h2load python3 editcap capinfos timeout; do
  command -v "$t" >/dev/null || { echo "workload.sh: $t is missing (apt-get install nghttp2-client nghttp2-server tcpdump wireshark-common iproute2 iptables)" >&2; exit 2; }
done
python3 -c 'import grpc' 2>/dev/null || { echo "workload.sh: python3 grpcio is missing (pip install grpcio)" >&2; exit 2; }

mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
BASE=${OUT%.pcap}
NG="$BASE.pcapng"
X10="$BASE.x10.pcap"
MANIFEST="$OUT.manifest.json"
WORK="$BASE.work"
rm -rf "$WORK"

# Free disk: the capture, its pcapng copy, a margin; and 10 more copies with --big.
if [ "$COPIES_ONLY" = 1 ]; then
  [ -s "$OUT" ] && [ -s "$MANIFEST" ] || { echo "workload.sh: --copies-only needs $OUT and $MANIFEST" >&2; exit 2; }
  SIZE_MB=$(( $(stat -c %s "$OUT") / 1000000 ))
fi
need_mb=$((SIZE_MB * 23 / 10 + 500))
[ "$BIG" = 1 ] && need_mb=$((need_mb + SIZE_MB * 10 + 200))
avail_mb=$(df --output=avail -BM "$(dirname "$OUT")" | tail -1 | tr -dc 0-9)
if [ "$avail_mb" -lt "$need_mb" ]; then
  echo "workload.sh: needs ${need_mb} MiB free in $(dirname "$OUT"), has ${avail_mb} MiB" >&2; exit 2
fi

say() { printf '[workload %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
T0=$SECONDS

if [ "$COPIES_ONLY" = 0 ]; then
  mkdir -p "$WORK"
  # ---------------------------------------------------------------------------------------------------- budget
  # Shares of the capture's bytes. Wire bytes per payload byte: 1514+16 (pcap record) per 1448 payload, plus the
  # ACKs: ~1.09. The churn is counted in connections (~1.2 kB of capture each).
  CHURN=$((SIZE_MB * 40));            [ "$CHURN" -gt 60000 ] && CHURN=60000
  CHURN_MB=$((CHURN * 12 / 10000))
  REST=$((SIZE_MB - CHURN_MB))
  H2_SMALL_MB=$((REST * 12 / 100))    # many small streams
  H2_LARGE_MB=$((REST * 23 / 100))    # large responses
  GRPC_MB=$((REST * 30 / 100))
  BULK_MB=$((REST - H2_SMALL_MB - H2_LARGE_MB - GRPC_MB))
  payload() { echo $(($1 * 100 / 109)); }  # MB of payload that make $1 MB of capture
  # h2load: the small URIs average 5.2 KiB of body (+ ~0.1 KiB of frames), the large ones 9.1 MiB
  H2_SMALL_N=$(( $(payload "$H2_SMALL_MB") * 1000000 / 5400 ))
  H2_LARGE_N=$(( $(payload "$H2_LARGE_MB") * 1000000 / 9570000 )); [ "$H2_LARGE_N" -lt 4 ] && H2_LARGE_N=4
  GRPC_PER_CH=16
  GRPC_CH=$(( $(payload "$GRPC_MB") / GRPC_PER_CH )); [ "$GRPC_CH" -lt 4 ] && GRPC_CH=4
  GRPC_OPEN=2
  BULK_FLOWS=8
  H2_SMALL_C=32
  H2_LARGE_C=4

  # ---------------------------------------------------------------------------------------------------- lab
  . "$ROOT/fixtures/lab/lib.sh"
  declare -a BG=()
  CAP_PID=""
  cleanup() {
    [ -n "$CAP_PID" ] && kill -TERM "$CAP_PID" 2>/dev/null || true
    local p; for p in "${BG[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    lab_down
  }
  lab_up bench
  trap cleanup EXIT
  R() { ip netns exec "$LAB-r" "$@"; }
  # Many short connections from one address: use the whole port range, reuse TIME_WAIT ports like a busy client.
  on_c sysctl -qw net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1
  on_s sysctl -qw net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192

  # Router: a bandwidth cap each way (htb), a slow lane that holds back 1 bulk packet in 256 (reordering), random
  # loss on the bulk ports. IPv4 picks the lane by the IP ID's low byte, IPv6 (no ID) by bits 8..15 of the TCP seq.
  for IF in eth0 eth1; do
    R tc qdisc add dev $IF root handle 1: htb default 10
    R tc class add dev $IF parent 1: classid 1:1 htb rate "${RATE}mbit" ceil "${RATE}mbit" quantum 60000
    R tc class add dev $IF parent 1:1 classid 1:10 htb rate "${RATE}mbit" ceil "${RATE}mbit" quantum 60000
    R tc qdisc add dev $IF parent 1:10 handle 10: pfifo limit 2000
    R tc class add dev $IF parent 1:1 classid 1:20 htb rate 20mbit ceil 20mbit burst 1514 cburst 1514 quantum 1514
    R tc qdisc add dev $IF parent 1:20 handle 20: pfifo limit 10
  done
  R tc filter add dev eth0 parent 1: protocol ip prio 1 u32 \
    match ip sport 5001 0xffff match u32 0x00000000 0x00ff0000 at 4 flowid 1:20
  R tc filter add dev eth1 parent 1: protocol ip prio 1 u32 \
    match ip dport 5002 0xffff match u32 0x00000000 0x00ff0000 at 4 flowid 1:20
  R tc filter add dev eth0 parent 1: protocol ipv6 prio 2 u32 \
    match ip6 sport 5001 0xffff match u32 0x00000000 0x0000ff00 at 44 flowid 1:20
  R tc filter add dev eth1 parent 1: protocol ipv6 prio 2 u32 \
    match ip6 dport 5002 0xffff match u32 0x00000000 0x0000ff00 at 44 flowid 1:20
  for ipt in iptables ip6tables; do
    R $ipt -A FORWARD -p tcp --sport 5001 -m statistic --mode random --probability 0.002 -j DROP
    R $ipt -A FORWARD -p tcp --dport 5002 -m statistic --mode random --probability 0.002 -j DROP
  done

  # ---------------------------------------------------------------------------------------------------- servers
  DOC="$HERE/data/docroot"
  mkdir -p "$DOC"
  for k in 1 4 16 256 4096 32768; do
    [ -s "$DOC/s${k}k" ] && [ "$(stat -c %s "$DOC/s${k}k")" = $((k * 1024)) ] || head -c $((k * 1024)) /dev/urandom > "$DOC/s${k}k"
  done
  LIFE=900   # hard bound on every server and generator, seconds
  TRAFFIC="$HERE/traffic.py"
  STOP="$WORK/grpc.stop"   # the server stops (GOAWAY) when this exists
  HELD="$WORK/grpc.held"   # the client made all its calls and holds its last channels open
  on_s timeout $LIFE nghttpd --no-tls -n 2 -d "$DOC" 8080 >"$WORK/nghttpd.log" 2>&1 & BG+=($!)
  on_s timeout $LIFE python3 "$TRAFFIC" grpc-server --stop-after $((LIFE - 30)) --stop-file "$STOP" --grace 2 \
    >"$WORK/grpc-server.log" 2>&1 & BG+=($!)
  on_s timeout $LIFE python3 "$TRAFFIC" tcp-server --deadline $((LIFE - 10)) >"$WORK/tcp-server.log" 2>&1 & BG+=($!)
  listening() { on_s ss -Hltn "sport = :$1" | grep -q .; }
  for port in 8080 50051 5001 5002 7000 7001 7002 7004; do
    for _ in $(seq 100); do listening $port && break; sleep 0.1; done
    listening $port || { echo "workload.sh: nothing listens on :$port" >&2; cat "$WORK"/*.log >&2; exit 1; }
  done

  # ---------------------------------------------------------------------------------------------------- capture
  # Our own tcpdump rather than lib.sh's cap_start: a 128 MiB kernel buffer and block writes (not -U) so that a
  # gigabyte at the capped rate is captured without kernel drops; stopped with SIGTERM (see cap_stop in lib.sh).
  rm -f "$OUT"
  # (ip netns exec directly, not through on_c: $! must be the process that forwards our SIGTERM to tcpdump)
  ip netns exec "$LAB-c" timeout $LIFE tcpdump -n -q -B 131072 -i eth0 -w "$OUT" tcp or icmp or icmp6 \
    2>"$WORK/tcpdump.log" &
  CAP_PID=$!
  for _ in $(seq 50); do [ -s "$OUT" ] && break; sleep 0.1; done
  sleep 0.5
  say "capturing on $LAB-c eth0 -> $OUT (target ${SIZE_MB} MB, cap ${RATE} Mbit/s each way)"

  # ---------------------------------------------------------------------------------------------------- traffic
  S4=$LAB_S4 S6=$LAB_S6
  GEN=300  # seconds any one generator may run
  churn() {
    on_c timeout $GEN python3 "$TRAFFIC" churn --hosts "$S4,$S6" --count "$CHURN" --procs 3 --deadline $((GEN - 20)) \
      >"$WORK/churn.json" 2>"$WORK/churn.log"
  }
  h2() {
    local u4="http://$S4:8080" u6="http://[$S6]:8080"
    on_c timeout $GEN h2load -c $H2_SMALL_C -m 32 -t 1 -n "$H2_SMALL_N" \
      "$u4/s1k" "$u4/s4k" "$u4/s16k" "$u4/s1k" "$u4/s4k" >"$WORK/h2-small.log" 2>&1
    on_c timeout $GEN h2load -c $H2_LARGE_C -m 8 -t 1 -n "$H2_LARGE_N" \
      "$u6/s256k" "$u6/s4096k" "$u6/s256k" "$u6/s32768k" >"$WORK/h2-large.log" 2>&1
  }
  grpc() {
    on_c timeout $GEN python3 "$TRAFFIC" grpc-client --targets "$S4:50051,[$S6]:50051" --channels "$GRPC_CH" \
      --mb-per-channel $GRPC_PER_CH --leave-open $GRPC_OPEN --hold "$STOP" --held-file "$HELD" --deadline $((GEN - 20)) \
      >"$WORK/grpc.json" 2>"$WORK/grpc.log"
  }
  bulk() {  # bulk N_MB TAG
    on_c timeout $GEN python3 "$TRAFFIC" bulk --hosts "$S4,$S6" --mb "$1" --flows $BULK_FLOWS \
      --deadline $((GEN - 20)) >"$WORK/bulk-$2.json" 2>"$WORK/bulk-$2.log"
  }
  say "churn: $CHURN connections; h2: $H2_SMALL_N small + $H2_LARGE_N large requests; grpc: $GRPC_CH channels x ${GRPC_PER_CH} MB; bulk: $(payload "$BULK_MB") MB in $BULK_FLOWS flows"
  churn & P_CHURN=$!
  h2 & P_H2=$!
  grpc & P_GRPC=$!
  bulk "$(payload "$BULK_MB")" 0 & P_BULK=$!
  fail=0
  wait $P_H2 || { say "h2load failed: $(tail -3 "$WORK"/h2-*.log)"; fail=1; }
  wait $P_BULK || { say "bulk failed: $(tail -3 "$WORK/bulk-0.log")"; fail=1; }
  # The gRPC client holds its last channels open until the server stops; stop it once the client is done.
  for _ in $(seq $((GEN * 10))); do [ -e "$HELD" ] && break; kill -0 $P_GRPC 2>/dev/null || break; sleep 0.1; done
  touch "$STOP"
  wait $P_GRPC || { say "grpc client failed: $(tail -3 "$WORK/grpc.log")"; fail=1; }
  wait $P_CHURN || { say "churn failed: $(tail -3 "$WORK/churn.log")"; fail=1; }
  [ $fail = 0 ] || exit 1

  # Top up with bulk until the capture reaches its size (at most 4 rounds; tcpdump still holds a few MB).
  for round in 1 2 3 4; do
    have=$(( $(stat -c %s "$OUT") / 1000000 ))
    [ "$have" -ge "$SIZE_MB" ] && break
    missing=$(( (SIZE_MB - have) + 8 ))
    say "top-up $round: ${have} MB so far, ${missing} MB more of bulk"
    bulk "$(payload "$missing")" "$round"
  done
  sleep 1
  kill -TERM "$CAP_PID"; wait "$CAP_PID" 2>/dev/null || true; CAP_PID=""
  DROPS=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$WORK/tcpdump.log")
  GEN_S=$((SECONDS - T0))
  say "traffic done in ${GEN_S} s; tcpdump: $(grep -E 'captured|dropped' "$WORK/tcpdump.log" | tr '\n' ' ')"
  [ "${DROPS:-0}" = 0 ] || say "WARNING: tcpdump dropped ${DROPS} packets: the capture has holes (lower --rate)"
  lab_down; trap - EXIT

  # ---------------------------------------------------------------------------------------------------- manifest
  json_or_null() { [ -s "$1" ] && tail -1 "$1" || echo null; }
  h2stat() {  # h2stat LOG CONNECTIONS: the requests that succeeded, from an h2load log
    local done
    done=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$1")
    echo "{\"requests_succeeded\": ${done:-null}, \"connections\": $2}"
  }
  # the bulk rounds' counts, summed
  BULKS=$(for f in "$WORK"/bulk-*.json; do tail -1 "$f"; done | python3 -c 'import json, sys
t = {}
for l in sys.stdin:
    for k, v in json.loads(l).items():
        t[k] = t.get(k, 0) + v
print(json.dumps(t))')
  PKTS=$(capinfos -c -M -T -r "$OUT" | awk -F'\t' '{print $2}')
  BYTES=$(stat -c %s "$OUT")
  cat > "$MANIFEST" <<EOF
{
  "capture": "$(basename "$OUT")",
  "pcapng": "$(basename "$NG")",
  "x10": $([ "$BIG" = 1 ] && echo "\"$(basename "$X10")\"" || echo null),
  "bytes": $BYTES,
  "packets": $PKTS,
  "tcpdump_drops": ${DROPS:-null},
  "generation_s": $GEN_S,
  "rate_mbit": $RATE,
  "vantage": "client veth (10.77.1.2 / fd77:1::2), tcpdump, snaplen 262144",
  "ports": $(python3 "$TRAFFIC" ports),
  "generators": {
    "h2_small": $(h2stat "$WORK/h2-small.log" $H2_SMALL_C),
    "h2_large": $(h2stat "$WORK/h2-large.log" $H2_LARGE_C),
    "grpc": $(json_or_null "$WORK/grpc.json"),
    "bulk": $BULKS,
    "churn": $(json_or_null "$WORK/churn.json")
  },
  "expected": {
    "h2": {"closed_by": "client", "cause": "graceful_client_close", "why": "h2load closes each connection when its requests are done"},
    "grpc": {"closed_by": "client", "cause": "graceful_client_close", "why": "channel.close() after the calls"},
    "grpc_left_open": {"closed_by": "server", "cause": "graceful_server_close", "count": $GRPC_OPEN, "why": "server.stop(): GOAWAY NO_ERROR then close"},
    "bulk_down": {"closed_by": "server", "cause": "graceful_server_close", "why": "the server shuts its side down after the last byte"},
    "bulk_up": {"closed_by": "client", "cause": "graceful_client_close", "why": "the client shuts its side down after the last byte"},
    "churn_client_close": {"closed_by": "client", "cause": "graceful_client_close"},
    "churn_server_close": {"closed_by": "server", "cause": "graceful_server_close"},
    "churn_client_abort": {"closed_by": "client", "cause": "peer_reset", "why": "SO_LINGER 0 then close: RST"},
    "churn_refused": {"closed_by": "server", "cause": "connection_refused", "why": "nothing listens: the kernel answers RST"},
    "churn_server_abort": {"closed_by": "server", "cause": "peer_reset", "why": "SO_LINGER 0 then close after the request"}
  }
}
EOF
  rm -rf "$WORK"

fi

# ---------------------------------------------------------------------------------------------------- copies
say "pcapng copy -> $NG"
timeout 600 editcap -F pcapng "$OUT" "$NG"
if [ "$BIG" = 1 ]; then
  # Ten copies end to end, each shifted past the previous one's end (+60 s), streamed: no temporary files.
  dur=$(capinfos -u -M -T -r "$OUT" | awk -F'\t' '{print int($2) + 1}')
  say "x10 -> $X10 (copies $((dur + 60)) s apart)"
  {
    cat "$OUT"
    for k in 1 2 3 4 5 6 7 8 9; do
      timeout 600 editcap -F pcap -t $((k * (dur + 60))) "$OUT" - | tail -c +25
    done
  } > "$X10"
  python3 - "$MANIFEST" "$(basename "$X10")" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["x10"] = sys.argv[2]
json.dump(m, open(sys.argv[1], "w"), indent=2)
EOF
fi

# ---------------------------------------------------------------------------------------------------- report
human() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e6:,.0f} MB')" "$1"; }
echo
mf() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$MANIFEST" "$1"; }
echo "workload: $OUT  $(human "$(stat -c %s "$OUT")"), $(mf packets) packets, made in $(mf generation_s) s, tcpdump drops: $(mf tcpdump_drops)"
echo "          $NG  $(human "$(stat -c %s "$NG")")"
[ "$BIG" = 1 ] && echo "          $X10  $(human "$(stat -c %s "$X10")")"
python3 - "$MANIFEST" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
g = m["generators"]
rows = [
    ("h2 small (h2load, IPv4)", g["h2_small"]["connections"], f'{g["h2_small"]["requests_succeeded"]} requests'),
    ("h2 large (h2load, IPv6)", g["h2_large"]["connections"], f'{g["h2_large"]["requests_succeeded"]} requests'),
    ("gRPC (grpcio, v4+v6)", g["grpc"]["channels"],
     f'{g["grpc"]["unary"]} unary, {g["grpc"]["streams"]} streams, {g["grpc"]["deadline_exceeded"]} past deadline, '
     f'{g["grpc"]["left_open"]} left to the server\'s GOAWAY'),
    ("bulk download :5001", g["bulk"].get("bulk_down", 0), f'{g["bulk"].get("bytes", 0) / 1e6:,.0f} MB both ways, loss+reordering'),
    ("bulk upload :5002", g["bulk"].get("bulk_up", 0), ""),
]
for k in ["churn_client_close", "churn_server_close", "churn_client_abort", "churn_refused", "churn_server_abort"]:
    rows.append((f'{k.replace("_", " ")} :{m["ports"][k]}', g["churn"].get(k, 0), ""))
print(f'{"kind":<32} {"connections":>11}  notes')
for name, n, note in rows:
    print(f"{name:<32} {n:>11}  {note}")
print(f'{"total":<32} {sum(r[1] for r in rows):>11}  (churn errors: {g["churn"].get("errors", 0)}, bulk errors: {g["bulk"].get("errors", 0)}, grpc errors: {g["grpc"]["errors"]})')
EOF
if [ "$VERDICTS" = 1 ]; then
  WC="$ROOT/target/release/whoclosed"
  if [ -x "$WC" ]; then
    echo
    python3 "$HERE/verdicts.py" --whoclosed "$WC" "$OUT"
  else
    say "no $WC: build it (cargo build --release) and run benches/verdicts.py $OUT for the verdicts per kind"
  fi
fi
