#!/usr/bin/env bash
# Benchmark what is built so far: simulate a large flagship trial, then time `trialpipe ingest`
# (wall time and peak memory from GNU time). Usage: make bench [SUBJECTS=62500]
# The side-by-side comparisons with pandas and a bare polars read (issue: ingest and validate)
# are added with the validate stage.
set -euo pipefail
cd "$(dirname "$0")/.."
SUBJECTS="${SUBJECTS:-62500}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --bin trialpipe
BIN="$TARGET_DIR/release/trialpipe"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pipelines"
cp pipelines/msc_cirrhosis.toml "$work/pipelines/"
"$BIN" --quiet simulate "$work/pipelines/msc_cirrhosis.toml" --subjects "$SUBJECTS" --out "$work/sample_data/msc_cirrhosis"
rows=$(cat "$work"/sample_data/msc_cirrhosis/labs_site*.csv | wc -l)
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; date: $(date -u +%F)"
echo "input: $SUBJECTS subjects, $rows lab lines, $(du -sh "$work/sample_data" | cut -f1)"
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f "ingest: %e s wall, %M KiB peak RSS" "$BIN" --quiet ingest "$work/pipelines/msc_cirrhosis.toml" --out "$work/out"
else
  time "$BIN" --quiet ingest "$work/pipelines/msc_cirrhosis.toml" --out "$work/out"
fi
