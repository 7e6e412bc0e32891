#!/usr/bin/env bash
# The benchmark behind `make bench` (docs/benchmarks.md): one command that
#   1. builds the release binary (cargo build --release --bin trialpipe);
#   2. makes a Python venv under the target dir from benches/requirements.txt (pandas, pyarrow,
#      polars, exact versions; reinstalled only when that file changes);
#   3. writes the benchmark pipeline, the flagship narrowed to the 8 tests the goal names
#      (benches/bench_pipeline.py), and simulates SUBJECTS subjects into a temporary directory;
#   4. runs benches/compare.py: trialpipe vs the pandas + pyarrow reference vs the polars floor,
#      REPEAT times each, and prints seconds, peak MiB, the ratios, PASS/MISS per goal and the
#      row counts of both sides; the results also go to $TARGET_DIR/bench-results.json.
#
# Environment:
#   SUBJECTS=62500      trial size (62,500 subjects x 8 tests x 4 visits is the goal's ~2M rows)
#   REPEAT=3            runs per command; the best wall time and the highest peak RSS are shown
#   STAGES=validate,derive   which comparisons to run
#   TRIALPIPE_BIN=path  use this binary and skip the cargo build (e.g. a debug binary for a smoke
#                       run: its numbers are not results)
#   BENCH_KEEP=1        keep the temporary directory (data, outputs, logs) and print where it is
#   PYTHON=python3      interpreter for the venv (3.11 or newer: the scripts use tomllib)
#
# Peak memory is read from the kernel with os.wait4 in compare.py, so GNU time is not needed;
# nor is anything here part of CI (.ci/run does not run the benchmark), so nothing is added there.
set -euo pipefail
cd "$(dirname "$0")/.."
SUBJECTS="${SUBJECTS:-62500}"
REPEAT="${REPEAT:-3}"
STAGES="${STAGES:-validate,derive}"
PYTHON="${PYTHON:-python3}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

if [ -n "${TRIALPIPE_BIN:-}" ]; then
  BIN="$TRIALPIPE_BIN"
  LABEL="TRIALPIPE_BIN: not the release build, numbers are not results"
  case "$BIN" in */release/*) LABEL="TRIALPIPE_BIN" ;; esac
  echo "bench: using $BIN (TRIALPIPE_BIN), no cargo build"
else
  cargo build --release --bin trialpipe
  BIN="$TARGET_DIR/release/trialpipe"
  LABEL="release build"
fi
[ -x "$BIN" ] || { echo "bench: $BIN is not an executable" >&2; exit 2; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

# Python venv with the pinned versions, rebuilt when requirements.txt changes.
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "bench: $PYTHON is older than 3.11 (tomllib); set PYTHON=" >&2; exit 2; }
VENV="$TARGET_DIR/bench-venv"
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum benches/requirements.txt | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "bench: creating $VENV from benches/requirements.txt"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r benches/requirements.txt
  echo "$WANT" > "$STAMP"
fi
PY="$VENV/bin/python"

work="$(mktemp -d)"
if [ "${BENCH_KEEP:-0}" = 1 ]; then
  trap 'echo "bench: kept $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/pipelines"
"$PY" benches/bench_pipeline.py pipelines/msc_cirrhosis.toml "$work/pipelines/bench.toml"
echo "bench: simulating $SUBJECTS subjects (8 tests) into $work"
"$BIN" --quiet simulate "$work/pipelines/bench.toml" --subjects "$SUBJECTS" --out "$work/sample_data/msc_cirrhosis"
echo "bench: input $(du -sh "$work/sample_data" | cut -f1), $(cat "$work"/sample_data/msc_cirrhosis/labs_site*.csv | wc -l) lab lines (headers included)"

"$PY" benches/compare.py --bin "$BIN" --bin-label "$LABEL" --pipeline "$work/pipelines/bench.toml" \
  --work "$work/runs" --repeat "$REPEAT" --stages "$STAGES" --subjects "$SUBJECTS" \
  --json "$TARGET_DIR/bench-results.json"
