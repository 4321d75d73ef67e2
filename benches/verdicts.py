#!/usr/bin/env python3
"""verdicts.py — what whoclosed answered for each kind of traffic of the benchmark workload.

Usage: benches/verdicts.py [--whoclosed PATH] CAPTURE   (reads CAPTURE.manifest.json, written by workload.sh)

The workload's generators know how each of their connections ended (the manifest's "expected": who closed and
the cause). This runs `whoclosed --format ndjson CAPTURE`, sorts the connections into kinds by server port, and
prints per kind: connections seen, how many got the expected verdict, and the other verdicts with their counts.
It is a sanity check of the answers on a large real capture, not a golden test: the golden tests are the
fixtures'. Exit status 0 whatever the verdicts (the benchmark reports; it does not fail on them).
"""
import argparse
import collections
import json
import os
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--whoclosed", default=os.path.join(os.path.dirname(__file__), "..", "target", "release",
                                                        "whoclosed"))
    ap.add_argument("--examples", type=int, default=2, help="connection ids to show per unexpected verdict")
    args = ap.parse_args()
    man = json.load(open(args.capture + ".manifest.json"))
    kind_of_port = {str(p): k for k, p in man["ports"].items()}
    exp = man["expected"]

    seen = collections.Counter()
    verdicts = collections.defaultdict(collections.Counter)
    examples = collections.defaultdict(list)
    proc = subprocess.Popen([args.whoclosed, "-q", "--format", "ndjson", args.capture], stdout=subprocess.PIPE,
                            text=True)
    for line in proc.stdout:
        c = json.loads(line)
        port = c["server"].rsplit(":", 1)[1]
        kind = kind_of_port.get(port, f"other :{port}")
        seen[kind] += 1
        v = (c["closed_by"], c["cause"])
        verdicts[kind][v] += 1
        if len(examples[(kind, v)]) < args.examples:
            examples[(kind, v)].append(c["id"])
    if proc.wait() != 0:
        print(f"verdicts.py: whoclosed exited with {proc.returncode}", file=sys.stderr)
        return 1

    print(f'{"kind":<20} {"conns":>7} {"expected verdict":<40} {"as expected":>11}  other verdicts (count, ids)')
    for kind in list(kind_of_port.values()) + sorted(k for k in seen if k not in kind_of_port.values()):
        if not seen[kind]:
            continue
        if kind == "grpc":
            wants = [exp["grpc"], exp["grpc_left_open"]]
        elif kind in exp:
            wants = [exp[kind]]
        else:
            wants = []
        want_keys = {(w["closed_by"], w["cause"]) for w in wants}
        ok = sum(n for v, n in verdicts[kind].items() if v in want_keys)
        others = [(v, n) for v, n in verdicts[kind].most_common() if v not in want_keys]
        other_txt = "; ".join(f"{b}/{c} {n} (e.g. {','.join(map(str, examples[(kind, (b, c))]))})"
                              for (b, c), n in others[:4]) or "-"
        want_txt = " or ".join(f'{w["closed_by"]}/{w["cause"]}' for w in wants) or "?"
        print(f"{kind:<20} {seen[kind]:>7} {want_txt:<40} {ok:>11}  {other_txt}")
        if kind == "grpc":
            lo = verdicts[kind][(exp["grpc_left_open"]["closed_by"], exp["grpc_left_open"]["cause"])]
            print(f'{"":<20} {"":>7} (of which server/graceful_server_close: {lo}; the generator left '
                  f'{exp["grpc_left_open"]["count"]} channels open for the server\'s GOAWAY)')
    print(f'{"total":<20} {sum(seen.values()):>7}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
