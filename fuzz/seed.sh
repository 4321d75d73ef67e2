#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/TARGET/, git-ignored) from the project's fixtures and the shared capture
# corpus (../shared/corpus beside the repository, skipped when absent). Safe to run again: files are named by
# their SHA-1, so existing entries are kept and nothing is duplicated.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
out="$here/corpus"
mkdir -p "$out"/{source_file,pipeline,decode,tcp,http2,hpack}
list="$(mktemp)"
trap 'rm -f "$list"' EXIT
find "$repo/fixtures" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.pcap.gz' \) >"$list"
shared="$repo/../shared/corpus"
if [ -d "$shared" ]; then
    # Every capture the corpus index lists (pcap, pcapng and a few odd containers).
    tail -n +2 "$shared/INDEX.tsv" | cut -f1 | sed "s#^#$shared/#" >>"$list"
else
    echo "seed.sh: $shared is absent; seeding from fixtures only" >&2
fi
xargs -d '\n' python3 "$here/seed.py" "$out" <"$list"
for t in "$out"/*; do
    printf '%-12s %5d inputs\n' "$(basename "$t")" "$(find "$t" -type f | wc -l)"
done
