#!/usr/bin/env python3
"""Write the benchmark's copy of the flagship pipeline, narrowed to the 8-test panel.

The ingest/validate goal names "62,500 subjects x 8 tests x 4 visits" (about 2 million raw lab
rows). The flagship pipeline (pipelines/msc_cirrhosis.toml) has 12 tests, so this script copies
it with only these tests left in the panel and in the simulation model:

    ALT, BILI, PT, INR, ALB, PREALB, PLAT, CREAT

Everything that ingest, validate and derive read (windows, limits, units, sites, messiness,
seed) is the flagship's, byte for byte. What the benchmark does not compare is left out, so that
both sides do the same work and the copy does not depend on features still being built:

* `[[labs]]` sections whose `code` is not kept, and `[simulation.labs.CODE]` of those tests;
* entries of dropped tests in single-line `units = { ... }` inline tables (site units);
* `[[analyses]]` (run by `analyze`, not benchmarked), `[[responses]]` (ADRS), the `scores` and
  `hyslaw_alp` keys of `[derive]` (MELD-Na needs sodium, which the 8-test panel lacks), and the
  assessments input and its simulation (only Child-Pugh reads them): the pandas reference
  produces neither responders nor scores.

TOML cannot be written with the standard library, so the copy is made by editing the text
section by section, and the result is checked by parsing it back with tomllib.

Usage: bench_pipeline.py SOURCE.toml DEST.toml
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

KEEP = ["ALT", "BILI", "PT", "INR", "ALB", "PREALB", "PLAT", "CREAT"]

HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?\s*(#.*)?$")
CODE = re.compile(r'^\s*code\s*=\s*"([^"]*)"')
SCORES = re.compile(r"^\s*(scores|hyslaw_alp)\s*=")
DROP_TABLES = {"analyses", "responses"}
DROP_NAMES = {"inputs.assessments", "simulation.assessments"}
UNITS = re.compile(r"^(\s*units\s*=\s*)\{(.*)\}(.*)$")


def sections(lines: list[str]) -> list[tuple[str | None, list[str]]]:
    """Split TOML text into (table name, lines) chunks; the preamble has name None."""
    out: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in lines:
        m = HEADER.match(line)
        if m:
            out.append((m.group(1), [line]))
        else:
            out[-1][1].append(line)
    return out


def filter_inline_table(body: str) -> str:
    items = [x.strip() for x in body.split(",") if x.strip()]
    kept = [x for x in items if x.split("=")[0].strip().strip('"') in KEEP]
    return ", ".join(kept)


def narrow(text: str) -> str:
    out: list[str] = []
    for name, chunk in sections(text.splitlines(keepends=True)):
        if name == "labs":
            code = next((m.group(1) for l in chunk if (m := CODE.match(l))), None)
            if code not in KEEP:
                continue
        if name and name.split(".")[0] in DROP_TABLES:  # the tables and their sub-tables
            continue
        if name in DROP_NAMES:
            continue
        if name and name.startswith("simulation.labs.") and name.split(".", 2)[2].strip('"') not in KEEP:
            continue
        for line in chunk:
            if name == "derive" and SCORES.match(line):
                continue
            if m := UNITS.match(line.rstrip("\n")):
                body = filter_inline_table(m.group(2))
                line = f"{m.group(1)}{{ {body} }}{m.group(3)}\n" if body else f"{m.group(1)}{{}}{m.group(3)}\n"
            out.append(line)
    return "".join(out)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    text = narrow(src.read_text(encoding="utf-8"))
    p = tomllib.loads(text)  # the copy must still be valid TOML
    codes = [t["code"] for t in p["labs"]]
    sim = sorted(p["simulation"]["labs"])
    if (
        sorted(codes) != sorted(KEEP)
        or sim != sorted(KEEP)
        or "analyses" in p
        or "assessments" in p["inputs"]
        or "assessments" in p["simulation"]
    ):
        print(f"bench_pipeline: narrowing failed: panel {codes}, simulation {sim}", file=sys.stderr)
        return 1
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
