#!/usr/bin/env python3
"""Run trialpipe, the pandas reference and the polars floor side by side on one simulated
trial and print wall time, peak memory, the ratios and the goals. Called by benches/run.sh
(`make bench`), which builds the binary, makes the venv and simulates the data first.

    python compare.py --bin TRIALPIPE --pipeline PIPELINE.toml --work DIR [--repeat 3]
                      [--stages validate,derive] [--json RESULTS.json]

Measurement
* Each command runs REPEAT times; the rounds are interleaved (floor, trialpipe, pandas, then
  again) so that a slow moment of the machine does not hit one tool only. Every run writes to
  an empty output directory.
* Wall time: time.perf_counter() around the child process, from start to exit (Python start-up
  and imports included for the two Python scripts: they are part of what a user runs). The
  table shows the best (lowest) of the REPEAT runs.
* Peak memory: the child's maximum resident set size (ru_maxrss), from GNU `time -f %M` when
  /usr/bin/time exists, else from os.wait4() here; the table shows the highest of the REPEAT
  runs. Linux carries the parent's high-water mark into the child's ru_maxrss across fork and
  exec, so this driver imports no data library (its own peak stays near 11 MiB, GNU time's
  near 1 MiB): with wait4 a child below that is shown as that floor.

Goals (ingest + validate, from the issues): trialpipe at least 10x faster than pandas, at most
2x the polars floor, peak RSS under 1 GiB. Each is printed as PASS or MISS. The derive
comparison has no goal here; its ratio is printed for information.

Same work: so that a reader can see that both did the same work, the lab rows read, accepted
and quarantined, the rows with error findings and the findings per rule are printed for
trialpipe (validation/summary.json) next to the pandas reference (summary.json), and the
rows the floor read; then check_same.py compares the findings tables row by row and column by
column (messages included), and for derive the ADLB tables. Exit status 1 when anything
differs (the timing comparison is then not a comparison), else 0 whether the goals pass or
not.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_VS_PANDAS = 10.0  # trialpipe at least this many times faster than pandas
GOAL_VS_FLOOR = 2.0  # trialpipe at most this many times the floor
GOAL_PEAK_MIB = 1024.0  # peak RSS under 1 GiB


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_once(cmd: list[str], out: Path, log: Path, ok_codes: tuple[int, ...]) -> tuple[float, float]:
    """Run `cmd` once into `out`, inside a directory of its own that is emptied first (trialpipe
    writes its output as a symlink to a generation directory, with a lock file, beside `out`).
    Returns (wall seconds, peak RSS MiB)."""
    if out.parent.exists():
        shutil.rmtree(out.parent)
    out.parent.mkdir(parents=True)
    rss_file = log.with_suffix(".rss")
    full = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd] if GNU_TIME else cmd
    with open(log, "wb") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in ok_codes:
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
        raise SystemExit(f"compare: `{' '.join(cmd)}` exited {code} (log: {log})")
    if GNU_TIME:
        # GNU time writes "Command exited with non-zero status N" first when N != 0.
        kib = float(rss_file.read_text().split()[-1])
    else:
        kib = usage.ru_maxrss
    return wall, kib / 1024.0


def measure(tools: dict[str, dict], repeat: int, work: Path) -> dict[str, dict]:
    res = {name: {"wall": [], "rss": []} for name in tools}
    for r in range(repeat):
        for name, t in tools.items():
            wall, rss = run_once(t["cmd"], t["out"], work / f"{name}.log", t["ok"])
            res[name]["wall"].append(wall)
            res[name]["rss"].append(rss)
            print(f"  round {r + 1}/{repeat}  {name:<10} {wall:8.2f} s  {rss:8.0f} MiB", flush=True)
    for v in res.values():
        v["best"] = min(v["wall"])
        v["peak"] = max(v["rss"])
    return res


def lab_counts(summary: dict) -> dict[str, int]:
    labs = [f for f in summary["files"] if f["kind"] == "labs"]
    c = {
        "lab rows read": summary["lab_rows_read"],
        "lab rows accepted": sum(f["rows_accepted"] for f in labs),
        "lab rows quarantined": sum(f["rows_quarantined"] for f in labs),
        "lab rows with errors": summary["lab_rows_with_errors"],
        "findings (all rules)": sum(summary["findings_by_rule"].values()),
    }
    for rule, n in sorted(summary["findings_by_rule"].items()):
        c[f"  {rule}"] = n
    return c


def side_by_side(title: str, left: dict, right: dict, names: tuple[str, str]) -> bool:
    print(f"\n{title}")
    print(f"  {'':<28}{names[0]:>14}{names[1]:>14}")
    same = True
    for k in list(dict.fromkeys([*left, *right])):
        a, b = left.get(k), right.get(k)
        mark = "" if a == b else "   <- differs"
        same &= a == b
        fa = "-" if a is None else f"{a:,}"
        fb = "-" if b is None else f"{b:,}"
        print(f"  {k:<28}{fa:>14}{fb:>14}{mark}")
    return same


def check_same(py: str, tp: Path, ref: Path, name: str) -> bool:
    """Row-by-row comparison in a child process (check_same.py); prints its verdict."""
    out = subprocess.run(
        [py, str(HERE / "check_same.py"), str(tp), str(ref), name], check=False, capture_output=True, text=True
    )
    print("  " + (out.stdout + out.stderr).strip().replace("\n", "\n  "))
    return out.returncode == 0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def versions(binary: str) -> dict[str, str]:
    # importlib.metadata reads the installed versions without importing the (large) packages.
    v = {"python": platform.python_version()}
    for mod in ["pandas", "pyarrow", "polars"]:
        try:
            v[mod] = importlib.metadata.version(mod)
        except importlib.metadata.PackageNotFoundError:
            v[mod] = "?"
    out = subprocess.run([binary, "--version"], check=False, capture_output=True, text=True)
    v["trialpipe"] = out.stdout.strip().removeprefix("trialpipe ") or "?"
    return v


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
        gib = int(mem.split()[1]) / 1024 / 1024
    except (OSError, StopIteration):
        gib = 0
    return f"{os.cpu_count()} cores ({cpu}), {gib:.0f} GiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the trialpipe binary")
    ap.add_argument("--bin-label", default="", help="shown next to the binary (e.g. 'DEBUG build')")
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True, help="directory for outputs and logs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stages", default="validate,derive")
    ap.add_argument("--subjects", default="?", help="for the report only")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - {"validate", "derive"}
    if unknown:
        ap.error(f"unknown stage(s) {', '.join(sorted(unknown))}; known: validate, derive")
    py = sys.executable
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    ok_tp = (0, 1)  # 0 clean, 1 warnings (the simulated data is messy on purpose)

    ver = versions(args.bin)
    today = datetime.date.today().isoformat()
    print(f"\nmachine: {machine()}; date: {today}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in ver.items()))
    print(f"binary: {args.bin}" + (f"  [{args.bin_label}]" if args.bin_label else ""))
    results: dict = {
        "date": today,
        "machine": machine(),
        "versions": ver,
        "binary": args.bin,
        "binary_label": args.bin_label,
        "subjects": args.subjects,
        "repeat": args.repeat,
    }
    all_same = True

    floor_tool = {
        "cmd": [py, str(HERE / "polars_floor.py"), str(args.pipeline), "--out", str(work / "floor" / "out")],
        "out": work / "floor" / "out",
        "ok": (0,),
    }
    floor = None
    if "validate" in stages:
        print(f"\n== ingest + validate, best of {args.repeat} ==")
        tools = {
            "floor": floor_tool,
            "trialpipe": {
                "cmd": [
                    args.bin,
                    "--quiet",
                    "validate",
                    str(args.pipeline),
                    "--out",
                    str(work / "tp-validate" / "out"),
                ],
                "out": work / "tp-validate" / "out",
                "ok": ok_tp,
            },
            "pandas": {
                "cmd": [
                    py,
                    str(HERE / "pandas_reference.py"),
                    str(args.pipeline),
                    "--out",
                    str(work / "pd-validate" / "out"),
                ],
                "out": work / "pd-validate" / "out",
                "ok": (0,),
            },
        }
        m = measure(tools, args.repeat, work)
        floor = m["floor"]
        tp_sum = json.loads((work / "tp-validate/out/validation/summary.json").read_text())
        pd_sum = json.loads((work / "pd-validate/out/summary.json").read_text())
        floor_rows = json.loads((work / "floor.log").read_text().strip().splitlines()[-1])
        rows = tp_sum["lab_rows_read"]
        print(f"\ninput: {args.subjects} subjects, {rows:,} lab rows (+ subjects and events files)")
        print(f"\n  {'':<34}{'seconds':>10}{'peak MiB':>10}")
        for name, label in [
            ("trialpipe", "trialpipe validate"),
            ("pandas", "pandas + pyarrow reference"),
            ("floor", "polars floor (CSV -> Parquet)"),
        ]:
            print(f"  {label:<34}{m[name]['best']:>10.2f}{m[name]['peak']:>10.0f}")
        vs_pandas = m["pandas"]["best"] / m["trialpipe"]["best"]
        vs_floor = m["trialpipe"]["best"] / m["floor"]["best"]
        peak = m["trialpipe"]["peak"]
        print()
        print(
            f"  pandas / trialpipe    {vs_pandas:8.2f}x   goal >= {GOAL_VS_PANDAS:g}x      "
            f"{verdict(vs_pandas >= GOAL_VS_PANDAS)}"
        )
        print(
            f"  trialpipe / floor     {vs_floor:8.2f}x   goal <= {GOAL_VS_FLOOR:g}x       "
            f"{verdict(vs_floor <= GOAL_VS_FLOOR)}"
        )
        print(f"  trialpipe peak RSS    {peak:8.0f} MiB goal < {GOAL_PEAK_MIB:g} MiB {verdict(peak < GOAL_PEAK_MIB)}")
        left = lab_counts(tp_sum)
        right = lab_counts(pd_sum)
        same = side_by_side(
            "same work? (trialpipe validation/summary.json vs the pandas reference)",
            left,
            right,
            ("trialpipe", "pandas"),
        )
        same &= side_by_side(
            "floor read", {"lab rows read": rows}, {"lab rows read": floor_rows["labs"]}, ("trialpipe", "polars floor")
        )
        print("\nrow by row (validation/findings.parquet vs the reference's findings.parquet):")
        same &= check_same(
            py,
            work / "tp-validate/out/validation/findings.parquet",
            work / "pd-validate/out/findings.parquet",
            "findings",
        )
        all_same &= same
        results["validate"] = {
            "lab_rows": rows,
            "seconds": {k: v["best"] for k, v in m.items()},
            "peak_mib": {k: v["peak"] for k, v in m.items()},
            "runs": {k: {"wall": v["wall"], "rss": v["rss"]} for k, v in m.items()},
            "pandas_over_trialpipe": vs_pandas,
            "trialpipe_over_floor": vs_floor,
            "goals": {
                "vs_pandas": vs_pandas >= GOAL_VS_PANDAS,
                "vs_floor": vs_floor <= GOAL_VS_FLOOR,
                "peak": peak < GOAL_PEAK_MIB,
            },
            "counts_match": same,
            "trialpipe_counts": left,
            "pandas_counts": right,
        }

    if "derive" in stages:
        print(f"\n== raw export -> ADLB (ingest + validate + derive), best of {args.repeat} ==")
        tools = {
            "trialpipe": {
                "cmd": [args.bin, "--quiet", "derive", str(args.pipeline), "--out", str(work / "tp-derive" / "out")],
                "out": work / "tp-derive" / "out",
                "ok": ok_tp,
            },
            "pandas": {
                "cmd": [
                    py,
                    str(HERE / "pandas_reference.py"),
                    str(args.pipeline),
                    "--stage",
                    "derive",
                    "--out",
                    str(work / "pd-derive" / "out"),
                ],
                "out": work / "pd-derive" / "out",
                "ok": (0,),
            },
        }
        m = measure(tools, args.repeat, work)
        print(f"\n  {'':<34}{'seconds':>10}{'peak MiB':>10}")
        for name, label in [("trialpipe", "trialpipe derive"), ("pandas", "pandas reference --stage derive")]:
            print(f"  {label:<34}{m[name]['best']:>10.2f}{m[name]['peak']:>10.0f}")
        ratio = m["pandas"]["best"] / m["trialpipe"]["best"]
        print(f"\n  pandas / trialpipe    {ratio:8.2f}x   (no goal checked here; for information)")
        if floor:
            print(
                f"  trialpipe / floor     {m['trialpipe']['best'] / floor['best']:8.2f}x   "
                "(floor: the CSV -> Parquet read above)"
            )
        # Counted in a child process: this driver stays small (see Peak memory above).
        count = (
            "import json, sys, pyarrow.parquet as pq, pyarrow.compute as pc\n"
            "t = pq.read_table(sys.argv[1], columns=['ANL01FL', 'ABLFL', 'CHG'])\n"
            "y = lambda c: pc.sum(pc.equal(t[c], 'Y')).as_py() or 0\n"
            "print(json.dumps([t.num_rows, y('ANL01FL'), y('ABLFL'), t.num_rows - t['CHG'].null_count]))\n"
        )
        out = subprocess.run(
            [py, "-c", count, str(work / "tp-derive/out/adam/adlb.parquet")], capture_output=True, text=True, check=True
        )
        n = json.loads(out.stdout)
        left = {"ADLB rows": n[0], "ANL01FL = Y": n[1], "ABLFL = Y": n[2], "CHG not null": n[3]}
        p = json.loads((work / "pd-derive/out/summary.json").read_text())["adlb"]
        right = {"ADLB rows": p["rows"], "ANL01FL = Y": p["ANL01FL"], "ABLFL = Y": p["ABLFL"], "CHG not null": p["CHG"]}
        same = side_by_side(
            "same ADLB? (trialpipe adam/adlb.parquet vs the pandas reference)", left, right, ("trialpipe", "pandas")
        )
        print("\nrow by row (adam/adlb.parquet vs the reference's adlb.parquet):")
        same &= check_same(py, work / "tp-derive/out/adam/adlb.parquet", work / "pd-derive/out/adlb.parquet", "ADLB")
        all_same &= same
        results["derive"] = {
            "seconds": {k: v["best"] for k, v in m.items()},
            "peak_mib": {k: v["peak"] for k, v in m.items()},
            "runs": {k: {"wall": v["wall"], "rss": v["rss"]} for k, v in m.items()},
            "pandas_over_trialpipe": ratio,
            "counts_match": same,
        }

    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    if not all_same:
        print("\ncompare: the row counts differ, so the timings do not compare the same work", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
