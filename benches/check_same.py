#!/usr/bin/env python3
"""Row-by-row check that trialpipe and the pandas reference produced the same table.

    python check_same.py TRIALPIPE.parquet PANDAS.parquet NAME

Both tables must have the same number of rows in the same order. Every column the two share
is compared value by value: nulls must match, numbers must agree to 1e-12 relative, everything
else (text, dates, flags) must be equal as text. Prints one line, e.g.

    findings: identical (4,755 rows; 9 columns compared)

or the first differing values of each column, and exits 1 when anything differs. Run by
compare.py after the timed runs (findings.parquet, and adlb.parquet for the derive stage).
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary (categorical) columns decoded; trialpipe writes some, pandas others."""
    if pa.types.is_dictionary(col.type):
        return col.cast(col.type.value_type)
    return col


def numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def differing(x: pa.ChunkedArray, y: pa.ChunkedArray) -> np.ndarray:
    """Positions where x and y differ (null vs value, or different values)."""
    x, y = plain(x), plain(y)
    xn = x.is_null().to_numpy(zero_copy_only=False)
    yn = y.is_null().to_numpy(zero_copy_only=False)
    if numeric(x.type) and numeric(y.type):
        a = x.cast(pa.float64()).to_numpy(zero_copy_only=False)
        b = y.cast(pa.float64()).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            neq = ~np.isclose(a, b, rtol=1e-12, atol=0.0)
    else:
        neq = pc.not_equal(x.cast(pa.string()), y.cast(pa.string())).fill_null(False).to_numpy(zero_copy_only=False)
    return np.flatnonzero((xn != yn) | (neq & ~xn & ~yn))


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    a = pq.read_table(sys.argv[1])
    b = pq.read_table(sys.argv[2])
    name = sys.argv[3]
    if a.num_rows != b.num_rows:
        print(f"{name}: DIFFERENT row counts: trialpipe {a.num_rows:,}, pandas {b.num_rows:,}")
        return 1
    shared = [c for c in a.column_names if c in b.column_names]
    only_tp = [c for c in a.column_names if c not in b.column_names]
    only_pd = [c for c in b.column_names if c not in a.column_names]
    problems = []
    for c in shared:
        bad = differing(a[c], b[c])
        if len(bad):
            shown = "; ".join(
                f"row {r}: {str(a[c][int(r)].as_py())[:60]!r} vs {str(b[c][int(r)].as_py())[:60]!r}" for r in bad[:3]
            )
            problems.append(f"  {c}: {len(bad):,} values differ ({shown})")
    extra = ""
    if only_tp:
        extra += f"; only in trialpipe: {', '.join(only_tp)}"
    if only_pd:
        extra += f"; only in the reference: {', '.join(only_pd)}"
    if problems:
        print(f"{name}: DIFFERENT ({a.num_rows:,} rows{extra})")
        print("\n".join(problems))
        return 1
    print(f"{name}: identical ({a.num_rows:,} rows; {len(shared)} columns compared{extra})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
