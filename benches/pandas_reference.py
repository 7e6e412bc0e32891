#!/usr/bin/env python3
"""pandas + pyarrow reference for the trialpipe benchmark: the work of `trialpipe validate`
(and, with `--stage derive`, the ADLB part of `trialpipe derive`) written the way a careful
analyst would write it in pandas: vectorized, pyarrow CSV reader and pyarrow string columns,
no per-row Python loops except over the few rows in duplicate groups.

    python pandas_reference.py PIPELINE.toml --out DIR [--stage validate|derive]

Everything the rules need is read from the pipeline file (tomllib) and from the unit registry
src/units/registry.toml, so the reference cannot drift from the pipeline's windows, limits,
units and severities:

* ingest: every labs input of layout "long" (globs expanded and sorted as trialpipe does), the
  subjects file and the events file; delimiter declared or detected from the header (`,` `;`
  tab `|`), UTF-8 with or without BOM or Latin-1 (detected when the bytes are not UTF-8), CRLF;
  fields trimmed; test codes and visits upper-cased;
* results: blank, `ND`/`not done`/`n/d`/`na`/`n/a`, numbers with a decimal point or a decimal
  comma, censored `<x` `<=x` `>x` `>=x`, anything else text; `ingest.censored` policy;
* units: spelling normalization (whitespace, micro sign, `x`, superscripts, case-insensitive
  when unambiguous) and conversion to the test's standard unit by a breadth-first search over
  the registry's linear edges (generic + analyte-specific + the pipeline's `conversions`);
* study day from the subject's reference date (`study.reference_date`), CDISC: no day 0;
* the lab rules of trialpipe's validate (see docs/benchmarks.md for the one left out,
  `field_count`): unknown_test, unknown_unit, no_unit_path, non_numeric, bad_date,
  unknown_subject, implausible, abnormal, before_consent, after_death, duplicate_exact,
  duplicate_conflict, out_of_window, no_study_day, multiple_in_window (closest to target, tie
  per `visits.tie`, then file order), blank_result, not_done, censored; the subject rules
  (subject_duplicate, subject_no_arm, subject_unknown_arm, subject_bad_field) and the event
  rules (event_unknown_subject, event_bad_date, event_unknown_type); severities and `enabled`
  from `[validation.rules]`, the `max_error_percent` verdict;
* outputs (Parquet via pyarrow): labs.parquet (every lab row, standardized, with its
  disposition, window and selection), quarantine.parquet (the quarantined lab rows and the
  rules that quarantined them), findings.parquet (one row per finding, sorted by file, line,
  rule, with trialpipe's messages), summary.json (counts in the shape of trialpipe's
  validation/summary.json);
* `--stage derive` adds adlb.parquet: accepted panel records with a standard value, USUBJID,
  arm, PARAM/PARAMN, AVAL, AVISIT/AVISITN and window bounds, ABLFL, BASE, CHG, PCHG (post-
  baseline records only), ANRLO/ANRHI/ANRIND, BNRIND, SHIFT1, ANL01FL, WORSTHFL/WORSTLFL,
  sorted like trialpipe's ADLB. SDTM LB, ADSL, ADTTE, ADRS, derived scores and LOCF rows are
  not produced (docs/benchmarks.md lists the differences).

Not supported (the script stops with a message): wide and SDTM lab layouts, `.xlsx` inputs,
qualitative tests, SDTM DM subjects, time-to-event events, eligibility criteria, LOCF.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tomllib
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd

REGISTRY = Path(__file__).resolve().parent.parent / "src" / "units" / "registry.toml"

# Rule id -> (default severity, action). Same table as RULES in src/validate.rs.
RULES = {
    "field_count": ("error", "quarantine"),
    "unknown_test": ("error", "quarantine"),
    "unknown_unit": ("error", "quarantine"),
    "no_unit_path": ("error", "quarantine"),
    "non_numeric": ("error", "quarantine"),
    "unexpected_value": ("error", "quarantine"),
    "bad_date": ("error", "quarantine"),
    "unknown_subject": ("error", "quarantine"),
    "implausible": ("error", "quarantine"),
    "duplicate_conflict": ("error", "quarantine"),
    "duplicate_exact": ("warning", "quarantine"),
    "before_consent": ("error", "quarantine"),
    "after_death": ("error", "quarantine"),
    "out_of_window": ("warning", "flag"),
    "no_study_day": ("warning", "flag"),
    "multiple_in_window": ("note", "flag"),
    "abnormal": ("note", "flag"),
    "blank_result": ("note", "flag"),
    "not_done": ("note", "flag"),
    "censored": ("note", "flag"),
    "subject_duplicate": ("error", "quarantine"),
    "subject_no_arm": ("warning", "flag"),
    "subject_unknown_arm": ("error", "flag"),
    "subject_bad_field": ("error", "flag"),
    "event_unknown_subject": ("error", "quarantine"),
    "event_bad_date": ("error", "quarantine"),
    "event_unknown_type": ("error", "quarantine"),
}
EVENT_TYPES = ["DEATH", "TRANSPLANT", "LAST_CONTACT", "WITHDRAWAL"]
NOT_DONE = ["nd", "not done", "n/d", "na", "n/a"]
# What Rust's f64 parser accepts once trialpipe's character filter has passed.
NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
FINDING_COLUMNS = ["rule", "severity", "subject_id", "test_code", "visit", "file", "line", "value", "message"]
TRIALPIPE_FINDING_COLUMNS = [
    "RULE",
    "SEVERITY",
    "SUBJID",
    "LBTESTCD",
    "VISIT",
    "SRCFILE",
    "SRCLINE",
    "VALUE",
    "MESSAGE",
]


class Unsupported(Exception):
    pass


# ----------------------------------------------------------------------------- pipeline


class Pipeline:
    def __init__(self, path: Path):
        self.path = path
        self.dir = path.parent
        with open(path, "rb") as f:
            self.p = tomllib.load(f)
        p = self.p
        self.study_id = p["study"]["id"]
        self.reference = p["study"].get("reference_date", "randomization")
        self.arms = {a["code"]: a["label"] for a in p["arms"]}
        self.labs = p["labs"]
        if any(t.get("result", "numeric") != "numeric" for t in self.labs):
            raise Unsupported("qualitative tests")
        if p.get("eligibility"):
            raise Unsupported("eligibility criteria")
        self.panel = {t["code"]: t for t in self.labs}
        v = p["visits"]
        self.windows = v["windows"]
        self.window_rule = v.get("rule", "closest")
        self.tie = v.get("tie", "earlier")
        names = [w["name"] for w in self.windows]
        self.baseline_w = names.index(v["baseline"]) if v.get("baseline") in names else 0
        val = p.get("validation", {})
        self.max_error_percent = val.get("max_error_percent")
        self.severity = {}
        for rid, (sev, _) in RULES.items():
            o = val.get("rules", {}).get(rid, {})
            if o.get("enabled", True) is not False:
                self.severity[rid] = o.get("severity", sev)
        self.censored = p.get("ingest", {}).get("censored", "missing")
        if p.get("derive", {}).get("missing_visits", "none") not in ("none",):
            raise Unsupported("derive.missing_visits other than none")

    def expand(self, pattern: str) -> list[str]:
        full = os.path.normpath(os.path.join(self.dir, pattern))
        files = sorted(f for f in glob.glob(full) if os.path.isfile(f))
        if not files:
            raise SystemExit(f"no file matches {pattern}")
        if any(f.lower().endswith(".xlsx") for f in files):
            raise Unsupported(".xlsx inputs")
        return files


# ----------------------------------------------------------------------------- units


def spelling_key(raw: str) -> str:
    """The lookup key of a unit spelling (src/units.rs spelling_key)."""
    sup = {"\u2070": "0", "\u00b9": "1", "\u00b2": "2", "\u00b3": "3"}
    sup.update({chr(0x2070 + d): str(d) for d in range(4, 10)})
    key: list[str] = []
    in_sup = False
    for c in raw:
        if c.isspace():
            in_sup = False
            continue
        after_letter = bool(key) and key[-1].isalpha()
        if c in sup:
            if not in_sup and not after_letter:
                key.append("^")
            key.append(sup[c])
            in_sup = True
            continue
        in_sup = False
        if c in ("\u00b5", "\u03bc"):
            key.append("u")
        elif c == "\u00d7":
            key.append("x")
        elif c == "^" and after_letter:
            pass
        else:
            key.append(c)
    return "".join(key)


class Registry:
    """Spelling lookup and linear conversions from src/units/registry.toml."""

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            data = tomllib.load(f)
        self.exact: dict[str, str] = {}
        for u in data["unit"]:
            for s in [u["symbol"], *u.get("aliases", [])]:
                self.exact[spelling_key(s)] = u["symbol"]
        folded: dict[str, str | None] = {}
        for k, sym in self.exact.items():
            lk = k.lower()
            folded[lk] = sym if folded.get(lk, sym) == sym else None
        self.folded = folded
        # Linear edges only: (from, to, factor); affine and log edges are not followed.
        self.generic = [
            (e["from"], e["to"], e["factor"]) for e in data.get("generic", []) if e.get("kind", "linear") == "linear"
        ]
        self.analyte: dict[str, list[tuple[str, str, float]]] = {}
        for e in data.get("analyte", []):
            if e.get("kind", "linear") == "linear":
                for c in e["codes"]:
                    self.analyte.setdefault(c.upper(), []).append((e["from"], e["to"], e["factor"]))

    def canonical(self, raw: str) -> str | None:
        k = spelling_key(raw)
        if not k:
            return None
        return self.exact.get(k) or self.folded.get(k.lower())

    def factor(self, analyte: str, src: str, dst: str, extra: list) -> float | None:
        """Factor taking a value in `src` to `dst` (both canonical), or None without a path."""
        if src == dst:
            return 1.0
        edges = extra + self.analyte.get(analyte.upper(), []) + self.generic
        seen = {src}
        queue = deque([(src, 1.0)])
        while queue:
            unit, f = queue.popleft()
            for a, b, k in edges:
                if a == unit:
                    nxt, g = b, f * k
                elif b == unit:
                    nxt, g = a, f / k
                else:
                    continue
                if nxt == dst:
                    return g
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, g))
        return None


# ----------------------------------------------------------------------------- reading


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


def read_csv(path: str, spec: dict) -> pd.DataFrame:
    """One text file as strings: UTF-8 (the pyarrow reader skips a byte-order mark), or
    Latin-1 when declared or when the bytes are not UTF-8 (encoding "auto", the default)."""
    sep = spec.get("delimiter") or detect_delimiter(path)
    declared = spec.get("encoding", "auto")
    opts = {"sep": sep, "engine": "pyarrow", "dtype": str, "keep_default_na": False, "na_values": []}
    if declared == "latin1":
        df = pd.read_csv(path, encoding="latin-1", **opts)
    else:
        try:
            df = pd.read_csv(path, encoding="utf-8", **opts)
        except pd.errors.ParserError as e:
            if declared == "utf8" or "UTF8" not in str(e):
                raise
            df = pd.read_csv(path, encoding="latin-1", **opts)
    df.columns = [c.strip() for c in df.columns]
    # The pipeline's column mapping: contract name -> column in the file.
    for contract, actual in spec.get("columns", {}).items():
        if actual in df.columns:
            df[contract] = df[actual]
    for c in df.columns:
        df[c] = df[c].str.strip()
    return df


def parse_number(s: pd.Series) -> pd.Series:
    """trialpipe's parse_number, vectorized: decimal comma allowed, no thousands separator."""
    t = s.str.strip()
    has_comma = t.str.contains(",", regex=False)
    bad_comma = has_comma & (t.str.contains(".", regex=False) | (t.str.count(",") > 1))
    t = t.str.replace(",", ".", regex=False)
    ok = t.str.fullmatch(NUMBER).fillna(False) & ~bad_comma
    v = pd.to_numeric(t.where(ok), errors="coerce").astype("float64")
    return v.where(np.isfinite(v))


def parse_date(s: pd.Series, fmt: str | None) -> pd.Series:
    """ISO 8601 date or datetime (date part), or the declared (chrono = strptime) format."""
    s = s.str.strip()
    if fmt:
        return pd.to_datetime(s, format=fmt, errors="coerce").dt.normalize()
    # The part before the first `T` or space must be exactly YYYY-MM-DD (10 characters).
    part = s.str.slice(0, 10)
    ok = ~part.str.contains(r"[T ]", regex=True) & ((s.str.len() == 10) | s.str.slice(10, 11).isin(["T", " "]))
    return pd.to_datetime(part.where(ok), format="%Y-%m-%d", errors="coerce")


def study_day(date: pd.Series, ref: pd.Series) -> pd.Series:
    d = (date - ref).dt.days.astype("Int64")
    return d.where(d < 0, d + 1)


# ----------------------------------------------------------------------------- findings


RULE_BIT = {rule: 1 << i for i, rule in enumerate(RULES)}


class State:
    """What the rules decided for each row of one domain frame (positional; RangeIndex)."""

    def __init__(self, n: int):
        self.quarantine = np.zeros(n, dtype=np.uint32)  # bit set of the quarantining rules
        self.errors = np.zeros(n, dtype=bool)

    def accepted(self) -> np.ndarray:
        return self.quarantine == 0

    def rules(self, pos: np.ndarray) -> list[str]:
        return [",".join(r for r, b in RULE_BIT.items() if q & b) for q in self.quarantine[pos]]


class Findings:
    def __init__(self, pl: Pipeline):
        self.pl = pl
        self.parts: list[pd.DataFrame] = []

    def fire(self, rule: str, rows: pd.DataFrame, value, message, state: State | None = None) -> bool:
        """Record `rule` for every row of `rows` (a slice of a domain frame holding at least
        file and line) and mark them in the domain's `state`. False when the rule is off."""
        sev = self.pl.severity.get(rule)
        if sev is None or rows.empty:
            return sev is not None
        n = len(rows)

        def col(c: str):
            return rows[c].to_numpy() if c in rows else None

        part = pd.DataFrame(
            {
                "rule": rule,
                "severity": sev,
                "subject_id": col("subject_id"),
                "test_code": col("test_code"),
                "visit": col("visit"),
                "file": rows["file"].to_numpy(),
                "line": rows["line"].to_numpy(),
                "value": value.to_numpy() if isinstance(value, pd.Series) else [value] * n,
                "message": message.to_numpy() if isinstance(message, pd.Series) else [message] * n,
            }
        )
        self.parts.append(part)
        if state is not None:
            pos = rows.index.to_numpy()
            if RULES[rule][1] == "quarantine":
                state.quarantine[pos] |= RULE_BIT[rule]
            if sev == "error":
                state.errors[pos] = True
        return True

    def table(self) -> pd.DataFrame:
        f = pd.concat(self.parts, ignore_index=True) if self.parts else pd.DataFrame(columns=FINDING_COLUMNS)
        f["line"] = f["line"].astype("int64")
        f = f.sort_values(["file", "line", "rule"], kind="stable", ignore_index=True)
        # Column names of trialpipe's validation/findings.parquet.
        return f.rename(columns=dict(zip(FINDING_COLUMNS, TRIALPIPE_FINDING_COLUMNS)))


def fmt_num(v: pd.Series) -> pd.Series:
    """`{v:.6}` without trailing zeros (src/validate.rs fmt_num)."""
    s = v.map("{:.6f}".format).astype(str)
    return s.str.rstrip("0").str.rstrip(".").where(v.notna(), "")


# ----------------------------------------------------------------------------- ingest + validate


def read_subjects(pl: Pipeline, fd: Findings) -> tuple[pd.DataFrame, pd.DataFrame]:
    spec = pl.p["inputs"]["subjects"]
    if spec.get("layout", "default") != "default":
        raise Unsupported("subjects layout " + spec["layout"])
    frames = []
    for path in pl.expand(spec["path"]):
        df = read_csv(path, spec)
        df["file"] = path
        df["line"] = np.arange(2, len(df) + 2)
        frames.append(df)
    s = pd.concat(frames, ignore_index=True)
    fmt = spec.get("date_format")
    bad = {}
    for col in ["randomization_date", "consent_date", "first_dose_date"]:
        raw = s[col] if col in s else pd.Series("", index=s.index)
        s[col + "_d"] = parse_date(raw, fmt)
        bad[col] = (raw != "") & s[col + "_d"].isna()
    for col in ["age", "doses_received"]:
        raw = s[col] if col in s else pd.Series("", index=s.index)
        s[col + "_n"] = parse_number(raw)
        bad[col] = (raw != "") & s[col + "_n"].isna()
    s["sex"] = s["sex"].str.upper().replace("", pd.NA)
    st = State(len(s))
    dup = s["subject_id"].duplicated(keep="first")
    first_line = s.groupby("subject_id", sort=False)["line"].transform("first")
    d = s[dup]
    fd.fire(
        "subject_duplicate",
        d,
        d["subject_id"],
        "subject " + d["subject_id"] + " already appears on line " + first_line[dup].astype(str),
        st,
    )
    firsts = s[~dup]
    no_arm = firsts[firsts["arm"] == ""]
    fd.fire("subject_no_arm", no_arm, None, "subject " + no_arm["subject_id"] + " has no arm", st)
    unk = firsts[(firsts["arm"] != "") & ~firsts["arm"].isin(list(pl.arms))]
    fd.fire(
        "subject_unknown_arm",
        unk,
        unk["arm"],
        "arm `" + unk["arm"] + "` of subject " + unk["subject_id"] + " is not one of " + ", ".join(pl.arms),
        st,
    )
    for col in sorted(bad):
        b = firsts[bad[col][~dup]]
        fd.fire(
            "subject_bad_field",
            b,
            b[col],
            col + " `" + b[col] + "` of subject " + b["subject_id"] + " does not parse",
            st,
        )
    s["accepted"] = st.accepted()
    ref_col = {"randomization": "randomization_date", "consent": "consent_date", "first_dose": "first_dose_date"}
    firsts = s[~dup].set_index("subject_id")
    firsts["reference"] = firsts[ref_col[pl.reference] + "_d"]
    return s, firsts


def read_events(pl: Pipeline, subjects: pd.DataFrame, fd: Findings) -> tuple[pd.DataFrame, pd.Series]:
    spec = pl.p["inputs"].get("events")
    if not spec:
        return pd.DataFrame(columns=["file", "accepted"]), pd.Series(dtype="datetime64[ns]")
    if spec.get("layout", "events") != "events":
        raise Unsupported("events layout " + spec["layout"])
    frames = []
    for path in pl.expand(spec["path"]):
        df = read_csv(path, spec)
        df["file"] = path
        df["line"] = np.arange(2, len(df) + 2)
        frames.append(df)
    e = pd.concat(frames, ignore_index=True)
    e["event"] = e["event"].str.upper()
    e["date"] = parse_date(e["event_date"], spec.get("date_format"))
    st = State(len(e))
    unk = e[~e["subject_id"].isin(subjects.index)]
    fd.fire(
        "event_unknown_subject",
        unk,
        unk["subject_id"],
        "event " + unk["event"] + " for subject " + unk["subject_id"] + ", who is not in the subjects file",
        st,
    )
    bad = e[e["date"].isna()]
    fd.fire("event_bad_date", bad, bad["event_date"], "event date `" + bad["event_date"] + "` is not a date", st)
    typ = e[~e["event"].isin(EVENT_TYPES)]
    fd.fire(
        "event_unknown_type",
        typ,
        typ["event"],
        "event `" + typ["event"] + "` is not one of " + ", ".join(EVENT_TYPES),
        st,
    )
    e["accepted"] = st.accepted()
    deaths = e[e["accepted"] & (e["event"] == "DEATH") & e["date"].notna()]
    return e, deaths.groupby("subject_id")["date"].min()


def read_labs(pl: Pipeline) -> pd.DataFrame:
    frames = []
    for i, spec in enumerate(pl.p["inputs"]["labs"]):
        if spec.get("layout", "long") != "long":
            raise Unsupported(f"inputs.labs[{i}] layout " + spec["layout"])
        for path in pl.expand(spec["path"]):
            df = read_csv(path, spec)
            for c in ["study_id", "site_id", "test_name", "ref_low", "ref_high"]:
                if c not in df:
                    df[c] = ""
            df = df[
                [
                    "study_id",
                    "site_id",
                    "subject_id",
                    "visit",
                    "collection_date",
                    "test_code",
                    "test_name",
                    "result",
                    "unit",
                    "ref_low",
                    "ref_high",
                ]
            ].copy()
            df["file"] = path
            # One physical line per record (what the simulator writes; no embedded newlines).
            df["line"] = np.arange(2, len(df) + 2)
            df["date"] = parse_date(df["collection_date"], spec.get("date_format"))
            frames.append(df)
    labs = pd.concat(frames, ignore_index=True)
    labs["test_code"] = labs["test_code"].str.upper()
    labs["visit"] = labs["visit"].str.upper()
    return labs


def standardize(pl: Pipeline, reg: Registry, labs: pd.DataFrame) -> None:
    """Parse results, normalize and convert units; sets value, op, std_value, std_limit,
    std_unit, unit (canonical), std_ref_low/high and status (trialpipe's ParseStatus codes)."""
    r = labs["result"]
    lower = r.str.lower()
    blank = r == ""
    nd = lower.isin(NOT_DONE)
    num = parse_number(r)
    is_num = ~blank & ~nd & num.notna()
    rest = r[~blank & ~nd & ~is_num]
    cens = rest.str.extract(r"^(<=|<|>=|>)(.*)$").reindex(r.index)
    lim = parse_number(cens[1].fillna(""))
    is_cens = lim.notna()
    status = np.select(
        [blank, nd, is_num, is_cens], ["blank_result", "not_done", "ok", "censored"], default="text_result"
    )
    labs["value"] = num.where(is_num)
    labs["op"] = cens[0].where(is_cens).str[0]  # "<" or ">"
    labs["limit"] = lim.where(is_cens)

    # One conversion per distinct (test, unit spelling), then mapped onto the rows.
    pairs = labs[["test_code", "unit"]].drop_duplicates()
    conv_rows = []
    for test, unit in pairs.itertuples(index=False):
        canon = reg.canonical(unit)
        t = pl.panel.get(test)
        if t is None:
            conv_rows.append((test, unit, canon, None, None, "unknown_test"))
            continue
        std = reg.canonical(t["unit"])
        if canon is None:
            conv_rows.append((test, unit, None, t["unit"], None, "unknown_unit"))
            continue
        extra = [(reg.canonical(c["from"]), reg.canonical(c["to"]), c["factor"]) for c in t.get("conversions", [])]
        f = reg.factor(test, canon, std, extra)
        conv_rows.append((test, unit, canon, t["unit"], f, "ok" if f is not None else "no_conversion"))
    conv = pd.DataFrame(conv_rows, columns=["test_code", "unit", "unit_canon", "std_unit", "factor", "conv"])
    m = labs[["test_code", "unit"]].merge(conv, on=["test_code", "unit"], how="left")
    labs["unit_canon"] = m["unit_canon"].to_numpy()
    labs["std_unit"] = m["std_unit"].to_numpy()
    factor = pd.Series(m["factor"].to_numpy(dtype="float64"), index=labs.index)
    convst = pd.Series(m["conv"].to_numpy(), index=labs.index)
    status = pd.Series(status, index=labs.index)
    replace = status.isin(["ok", "censored"]) & (convst != "ok")
    status = status.where(~replace, convst)
    labs["std_value"] = labs["value"] * factor
    labs["std_limit"] = labs["limit"] * factor
    if pl.censored == "limit":
        labs["std_value"] = labs["std_value"].fillna(labs["std_limit"])
    elif pl.censored == "half_limit":
        half = labs["std_limit"].where(labs["op"] != "<", labs["std_limit"] / 2)
        labs["std_value"] = labs["std_value"].fillna(half)
    labs["std_ref_low"] = parse_number(labs["ref_low"]) * factor
    labs["std_ref_high"] = parse_number(labs["ref_high"]) * factor
    status = status.where(~((status == "ok") & labs["date"].isna()), "bad_date")
    labs["status"] = status


def validate_labs(pl: Pipeline, labs: pd.DataFrame, subjects: pd.DataFrame, death: pd.Series, fd: Findings) -> State:
    st = State(len(labs))
    # Findings need only these columns: slice them, not the whole frame.
    ids = ["subject_id", "test_code", "visit", "file", "line"]

    def rows(mask, *extra: str) -> pd.DataFrame:
        return labs.loc[mask, ids + [c for c in extra if c not in ids]]

    status = labs["status"]
    per_status = {
        "unknown_test": (
            "unknown_test",
            "test_code",
            lambda x: "test code `" + x["test_code"] + "` is not in the lab panel",
        ),
        "unknown_unit": (
            "unknown_unit",
            "unit",
            lambda x: "unit `" + x["unit"] + "` of " + x["test_code"] + " is not in the unit registry",
        ),
        "no_conversion": (
            "no_unit_path",
            "unit",
            lambda x: (
                "no conversion for "
                + x["test_code"]
                + " from `"
                + x["unit"]
                + "` to `"
                + x["std_unit"].fillna("?")
                + "`"
            ),
        ),
        "text_result": (
            "non_numeric",
            "result",
            lambda x: "result `" + x["result"] + "` of numeric test " + x["test_code"] + " is not a number",
        ),
        "blank_result": ("blank_result", None, lambda x: "blank result"),
        "not_done": ("not_done", "result", lambda x: "result not done"),
        "censored": ("censored", "result", lambda x: "censored result `" + x["result"] + "`"),
    }
    def fire_bad_date(mask):
        # The date as read is the value; the message names it (or says it is missing).
        x = rows(mask, "collection_date")
        raw = x["collection_date"].fillna("").str.strip()
        msg = ("collection date `" + raw + "` is not a date (or study day) in the expected form").where(
            raw != "", "collection date is missing"
        )
        fd.fire("bad_date", x, raw.where(raw != "", None), msg, st)

    for code, (rule, vcol, msg) in per_status.items():
        if code == "bad_date":
            continue
        x = rows(status == code, "result", "unit", "std_unit")
        fd.fire(rule, x, x[vcol] if vcol else None, msg(x), st)
    fire_bad_date(status == "bad_date")
    fire_bad_date(labs["date"].isna() & (status != "bad_date"))

    known = labs["subject_id"].isin(subjects.index)
    x = rows(~known)
    fd.fire("unknown_subject", x, x["subject_id"], "subject " + x["subject_id"] + " is not in the subjects file", st)

    # Plausibility (impossible values) and normal range (abnormal), in the standard unit.
    subj = subjects[["sex", "consent_date_d", "reference"]].reindex(labs["subject_id"])
    sex = pd.Series(subj["sex"].to_numpy(), index=labs.index)
    lo_p = labs["test_code"].map({c: t["plausible"]["low"] for c, t in pl.panel.items() if "plausible" in t})
    hi_p = labs["test_code"].map({c: t["plausible"]["high"] for c, t in pl.panel.items() if "plausible" in t})
    v = labs["std_value"]
    checked = v.notna() & lo_p.notna()
    impl = checked & ((v < lo_p) | (v > hi_p))
    unit = labs["test_code"].map({c: t["unit"] for c, t in pl.panel.items()})
    x = rows(impl, "result")
    fd.fire(
        "implausible",
        x,
        x["result"],
        x["test_code"]
        + " "
        + fmt_num(v[impl])
        + " "
        + unit[impl]
        + " is outside the plausible range "
        + fmt_num(lo_p[impl])
        + ".."
        + fmt_num(hi_p[impl])
        + " "
        + unit[impl],
        st,
    )
    lo_n = pd.Series(np.nan, index=labs.index)
    hi_n = pd.Series(np.nan, index=labs.index)
    site_range = pd.Series(True, index=labs.index)
    for code, t in pl.panel.items():
        n = t.get("normal")
        if n is None:
            continue
        is_t = labs["test_code"] == code
        site_range &= ~is_t
        lo_n[is_t], hi_n[is_t] = n.get("low", np.nan), n.get("high", np.nan)
        for sx, key in [("M", "male"), ("F", "female")]:
            if key in n:
                sel = is_t & (sex == sx)
                lo_n[sel], hi_n[sel] = n[key]["low"], n[key]["high"]
    lo_n = lo_n.where(~site_range, labs["std_ref_low"])
    hi_n = hi_n.where(~site_range, labs["std_ref_high"])
    abn = checked & ~impl & ((v < lo_n) | (v > hi_n))
    x = rows(abn, "result")
    fd.fire(
        "abnormal",
        x,
        x["result"],
        x["test_code"]
        + " "
        + fmt_num(v[abn])
        + " "
        + unit[abn]
        + " is outside the normal range "
        + fmt_num(lo_n[abn])
        + ".."
        + fmt_num(hi_n[abn]),
        st,
    )
    labs["anrlo"], labs["anrhi"] = lo_n, hi_n

    consent = pd.Series(subj["consent_date_d"].to_numpy(), index=labs.index)
    bc = labs["date"].notna() & known & (labs["date"] < consent)
    x = rows(bc, "date")
    ds = x["date"].dt.strftime("%Y-%m-%d")
    fd.fire(
        "before_consent",
        x,
        ds,
        "collected " + ds + ", before informed consent on " + consent[bc].dt.strftime("%Y-%m-%d"),
        st,
    )
    dd = labs["subject_id"].map(death)
    ad = labs["date"].notna() & known & (labs["date"] > dd)
    x = rows(ad, "date")
    ds = x["date"].dt.strftime("%Y-%m-%d")
    fd.fire("after_death", x, ds, "collected " + ds + ", after death on " + dd[ad].dt.strftime("%Y-%m-%d"), st)

    # Exact copies (first kept), then conflicting values for the same subject, test and date.
    key = ["subject_id", "visit", "test_code", "result", "unit", "date"]
    dup = labs.duplicated(key, keep="first")
    if dup.any():
        x = rows(dup, *key)
        firsts = labs.loc[labs.duplicated(key, keep=False) & ~dup, key + ["file", "line"]]
        firsts = firsts.assign(loc=firsts["file"] + ":" + firsts["line"].astype(str)).set_index(key)["loc"]
        src = firsts.reindex(pd.MultiIndex.from_frame(x[key])).to_numpy()
        fd.fire("duplicate_exact", x, x["result"], "exact copy of " + pd.Series(src, index=x.index), st)
    first = ~dup & labs["date"].notna()
    cand = first & labs.duplicated(["subject_id", "test_code", "date"], keep=False)
    # (a later exact copy keeps its first in the group, so `keep=False` over all rows, then `first`)
    cand = labs.loc[cand, ids + ["date", "result", "value", "std_value"]]
    cand = cand[cand.duplicated(["subject_id", "test_code", "date"], keep=False)]
    if len(cand):
        vkey = np.where(
            cand["std_value"].notna(),
            cand["std_value"].map(lambda f: f"{f:.9e}"),  # only where not null
            np.where(cand["value"].notna(), "raw " + cand["value"].astype(str), "text " + cand["result"]),
        )
        cand = cand.assign(vkey=vkey)
        g = cand.groupby(["subject_id", "test_code", "date"], sort=False)
        x = cand[g["vkey"].transform("nunique") > 1]
        item = x["file"] + ":" + x["line"].astype(str) + " `" + x["result"] + "`"
        listing = item.groupby([x["subject_id"], x["test_code"], x["date"]], sort=False).transform(", ".join)
        fd.fire(
            "duplicate_conflict",
            x,
            x["result"],
            x["test_code"] + " on " + x["date"].dt.strftime("%Y-%m-%d") + " has conflicting results: " + listing,
            st,
        )

    # Study day and visit windows, among accepted rows with a standard value.
    ref = pd.Series(subj["reference"].to_numpy(), index=labs.index)
    labs["study_day"] = study_day(labs["date"], ref)
    eligible = pd.Series(st.accepted(), index=labs.index) & labs["std_value"].notna()
    x = rows(eligible & labs["study_day"].isna())
    fd.fire("no_study_day", x, None, "no study day: the subject has no reference date", st)
    day = labs["study_day"]
    win = pd.Series(pd.NA, index=labs.index, dtype="Int64")
    for k, w in enumerate(pl.windows):
        win[(day >= w["low"]) & (day <= w["high"])] = k
    labs["window"] = win
    placed = eligible & day.notna()
    x = rows(placed & win.isna(), "study_day")
    fd.fire(
        "out_of_window",
        x,
        x["study_day"].astype(str),
        "study day " + x["study_day"].astype(str) + " (visit `" + x["visit"] + "`) is in no window",
        st,
    )
    c = rows(placed & win.notna(), "study_day", "window", "result")
    target = c["window"].map({k: w["target"] for k, w in enumerate(pl.windows)}).astype("int64")
    if pl.window_rule == "closest":
        c["k1"] = (c["study_day"] - target).abs()
        c["k2"] = c["study_day"] if pl.tie == "earlier" else -c["study_day"]
    elif pl.window_rule == "earliest":
        c["k1"], c["k2"] = c["study_day"], 0
    else:
        c["k1"], c["k2"] = -c["study_day"], 0
    c["order"] = c.index
    c = c.sort_values(["subject_id", "test_code", "window", "k1", "k2", "order"])
    cell = c.groupby(["subject_id", "test_code", "window"], sort=False)
    chosen = (cell.cumcount() == 0).to_numpy()
    selected = np.zeros(len(labs), dtype=bool)
    selected[c.index.to_numpy()[chosen]] = True
    labs["selected"] = selected
    x = c[~chosen]
    if len(x):
        sel_day = cell["study_day"].transform("first")[~chosen]
        sel_file = cell["file"].transform("first")[~chosen]
        sel_line = cell["line"].transform("first")[~chosen]
        wname = x["window"].map({k: w["name"] for k, w in enumerate(pl.windows)})
        fd.fire(
            "multiple_in_window",
            x,
            x["result"],
            "window "
            + wname
            + " also holds day "
            + sel_day.astype(str)
            + " ("
            + sel_file
            + ":"
            + sel_line.astype(str)
            + "), which the window rule selected",
            st,
        )
    labs["accepted"] = st.accepted()
    labs["errors"] = st.errors
    return st


def _fmt_value(v: float, decimals: int | None) -> str:
    """src/derive.rs fmt_value: fixed decimals, else the shortest form."""
    if decimals is not None:
        return f"{v:.{decimals}f}"
    t = repr(float(v))
    return t.removesuffix(".0")


def flag(mask: pd.Series) -> pd.Series:
    """A CDISC flag column: "Y" or null."""
    return pd.Series(np.where(mask.to_numpy(), "Y", None), index=mask.index, dtype="str")


def derive_adlb(pl: Pipeline, labs: pd.DataFrame, subjects: pd.DataFrame) -> pd.DataFrame:
    """ADLB-like BDS: accepted panel records with a standard value, baseline and change."""
    ok_subject = labs["subject_id"].isin(subjects.index[subjects["accepted"]])
    need = [
        "subject_id",
        "test_code",
        "std_value",
        "std_limit",
        "op",
        "date",
        "study_day",
        "window",
        "selected",
        "anrlo",
        "anrhi",
        "file",
        "line",
    ]
    a = labs.loc[
        labs["accepted"] & ok_subject & labs["std_value"].notna() & labs["test_code"].isin(list(pl.panel)), need
    ]
    subj = subjects[["arm", "site_id", "doses_received_n", "first_dose_date_d"]].reindex(a["subject_id"])
    arm = pd.Series(subj["arm"].to_numpy(), index=a.index)
    known_arm = arm.where(arm.isin(list(pl.arms)))
    dosed = (subj["doses_received_n"].fillna(0).to_numpy() > 0) | subj["first_dose_date_d"].notna().to_numpy()
    prefix = pl.study_id + "-"
    usubjid = a["subject_id"].where(a["subject_id"].str.startswith(prefix), prefix + a["subject_id"])
    paramn = {c: i + 1 for i, c in enumerate(pl.panel)}
    # LBSEQ: per subject, over all accepted records, sorted by test, date and source order.
    acc = labs.loc[labs["accepted"] & ok_subject, ["subject_id", "test_code", "date", "file", "line"]]
    acc = acc.assign(
        _u=acc["subject_id"].where(
            acc["subject_id"].str.startswith(pl.study_id + "-"), pl.study_id + "-" + acc["subject_id"]
        )
    )
    acc = acc.sort_values(["_u", "test_code", "date", "file", "line"], na_position="first", kind="stable")
    lbseq = (acc.groupby("subject_id", sort=False).cumcount() + 1).reindex(a.index)
    # AVALC: the standard value with the test's decimals (censored: operator and limit).
    decimals = {c: t.get("decimals") for c, t in pl.panel.items()}
    fmt = [_fmt_value(v, decimals[t]) for v, t in zip(a["std_value"].to_numpy(), a["test_code"].to_numpy())]
    avalc = pd.Series(fmt, index=a.index, dtype="str")
    cens = a["op"].notna()
    if cens.any():
        lim = [_fmt_value(v, decimals[t]) for v, t in zip(a.loc[cens, "std_limit"], a.loc[cens, "test_code"])]
        avalc[cens] = a.loc[cens, "op"] + pd.Series(lim, index=a.index[cens])
    wins = pl.windows
    w = a["window"]
    adlb = pd.DataFrame(
        {
            "STUDYID": pl.study_id,
            "USUBJID": usubjid,
            "SUBJID": a["subject_id"],
            "SITEID": pd.Series(subj["site_id"].to_numpy(), index=a.index),
            "ARMCD": known_arm,
            "TRTP": known_arm.map(pl.arms),
            "TRTA": known_arm.map(pl.arms).where(dosed),
            "PARAMCD": a["test_code"],
            "PARAM": a["test_code"].map({c: f"{t['name']} ({t['unit']})" for c, t in pl.panel.items()}),
            "PARAMN": a["test_code"].map(paramn).astype("int64"),
            "AVAL": a["std_value"],
            "AVALC": avalc,
            "AVALU": a["test_code"].map({c: t["unit"] for c, t in pl.panel.items()}),
            "ADT": a["date"].astype("date32[pyarrow]"),
            "ADY": a["study_day"],
            "AVISIT": w.map({k: x["name"] for k, x in enumerate(wins)}),
            "AVISITN": w.map({k: float(x["number"]) for k, x in enumerate(wins)}).astype("float64"),
            "AWTARGET": w.map({k: x["target"] for k, x in enumerate(wins)}),
            "AWLO": w.map({k: x["low"] for k, x in enumerate(wins)}),
            "AWHI": w.map({k: x["high"] for k, x in enumerate(wins)}),
            "ABLFL": flag(a["selected"] & (w == pl.baseline_w).fillna(False)),
            "ANRLO": a["anrlo"],
            "ANRHI": a["anrhi"],
            "ANL01FL": flag(a["selected"]),
            "LBSEQ": lbseq.astype("Int64"),
            "SRCFILE": a["file"],
            "SRCLINE": a["line"],
        }
    )
    adlb = adlb.reset_index(drop=True)
    v, lo, hi = adlb["AVAL"], adlb["ANRLO"], adlb["ANRHI"]
    ind = np.select([v < lo, v > hi], ["LOW", "HIGH"], default="NORMAL")
    adlb["ANRIND"] = pd.Series(ind, index=adlb.index, dtype="str").where(lo.notna() | hi.notna())
    base = adlb.loc[adlb["ABLFL"] == "Y", ["USUBJID", "PARAMCD", "AVAL", "ANRIND", "ADY"]]
    base = base.drop_duplicates(["USUBJID", "PARAMCD"]).set_index(["USUBJID", "PARAMCD"])
    b = base.reindex(pd.MultiIndex.from_frame(adlb[["USUBJID", "PARAMCD"]]))
    adlb["BASE"] = b["AVAL"].to_numpy()
    adlb["BNRIND"] = b["ANRIND"].to_numpy()
    post = (
        adlb["ADY"].to_numpy(dtype="float64", na_value=np.nan) > b["ADY"].to_numpy(dtype="float64", na_value=np.nan)
    ) & (adlb["ABLFL"] != "Y").to_numpy()
    adlb["CHG"] = (adlb["AVAL"] - adlb["BASE"]).where(post)
    adlb["PCHG"] = (adlb["CHG"] / adlb["BASE"] * 100).where(post & (adlb["BASE"] != 0))
    shift = adlb["BNRIND"] + " to " + adlb["ANRIND"]
    adlb["SHIFT1"] = shift.where(post)
    # Worst post-baseline: highest and lowest AVAL; on ties the earliest record (by date, then
    # source file and line), as trialpipe documents it.
    p = adlb.loc[post, ["USUBJID", "PARAMCD", "AVAL", "ADT", "SRCFILE", "SRCLINE"]].sort_values(
        ["ADT", "SRCFILE", "SRCLINE"], kind="stable"
    )
    hi_row = np.zeros(len(adlb), dtype=bool)
    lo_row = np.zeros(len(adlb), dtype=bool)
    if len(p):
        g = p.groupby(["USUBJID", "PARAMCD"], sort=False)["AVAL"]
        hi_row[g.idxmax().to_numpy()] = True
        lo_row[g.idxmin().to_numpy()] = True
    adlb["WORSTHFL"] = flag(pd.Series(hi_row, index=adlb.index))
    adlb["WORSTLFL"] = flag(pd.Series(lo_row, index=adlb.index))
    adlb = adlb.sort_values(
        ["USUBJID", "PARAMN", "AVISITN", "ADT", "SRCFILE", "SRCLINE"],
        na_position="first",
        kind="stable",
        ignore_index=True,
    )
    return adlb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pipeline", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--stage", choices=["validate", "derive"], default="validate")
    args = ap.parse_args()
    try:
        pl = Pipeline(args.pipeline)
        reg = Registry(REGISTRY)
        fd = Findings(pl)
        subj_rows, subjects = read_subjects(pl, fd)
        events, death = read_events(pl, subjects, fd)
        labs = read_labs(pl)
        standardize(pl, reg, labs)
        st = validate_labs(pl, labs, subjects, death, fd)
        adlb = derive_adlb(pl, labs, subjects) if args.stage == "derive" else None
    except Unsupported as e:
        print(f"pandas_reference: not supported by the reference: {e}", file=sys.stderr)
        return 2

    findings = fd.table()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    keep = [
        "study_id",
        "site_id",
        "subject_id",
        "visit",
        "date",
        "study_day",
        "test_code",
        "test_name",
        "result",
        "value",
        "op",
        "limit",
        "unit",
        "unit_canon",
        "std_value",
        "std_limit",
        "std_unit",
        "std_ref_low",
        "std_ref_high",
        "status",
        "window",
        "selected",
        "accepted",
        "file",
        "line",
    ]
    labs[keep].to_parquet(out / "labs.parquet", index=False)
    q = labs.loc[~labs["accepted"], keep]
    q = q.assign(quarantine_rules=st.rules(q.index.to_numpy()))
    q.to_parquet(out / "quarantine.parquet", index=False)
    findings.to_parquet(out / "findings.parquet", index=False)
    if adlb is not None:
        adlb.to_parquet(out / "adlb.parquet", index=False)

    files = []
    for kind, df in [("subjects", subj_rows), ("labs", labs), ("events", events)]:
        for f, g in df.groupby("file", sort=False):
            acc = int(g["accepted"].sum())
            files.append(
                {"file": f, "kind": kind, "rows_read": len(g), "rows_accepted": acc, "rows_quarantined": len(g) - acc}
            )
    rows_read = len(labs)
    with_errors = int(labs["errors"].sum())
    pct = 100.0 * with_errors / rows_read if rows_read else 0.0
    if pl.max_error_percent is not None and pct > pl.max_error_percent:
        verdict = "errors_over_threshold"
    elif findings["SEVERITY"].isin(["warning", "error"]).any():
        verdict = "warnings"
    else:
        verdict = "clean"
    summary = {
        "findings_by_rule": {k: int(v) for k, v in findings["RULE"].value_counts().sort_index().items()},
        "findings_by_severity": {k: int(v) for k, v in findings["SEVERITY"].value_counts().sort_index().items()},
        "lab_rows_read": rows_read,
        "lab_rows_with_errors": with_errors,
        "error_percent": pct,
        "max_error_percent": pl.max_error_percent,
        "files": files,
        "verdict": verdict,
    }
    if adlb is not None:
        summary["adlb"] = adlb_counts(adlb)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def adlb_counts(adlb: pd.DataFrame) -> dict:
    """Row counts a reader can compare with trialpipe's adam/adlb.parquet."""
    return {
        "rows": len(adlb),
        "ANL01FL": int((adlb["ANL01FL"] == "Y").sum()),
        "ABLFL": int((adlb["ABLFL"] == "Y").sum()),
        "CHG": int(adlb["CHG"].notna().sum()),
    }


if __name__ == "__main__":
    sys.exit(main())
