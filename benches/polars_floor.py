#!/usr/bin/env python3
"""The floor of the trialpipe benchmark: polars reads the same CSV files and writes them to
Parquet, with no logic at all.

    python polars_floor.py PIPELINE.toml --out DIR

It reads every file the pipeline names (subjects, every labs input, events), with the
delimiter declared in the pipeline or detected from the header line (`,` `;` tab `|`) and the
encoding trialpipe would use (UTF-8 with an optional byte-order mark, else Latin-1, which polars
decodes in Python first), every column as text (no type inference, no parsing, no trimming),
concatenates the files of each input and writes one Parquet file per input: subjects.parquet,
labs.parquet, events.parquet. Nothing is validated, converted or derived: this is what the
same bytes cost to read and write, the lower bound "within 2x of the floor" refers to.

Prints the row counts as JSON on stdout: {"subjects": n, "labs": n, "events": n}.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tomllib
from pathlib import Path

import polars as pl


def detect_delimiter(path: str) -> str:
    """The most frequent of `,` `;` tab `|` in the header line (ties: that order)."""
    with open(path, "rb") as f:
        header = f.readline()
    best, n = ",", 0
    for d in [",", ";", "\t", "|"]:
        k = header.count(d.encode())
        if k > n:
            best, n = d, k
    return best


def read_one(path: str, spec: dict) -> pl.DataFrame:
    """Every column as text; UTF-8 (BOM skipped), or Latin-1 when declared or not UTF-8."""
    sep = spec.get("delimiter") or detect_delimiter(path)
    if spec.get("encoding", "auto") == "latin1":
        return pl.read_csv(path, separator=sep, encoding="latin-1", infer_schema=False)
    try:
        return pl.read_csv(path, separator=sep, infer_schema=False)
    except pl.exceptions.ComputeError as e:
        if "utf-8" not in str(e):
            raise
        return pl.read_csv(path, separator=sep, encoding="latin-1", infer_schema=False)


def read(base: Path, spec: dict) -> pl.DataFrame:
    pattern = os.path.normpath(os.path.join(base, spec["path"]))
    paths = sorted(f for f in glob.glob(pattern) if os.path.isfile(f))
    if not paths:
        raise SystemExit(f"no file matches {spec['path']}")
    return pl.concat([read_one(p, spec) for p in paths], how="diagonal")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    with open(args.pipeline, "rb") as f:
        p = tomllib.load(f)
    base = args.pipeline.parent
    args.out.mkdir(parents=True, exist_ok=True)
    counts = {}
    inputs = {"subjects": [p["inputs"]["subjects"]], "labs": p["inputs"]["labs"]}
    if "events" in p["inputs"]:
        inputs["events"] = [p["inputs"]["events"]]
    for name, specs in inputs.items():
        df = pl.concat([read(base, s) for s in specs], how="diagonal")
        df.write_parquet(args.out / f"{name}.parquet")
        counts[name] = df.height
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
