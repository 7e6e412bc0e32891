#!/usr/bin/env python3
"""Time trialpipe's MMRM and nlme::gls on one data file and compare their estimates. Called by
benches/mmrm.sh (`make bench-mmrm`), which builds the example and writes the data first.

    python mmrm_compare.py --bench MMRM_BENCH --data DATA.csv --subjects N --work DIR
                           [--repeat 3] [--nlme] [--json RESULTS.json]

Measurement
* trialpipe: `mmrm_bench fit DATA.csv`, REPEAT times; the table shows the best (lowest) wall
  time of the process (time.perf_counter() around it: start-up, reading the CSV and fitting)
  and, from the JSON it prints, the best read and fit times measured inside it.
* nlme (with --nlme): `Rscript benches/mmrm_nlme.R DATA.csv OUT.csv`, once (it is slow): wall
  time of the process (R start-up, read.csv, the standard gls call and a refinement of it with
  optim) and, from system.time inside the script, the times of each step.
* Speed ratios nlme / trialpipe for the fit alone (trialpipe's fit against the standard gls
  call) and for the whole process.
* Agreement: the largest relative difference |trialpipe - nlme| / |nlme| over the 7
  coefficients, over their standard errors and over the 9 entries of the visit covariance
  matrix, against the refined and the standard nlme fit, and the difference of -2 log L.

Goals (issue #5): at least 100x faster than nlme (fit alone), coefficients equal to a relative
1e-6 (against the refined fit when the refinement succeeded), and, at 1,000,000 subjects or more,
the whole trialpipe process in under 30 s. Each is printed as PASS or MISS; the exit status is 0
either way (1 only if a command fails).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_RATIO = 100.0
GOAL_REL = 1e-6
GOAL_SECONDS = 30.0
GOAL_SECONDS_SUBJECTS = 1_000_000


def run(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-2000:] + out.stderr[-4000:])
        raise SystemExit(f"mmrm_compare: `{' '.join(cmd)}` exited {out.returncode}")
    return wall, out.stdout


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def max_rel(pairs: list[tuple[float, float]]) -> float:
    return max(abs(a - b) / abs(b) if b != 0 else abs(a - b) for a, b in pairs)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()}"


def r_version() -> str:
    out = subprocess.run(
        ["Rscript", "-e", 'cat(R.version.string, "nlme", format(packageVersion("nlme")))'],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", required=True, help="the mmrm_bench example binary")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--subjects", type=int, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nlme", action="store_true", help="also fit with nlme::gls")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    args.work.mkdir(parents=True, exist_ok=True)

    today = datetime.date.today().isoformat()
    print(f"\nmachine: {machine()}; date: {today}")
    results: dict = {"date": today, "machine": machine(), "subjects": args.subjects, "repeat": args.repeat}

    print(f"\n== trialpipe MMRM (UN, REML, Satterthwaite), best of {args.repeat} ==")
    runs = []
    for r in range(args.repeat):
        wall, out = run([args.bench, "fit", str(args.data)])
        fit = json.loads(out)
        runs.append({"wall": wall, "read": fit["read_seconds"], "fit": fit["fit_seconds"]})
        print(f"  run {r + 1}/{args.repeat}  process {wall:8.3f} s  read {fit['read_seconds']:7.3f} s  fit {fit['fit_seconds']:7.3f} s")
    tp = {k: min(x[k] for x in runs) for k in ("wall", "read", "fit")}
    print(
        f"  {fit['subjects']:,} subjects, {fit['observations']:,} observations, {fit['patterns']} missingness "
        f"patterns, {fit['threads']} threads, {fit['iterations']} Newton iterations, converged: {fit['converged']}"
    )
    results["trialpipe"] = {"seconds": tp, "runs": runs, "fit": fit}

    ok_seconds = None
    if args.subjects >= GOAL_SECONDS_SUBJECTS:
        ok_seconds = tp["wall"] < GOAL_SECONDS
        results["goal_seconds"] = {"measured": tp["wall"], "goal": GOAL_SECONDS, "pass": ok_seconds}

    if args.nlme:
        print(f"\n== nlme::gls ({r_version()}), once ==")
        out_csv = args.work / "nlme.csv"
        wall, _ = run(["Rscript", str(HERE / "mmrm_nlme.R"), str(args.data), str(out_csv)])
        fits: dict[str, dict[str, dict]] = {}
        with open(out_csv, newline="") as f:
            for r in csv.DictReader(f):
                fits.setdefault(r["fit"], {})[r["quantity"]] = r
        t = {k: float(v["estimate"]) for k, v in fits["time"].items()}
        r_read, r_fit, r_refine = t["read_seconds"], t["fit_seconds"], t["refine_seconds"]
        print(f"  process {wall:8.3f} s  read {r_read:7.3f} s  gls (nlminb) {r_fit:7.3f} s  refinement (optim) {r_refine:7.3f} s")
        ratio_wall = wall / tp["wall"]
        ratio_fit = r_fit / tp["fit"]
        print(f"\n  {'':<36}{'trialpipe':>12}{'nlme':>12}{'ratio':>10}")
        print(f"  {'fit alone (s), nlme: standard gls':<36}{tp['fit']:>12.3f}{r_fit:>12.3f}{ratio_fit:>9.0f}x")
        print(f"  {'whole process (s)':<36}{tp['wall']:>12.3f}{wall:>12.3f}{ratio_wall:>9.0f}x")
        print(f"  {'read the CSV (s)':<36}{tp['read']:>12.3f}{r_read:>12.3f}")
        print("  (nlme's process includes the refinement; the goal is judged on the fit alone)")

        def diffs(rows: dict[str, dict]) -> dict[str, float]:
            coef = [(c["estimate"], float(rows[c["name"]]["estimate"])) for c in fit["coefficients"]]
            ses = [(c["se"], float(rows[c["name"]]["se"])) for c in fit["coefficients"]]
            sig = [
                (fit["covariance"][i][j], float(rows[f"Sigma[{i + 1},{j + 1}]"]["estimate"]))
                for i in range(3)
                for j in range(3)
            ]
            m2 = -2 * float(rows["logLik"]["estimate"])
            return {
                "coefficients": max_rel(coef),
                "se": max_rel(ses),
                "covariance": max_rel(sig),
                "m2_log_lik": m2,
                "m2_difference": fit["m2_log_lik"] - m2,
            }

        d = {label: diffs(rows) for label, rows in fits.items() if label != "time"}
        labels = [x for x in ("refined", "nlminb") if x in d]
        print("\n  largest relative difference trialpipe vs nlme:")
        print(f"  {'':<30}" + "".join(f"{x:>14}" for x in labels))
        for key, name in [("coefficients", "coefficients (7)"), ("se", "standard errors (7)"), ("covariance", "visit covariance (9)")]:
            print(f"  {name:<30}" + "".join(f"{d[x][key]:>14.2e}" for x in labels))
        print(f"  {'-2 log L, trialpipe - nlme':<30}" + "".join(f"{d[x]['m2_difference']:>14.2e}" for x in labels))
        print(f"  (trialpipe -2 log L {fit['m2_log_lik']:.7f}; negative differences: trialpipe's estimate has the higher likelihood)")
        if "refined" not in d:
            print("  (the optim refinement failed; the nlminb fit is compared)")
        best = d[labels[0]]
        print()
        print(f"  nlme / trialpipe (fit)     {ratio_fit:9.0f}x   goal >= {GOAL_RATIO:g}x   {verdict(ratio_fit >= GOAL_RATIO)}")
        print(
            f"  coefficients equal         {best['coefficients']:9.1e}    goal <= {GOAL_REL:g}  "
            f"{verdict(best['coefficients'] <= GOAL_REL)}   (vs the {labels[0]} nlme fit)"
        )
        results["nlme"] = {"seconds": {"wall": wall, "read": r_read, "fit": r_fit, "refine": r_refine}}
        results["ratio"] = {"process": ratio_wall, "fit": ratio_fit}
        results["max_relative_difference"] = d
    else:
        print("\n  nlme not run (NLME=0, or more subjects than NLME_MAX_SUBJECTS)")
    if ok_seconds is not None:
        print(
            f"  {args.subjects:,} subjects, process    {tp['wall']:9.2f} s  goal < {GOAL_SECONDS:g} s     {verdict(ok_seconds)}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
