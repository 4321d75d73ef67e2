#!/usr/bin/env bash
# Peak memory and time of whoclosed on adversarial captures (see adversarial.py for what each one is).
#
#   benches/adversarial.sh [NAME...]        (no NAME: all)
#
# Generates the captures into benches/data/ (git-ignored; about 1.8 GB for all of them) unless they are there,
# builds the release binary, then runs for each capture, under /usr/bin/time -v:
#   full    whoclosed --format json FILE >/dev/null              what a user runs: every connection reported
#   engine  whoclosed --format json --conn 1 FILE >NAME.json     the same analysis, one connection kept for the
#                                                                report: the engine's own memory, and the
#                                                                capture counters the table quotes
# and prints one Markdown row per capture: size, peak RSS and wall time of both runs, exit codes, and what the
# report said (capture.tcp counters, capture.warnings, the first connection's limits_hit and cause).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
data="$here/data"
python3 "$here/adversarial.py" "$data" "$@"
(cd "$repo" && cargo build --release --quiet)
bin="$repo/target/release/whoclosed"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(syn_flood flows_1m churn_1m seq_gaps ooo_endless hpack_bomb continuation goaway_16mb)
fi
measure() { # measure OUT ARGS... → "rss_mib seconds exit"
    local out="$1"; shift
    local t; t="$(mktemp)"
    set +e
    /usr/bin/time -v -o "$t" "$bin" "$@" >"$out" 2>/dev/null
    local rc=$?
    set -e
    local rss secs
    rss="$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$t")"
    secs="$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.1f", s}' "$t")"
    rm -f "$t"
    echo "$rss $secs $rc"
}
echo "| input | size | full: peak RSS | full: time | engine (--conn 1): peak RSS | engine: time | exit | what the report said |"
echo "|---|---:|---:|---:|---:|---:|---|---|"
for n in "${names[@]}"; do
    f="$data/$n.pcap"
    size="$(du -m "$f" | cut -f1)"
    read -r rss1 t1 rc1 < <(measure /dev/null --format json "$f")
    read -r rss2 t2 rc2 < <(measure "$data/$n.json" --format json --conn 1 "$f")
    said="$(python3 - "$data/$n.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no JSON: {e}"); sys.exit()
c = r["capture"]; t = c["tcp"]
parts = [f"{c['connections']} conns", f"peak {t['peak_connections']}"]
if t.get("evicted_table_full"):
    parts.append(f"evicted_table_full {t['evicted_table_full']}")
for w in c.get("warnings", []):
    parts.append("warning: " + w)
for k in r.get("connections", [])[:1]:
    h = k.get("http2") or {}
    if h.get("limits_hit"):
        parts.append("limits_hit " + ", ".join(h["limits_hit"]))
    tcp_limits = sorted({e["event"] for e in k.get("timeline", []) if e["event"] in ("reassembly_full",)})
    if tcp_limits:
        parts.append("timeline " + ", ".join(tcp_limits))
    if k.get("timeline_dropped"):
        parts.append(f"timeline_dropped {k['timeline_dropped']}")
    if "reported early" in k.get("explanation", "").lower():
        parts.append("explanation: Reported early")
    parts.append(f"conn 1: {k.get('closed_by')}/{k.get('cause')}")
print("; ".join(parts))
PY
)"
    echo "| $n | ${size} MB | ${rss1} MiB | ${t1} s | ${rss2} MiB | ${t2} s | $rc1/$rc2 | $said |"
done
