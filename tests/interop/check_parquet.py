"""Open every dataset of a trialpipe run with pandas, pyarrow, polars and DuckDB.

Usage: check_parquet.py OUT_DIR RAW_LABS_CSV
Prints one JSON object: per dataset, the row count each reader saw, the Arrow type of each
column, the label metadata of each column, and a few values for the Rust test to cross-check.
Exits non-zero on any reader error.
"""
import json
import sys
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq

out = Path(sys.argv[1])
con = duckdb.connect()
result = {}
for rel in [
    "sdtm/lb.parquet",
    "adam/adsl.parquet",
    "adam/adlb.parquet",
    "adam/adtte.parquet",
    "adam/adrs.parquet",
    "ingest/labs.parquet",
    "validation/findings.parquet",
    "quarantine/rejected.parquet",
]:
    path = out / rel
    table = pq.read_table(path)
    meta = pq.read_metadata(path).metadata or {}
    entry = {
        "rows": {
            "pyarrow": table.num_rows,
            "pandas": len(pd.read_parquet(path)),
            "polars": pl.read_parquet(path).height,
            "duckdb": con.execute(f"SELECT count(*) FROM '{path}'").fetchone()[0],
        },
        "types": {f.name: str(f.type) for f in table.schema},
        "labels": {
            f.name: (f.metadata or {}).get(b"label", b"").decode() for f in table.schema
        },
        "units": {
            f.name: {
                k.decode(): v.decode()
                for k, v in (f.metadata or {}).items()
                if k in (b"unit", b"unit_column")
            }
            for f in table.schema
            if f.metadata and {b"unit", b"unit_column"} & set(f.metadata)
        },
        "kv": sorted(k.decode() for k in meta.keys()),
        "dataset": meta.get(b"trialpipe.dataset", b"").decode(),
    }
    result[rel] = entry

# Values to cross-check against the raw rows: the first ADLB record (pandas), found again with
# DuckDB and polars by USUBJID, PARAMCD and ADT.
adlb = pd.read_parquet(out / "adam/adlb.parquet")
first = adlb.iloc[0]
q = con.execute(
    f"SELECT AVAL, SRCFILE, SRCLINE FROM '{out / 'adam/adlb.parquet'}' "
    f"WHERE USUBJID = '{first.USUBJID}' AND PARAMCD = '{first.PARAMCD}' AND ADT = DATE '{first.ADT}'"
).fetchall()
p = (
    pl.read_parquet(out / "adam/adlb.parquet")
    .filter(
        (pl.col("USUBJID") == first.USUBJID)
        & (pl.col("PARAMCD").cast(pl.String) == str(first.PARAMCD))
    )
    .sort("ADT")
)
result["probe"] = {
    "usubjid": first.USUBJID,
    "paramcd": str(first.PARAMCD),
    "adt": str(first.ADT),
    "aval_pandas": float(first.AVAL),
    "aval_duckdb": float(q[0][0]),
    "srcfile": q[0][1],
    "srcline": int(q[0][2]),
    "aval_polars": float(p["AVAL"][0]),
    "pandas_adt_dtype": str(adlb.ADT.dtype),
    "pandas_paramcd_dtype": str(adlb.PARAMCD.dtype),
}
print(json.dumps(result))
