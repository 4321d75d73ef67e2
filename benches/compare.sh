#!/usr/bin/env bash
# benches/compare.sh — whoclosed's throughput and memory next to its peers, on one capture, in one go.
#
# Why: a figure alone says little on a shared 2-core machine; a ratio against tools run in the same minutes, on
# the same file, with the page cache warm, says how whoclosed does. The performance targets are checked here,
# never in timed tests (docs/performance.md).
#
# Usage: benches/compare.sh CAPTURE [--runs N] [--slow-runs M] [--pcapng FILE] [--whoclosed PATH]
#                           [--json OUT] [--no-tshark] [--no-targets]
#   CAPTURE       a pcap file (any: the workload of benches/workload.sh, or another capture)
#   --runs N      runs of each tool (default 5); the runs go round-robin over the tools so that a change in the
#                 machine's load spreads over all of them rather than falling on one
#   --slow-runs M runs of tshark, which is slow (default 1)
#   --pcapng FILE the pcapng copy of CAPTURE (default: CAPTURE with .pcapng in place of .pcap, when it exists)
#   --whoclosed P the binary (default target/release/whoclosed of this checkout)
#   --json OUT    also write every run's figures as JSON
#   --no-targets  print the table only (exit status 0 even when a target misses)
# Rows: whoclosed --format json on the pcap, on the pcapng copy, and on standard input three ways: fed by `cat`
# through a pipe, fed by `pv` through a pipe (pv splices the file's pages into the pipe instead of copying them:
# the pipe's own cost with the cheapest feeder), and redirected from the file (`- < FILE`); cat (the I/O floor);
# `cat FILE | cat` (what moving the file through a pipe costs with no analysis at all); tcpdump -r -w /dev/null;
# tcptrace -n -l; tshark -z conv,tcp. Each row: median wall seconds over its runs, the spread (min–max), the
# median CPU seconds (user + system) of the measured tool, and of the feeder in front of the pipe ("+ …"), MB/s
# (10^6 bytes of the file read), packets/s, peak RSS in MiB (the largest of the runs, GNU time's "Maximum
# resident set size"), and whoclosed's throughput over the row's. On two cores a feeder's CPU is taken from the
# cores whoclosed uses, which is why the pipe rows show it.
# Exit status: 0 when every target holds (or --no-targets), 1 when one misses, 2 on a usage error.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=5
SLOW_RUNS=1
NG=""
WC="$ROOT/target/release/whoclosed"
JSON=""
TSHARK=1
TARGETS=1
CAP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=${2:?}; shift 2 ;;
    --slow-runs) SLOW_RUNS=${2:?}; shift 2 ;;
    --pcapng) NG=${2:?}; shift 2 ;;
    --whoclosed) WC=${2:?}; shift 2 ;;
    --json) JSON=${2:?}; shift 2 ;;
    --no-tshark) TSHARK=0; shift ;;
    --no-targets) TARGETS=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$CAP" ] || { echo "compare.sh: one capture only" >&2; exit 2; }; CAP=$1; shift ;;
  esac
done
[ -n "$CAP" ] || { echo "usage: benches/compare.sh CAPTURE [--runs N] [--slow-runs M] (see --help)" >&2; exit 2; }
[ -r "$CAP" ] || { echo "compare.sh: cannot read $CAP" >&2; exit 2; }
[ -x "$WC" ] || { echo "compare.sh: no whoclosed at $WC (cargo build --release)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "compare.sh: GNU time is missing (apt-get install time)" >&2; exit 2; }
command -v capinfos >/dev/null || { echo "compare.sh: capinfos is missing (apt-get install wireshark-common)" >&2; exit 2; }
if [ -z "$NG" ] && [ "${CAP%.pcap}" != "$CAP" ] && [ -r "${CAP%.pcap}.pcapng" ]; then NG="${CAP%.pcap}.pcapng"; fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

BYTES=$(stat -L -c %s "$CAP")
PKTS=$(capinfos -c -M -T -r "$CAP" 2>/dev/null | awk -F'\t' 'NR == 1 {print $2}')
case "$PKTS" in ''|*[!0-9]*) echo "compare.sh: capinfos cannot count the packets of $CAP" >&2; exit 2 ;; esac
NG_BYTES=0
[ -n "$NG" ] && NG_BYTES=$(stat -L -c %s "$NG")

# The rows: name | runs | bytes read | command (bash, $F is the capture, $G the pcapng copy, $M and $P the files
# GNU time writes the measured tool's and the feeder's figures to). The pipe rows time the whole pipeline but
# measure whoclosed's RSS.
declare -a NAMES=() CMDS=() NRUNS=() SIZES=()
row() { NAMES+=("$1"); NRUNS+=("$2"); SIZES+=("$3"); CMDS+=("$4"); }
T='/usr/bin/time -f "%M %U %S" -o "$M"'   # the measured tool
TF='/usr/bin/time -f "%U %S" -o "$P"'     # the feeder of a pipe
row "whoclosed" "$RUNS" "$BYTES" "$T"' "$WC" -q --format json "$F" >/dev/null'
[ -n "$NG" ] && row "whoclosed pcapng" "$RUNS" "$NG_BYTES" "$T"' "$WC" -q --format json "$G" >/dev/null'
row "whoclosed stdin (cat pipe)" "$RUNS" "$BYTES" "$TF cat \"\$F\" | $T"' "$WC" -q --format json - >/dev/null'
command -v pv >/dev/null && \
  row "whoclosed stdin (pv pipe)" "$RUNS" "$BYTES" "$TF pv -q \"\$F\" | $T"' "$WC" -q --format json - >/dev/null'
row "whoclosed stdin (< file)" "$RUNS" "$BYTES" "$T"' "$WC" -q --format json - <"$F" >/dev/null'
row "cat" "$RUNS" "$BYTES" "$T"' cat "$F" >/dev/null'
row "cat pipe into cat" "$RUNS" "$BYTES" "$TF cat \"\$F\" | $T"' cat >/dev/null'
command -v tcpdump >/dev/null && row "tcpdump -r -w /dev/null" "$RUNS" "$BYTES" "$T"' tcpdump -r "$F" -w /dev/null 2>/dev/null'
command -v tcptrace >/dev/null && row "tcptrace -n -l" "$RUNS" "$BYTES" "$T"' tcptrace -n -l "$F" >/dev/null'
[ "$TSHARK" = 1 ] && command -v tshark >/dev/null && \
  row "tshark -z conv,tcp" "$SLOW_RUNS" "$BYTES" "$T"' tshark -n -q -r "$F" -z conv,tcp >/dev/null 2>&1'

# One run of row $1 (the $2-th): wall seconds from bash's clock; peak RSS and CPU seconds from GNU time (its last
# line: a tool that fails makes GNU time write a "Command exited" line first).
run_one() {
  local i=$1 k=$2 F=$CAP G=$NG M="$TMP/rss" P="$TMP/feeder" t0 t1 rc=0
  : > "$M"; : > "$P"
  t0=$EPOCHREALTIME
  eval "${CMDS[$i]}" || rc=$?
  t1=$EPOCHREALTIME
  local m f
  m=$(awk '/^[0-9]+ [0-9.]+ [0-9.]+$/ {v = sprintf("%s %.2f", $1, $2 + $3)} END {print v}' "$M")
  f=$(awk '/^[0-9.]+ [0-9.]+$/ {v = sprintf("%.2f", $1 + $2)} END {print v}' "$P")
  echo "$i $k $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}') ${m:-0 0} ${f:--1} $rc" >> "$TMP/runs"
}

echo "compare.sh: $CAP — $(awk -v b="$BYTES" 'BEGIN {printf "%.1f MB", b / 1e6}'), $PKTS packets$([ -n "$NG" ] && echo "; pcapng copy $NG")"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start; whoclosed $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
# Warm the page cache (the runs measure the tools, not the disk).
cat "$CAP" > /dev/null; [ -n "$NG" ] && cat "$NG" > /dev/null
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
maxruns=0; for n in "${NRUNS[@]}"; do [ "$n" -gt "$maxruns" ] && maxruns=$n; done
: > "$TMP/runs"
for k in $(seq 1 "$maxruns"); do
  for i in "${!NAMES[@]}"; do
    [ "$k" -le "${NRUNS[$i]}" ] || continue
    printf '\r  run %d/%d: %-28s' "$k" "$maxruns" "${NAMES[$i]}" >&2
    run_one "$i" "$k"
  done
done
printf '\r%60s\r' '' >&2
LOAD1=$(cut -d' ' -f1 /proc/loadavg)

# The table and the targets, from the runs.
{
  printf 'names'; for n in "${NAMES[@]}"; do printf '\t%s' "$n"; done; echo
  printf 'sizes'; for s in "${SIZES[@]}"; do printf '\t%s' "$s"; done; echo
} > "$TMP/rows"
python3 - "$TMP/rows" "$TMP/runs" "$PKTS" "$TARGETS" "$JSON" "$CAP" "$LOAD0" "$LOAD1" <<'EOF'
import json, statistics, sys

rows_f, runs_f, pkts, check, json_out, cap, load0, load1 = sys.argv[1:]
pkts, check = int(pkts), check == "1"
lines = dict(l.rstrip("\n").split("\t", 1) for l in open(rows_f))
names, sizes = lines["names"].split("\t"), [int(s) for s in lines["sizes"].split("\t")]
runs = {i: [] for i in range(len(names))}
for l in open(runs_f):
    i, k, wall, rss, cpu, feeder, rc = l.split()
    runs[int(i)].append({"wall_s": float(wall), "rss_kib": int(rss), "cpu_s": float(cpu),
                         "feeder_cpu_s": float(feeder) if float(feeder) >= 0 else None, "exit": int(rc)})

res = []
for i, name in enumerate(names):
    rs = runs[i]
    walls = [r["wall_s"] for r in rs]
    med = statistics.median(walls)
    feeders = [r["feeder_cpu_s"] for r in rs if r["feeder_cpu_s"] is not None]
    res.append({"tool": name, "runs": len(rs), "median_s": med, "min_s": min(walls), "max_s": max(walls),
                "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                "feeder_cpu_s": statistics.median(feeders) if feeders else None,
                "mb_per_s": sizes[i] / 1e6 / med, "packets_per_s": pkts / med,
                "peak_rss_mib": max(r["rss_kib"] for r in rs) / 1024,
                "failed_runs": sum(1 for r in rs if r["exit"] != 0), "bytes": sizes[i], "all": rs})
by = {r["tool"]: r for r in res}
wc = by["whoclosed"]
for r in res:
    # whoclosed's throughput over this row's, in packets/s (the same packets in every file)
    r["whoclosed_x"] = wc["packets_per_s"] / r["packets_per_s"]

def spread(r):
    return f'{r["min_s"]:.3f}–{r["max_s"]:.3f}' if r["runs"] > 1 else "(1 run)"

def cpu(r):
    return f'{r["cpu_s"]:.2f}' + (f' + {r["feeder_cpu_s"]:.2f}' if r["feeder_cpu_s"] is not None else "")

hdr = ["tool", "runs", "median s", "spread s", "CPU s", "MB/s", "packets/s", "peak RSS MiB", "whoclosed ×"]
table = [[r["tool"] + (f' ({r["failed_runs"]} failed)' if r["failed_runs"] else ""), str(r["runs"]),
          f'{r["median_s"]:.3f}', spread(r), cpu(r), f'{r["mb_per_s"]:,.0f}', f'{r["packets_per_s"]:,.0f}',
          f'{r["peak_rss_mib"]:.1f}', "—" if r is wc else f'{r["whoclosed_x"]:.2f}×'] for r in res]
w = [max(len(hdr[j]), *(len(t[j]) for t in table)) for j in range(len(hdr))]
line = lambda cells: "| " + " | ".join(c.ljust(w[j]) if j == 0 else c.rjust(w[j]) for j, c in enumerate(cells)) + " |"
print()
print(line(hdr))
print("|" + "|".join(("-" * (w[j] + 1) + ":") if j else ("-" * (w[j] + 2)) for j in range(len(hdr))) + "|")
for t in table:
    print(line(t))
print()
peers = [(r["tool"].split()[0], r["whoclosed_x"]) for r in res
         if not r["tool"].startswith("whoclosed") and "pipe" not in r["tool"]]
print("whoclosed is " + ", ".join(f"{x:.2f}× {n}" for n, x in peers) + " (throughput, packets/s)")
print(f"load average {load0} before the runs, {load1} after (2 cores shared: a large spread means a busy machine)")

targets = []
def target(name, ok, got):
    targets.append({"target": name, "holds": ok, "got": got})
if "tcptrace -n -l" in by:
    x = by["tcptrace -n -l"]["whoclosed_x"]; target("throughput ≥ 2× tcptrace", x >= 2, f"{x:.2f}×")
if "tshark -z conv,tcp" in by:
    x = by["tshark -z conv,tcp"]["whoclosed_x"]; target("throughput ≥ 50× tshark", x >= 50, f"{x:.1f}×")
x = by["cat"]["whoclosed_x"]; target("throughput ≥ 0.25× cat", x >= 0.25, f"{x:.2f}×")
rss = max(r["peak_rss_mib"] for r in res if r["tool"].startswith("whoclosed"))
target("peak RSS ≤ 64 MiB", rss <= 64, f"{rss:.1f} MiB")
for v in ("whoclosed pcapng", "whoclosed stdin (cat pipe)", "whoclosed stdin (pv pipe)", "whoclosed stdin (< file)"):
    if v in by:
        # the same packets, so the time ratio is the throughput ratio; only slower counts against the target
        x = by[v]["median_s"] / wc["median_s"]
        target(f"{v.split(None, 1)[1]} within 20 % of pcap", x <= 1.2, f"{(x - 1) * 100:+.0f} % time")
failed = [r["tool"] for r in res if r["failed_runs"]]
print()
tw = max((len(t["target"]) for t in targets), default=0)
for t in targets:
    print(f'  {"HOLDS" if t["holds"] else "MISS "}  {t["target"]:<{tw}}  {t["got"]}')
if failed:
    print(f"  runs failed (non-zero exit): {', '.join(failed)}")
if json_out:
    json.dump({"capture": cap, "packets": pkts, "load_before": float(load0), "load_after": float(load1),
               "rows": res, "targets": targets}, open(json_out, "w"), indent=1)
sys.exit(1 if check and (failed or not all(t["holds"] for t in targets)) else 0)
EOF
