#!/usr/bin/env bash
# The MMRM benchmark behind `make bench-mmrm` (docs/benchmarks.md): one command that
#   1. builds the release example (cargo build --release --example mmrm_bench);
#   2. writes SUBJECTS synthetic subjects x 3 post-baseline visits, seeded with SEED, to a
#      temporary CSV (`mmrm_bench generate`);
#   3. runs benches/mmrm_compare.py: trialpipe's MMRM (UN, REML, Satterthwaite) REPEAT times and,
#      when nlme is run, nlme::gls on the same file once (benches/mmrm_nlme.R); prints the wall
#      times, the speed ratios, the largest relative differences of the estimates and PASS/MISS
#      per goal; the results also go to $TARGET_DIR/bench-mmrm-results.json.
#
# Environment:
#   SUBJECTS=10000          subjects (1000000 for the large-trial goal)
#   SEED=20261123           seed of the synthetic data
#   REPEAT=3                trialpipe runs (best wall time shown); nlme runs once
#   NLME=auto               1: always fit with nlme too; 0: never; auto: when SUBJECTS <= NLME_MAX_SUBJECTS
#   NLME_MAX_SUBJECTS=20000 nlme needs about 20 s at 10,000 subjects and grows faster than linearly
#   BENCH_KEEP=1            keep the temporary directory (data, nlme output) and print where it is
set -euo pipefail
cd "$(dirname "$0")/.."
SUBJECTS="${SUBJECTS:-10000}"
SEED="${SEED:-20261123}"
REPEAT="${REPEAT:-3}"
NLME="${NLME:-auto}"
NLME_MAX_SUBJECTS="${NLME_MAX_SUBJECTS:-20000}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

cargo build --release --example mmrm_bench
BIN="$TARGET_DIR/release/examples/mmrm_bench"

work="$(mktemp -d)"
if [ "${BENCH_KEEP:-0}" = 1 ]; then
  trap 'echo "bench-mmrm: kept $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
echo "bench-mmrm: writing $SUBJECTS subjects (seed $SEED) to $work/mmrm.csv"
"$BIN" generate --subjects "$SUBJECTS" --seed "$SEED" --out "$work/mmrm.csv"
echo "bench-mmrm: $(($(wc -l < "$work/mmrm.csv") - 1)) rows, $(du -h "$work/mmrm.csv" | cut -f1)"

nlme_flag=()
case "$NLME" in
  1) nlme_flag=(--nlme) ;;
  0) ;;
  auto) [ "$SUBJECTS" -le "$NLME_MAX_SUBJECTS" ] && nlme_flag=(--nlme) ;;
  *) echo "bench-mmrm: NLME must be 0, 1 or auto" >&2; exit 2 ;;
esac
python3 benches/mmrm_compare.py --bench "$BIN" --data "$work/mmrm.csv" --subjects "$SUBJECTS" \
  --work "$work" --repeat "$REPEAT" "${nlme_flag[@]}" --json "$TARGET_DIR/bench-mmrm-results.json"
