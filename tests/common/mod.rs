//! Helpers shared by integration tests: a private copy of the flagship to change, and for the
//! seed-pipeline tests (`tests/seed_*.rs`) running a pipeline with the real binary, exporting
//! derived Parquet to CSV for R, running an R oracle script, and reading both result sets keyed
//! by (METHOD, PARAMCD, AVISIT, GROUP).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use trialpipe::store::read_parquet_text;

/// (method, paramcd, avisit, group).
pub type Key = (String, String, String, String);

/// Key -> quantity -> value.
pub type Results = BTreeMap<Key, BTreeMap<String, f64>>;

/// A fresh scratch directory under the cargo test temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A private copy of the flagship pipeline (passed through `edit`) and its sample data in a
/// scratch directory, so a test can change inputs or settings; returns the pipeline's path.
pub fn flagship_copy(name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let root = scratch(name);
    std::fs::create_dir_all(root.join("pipelines")).unwrap();
    std::fs::create_dir_all(root.join("sample_data/msc_cirrhosis")).unwrap();
    let text = std::fs::read_to_string("pipelines/msc_cirrhosis.toml").unwrap();
    std::fs::write(root.join("pipelines/msc_cirrhosis.toml"), edit(text)).unwrap();
    for e in std::fs::read_dir("sample_data/msc_cirrhosis").unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(
            &p,
            root.join("sample_data/msc_cirrhosis")
                .join(p.file_name().unwrap()),
        )
        .unwrap();
    }
    root.join("pipelines/msc_cirrhosis.toml")
}

/// `trialpipe --quiet ARGS PIPELINE --out OUT`; returns the exit code and stderr.
pub fn trialpipe(args: &[&str], pipeline: &Path, out: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .arg("--quiet")
        .args(args)
        .arg(pipeline)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `trialpipe run PIPELINE --out OUT --force`; returns the exit code and stderr.
pub fn run(pipeline: &str, out: &Path) -> (i32, String) {
    trialpipe(&["run", "--force"], Path::new(pipeline), out)
}

/// Columns of a Parquet file as text, by name.
pub fn columns(parquet: &Path) -> BTreeMap<String, Vec<Option<String>>> {
    read_parquet_text(parquet)
        .unwrap()
        .into_iter()
        .map(|c| (c.name.clone(), c.values))
        .collect()
}

/// Write the named columns of a Parquet file as CSV (nulls as empty fields).
pub fn export(parquet: &Path, csv: &Path, cols: &[&str]) {
    let data = columns(parquet);
    let pick: Vec<&Vec<Option<String>>> = cols
        .iter()
        .map(|c| data.get(*c).unwrap_or_else(|| panic!("no column {c}")))
        .collect();
    let mut w = csv::Writer::from_path(csv).unwrap();
    w.write_record(cols).unwrap();
    for i in 0..pick[0].len() {
        w.write_record(pick.iter().map(|c| c[i].clone().unwrap_or_default()))
            .unwrap();
    }
    w.flush().unwrap();
}

/// The ADaM columns the flagship's R oracle scripts read, exported from a run's `out` directory
/// as `adlb.csv`, `adtte.csv`, `adrs.csv` and `adsl.csv` in `dir`.
pub fn export_for_r(out: &Path, dir: &Path) {
    export(
        &out.join("adam/adlb.parquet"),
        &dir.join("adlb.csv"),
        &[
            "USUBJID", "ARMCD", "PARAMCD", "AVISIT", "ANL01FL", "BASE", "CHG",
        ],
    );
    export(
        &out.join("adam/adtte.parquet"),
        &dir.join("adtte.csv"),
        &["USUBJID", "ARMCD", "PARAMCD", "AVAL", "CNSR", "STRAT1"],
    );
    export(
        &out.join("adam/adrs.parquet"),
        &dir.join("adrs.csv"),
        &["USUBJID", "ARMCD", "PARAMCD", "AVISIT", "AVALC"],
    );
    export(
        &out.join("adam/adsl.parquet"),
        &dir.join("adsl.csv"),
        &["USUBJID", "STRAT1"],
    );
}

/// Run a pipeline into `out` and require exit 1 (the messy sample data always has warnings).
pub fn run_expecting_warnings(pipeline: &Path, out: &Path) {
    let (code, stderr) = run(&pipeline.to_string_lossy(), out);
    assert_eq!(code, 1, "{stderr}");
}

/// `trialpipe derive PIPELINE --out OUT`, required to finish with warnings (exit 1: the messy
/// sample data always has some).
pub fn derive_expecting_warnings(pipeline: &Path, out: &Path) {
    let (code, stderr) = trialpipe(&["derive"], pipeline, out);
    assert_eq!(code, 1, "{stderr}");
}

/// Run an R script with arguments; panics with R's stderr when it fails.
pub fn rscript(script: &str, args: &[&Path]) {
    let r = Command::new("Rscript")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("Rscript not found ({e}): apt-get install r-base-core r-cran-nlme r-cran-emmeans r-cran-survival")
        });
    assert!(
        r.status.success(),
        "R failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// The numeric quantities of one `results/comparisons.csv` row, by the names the R oracle
/// scripts use (`estimate`, `se`, ...); blank cells are left out.
pub fn quantities(header: &csv::StringRecord, rec: &csv::StringRecord) -> BTreeMap<String, f64> {
    let idx = |n: &str| header.iter().position(|x| x == n).unwrap();
    let mut q = BTreeMap::new();
    for (col, name) in [
        ("N", "n"),
        ("ESTIMATE", "estimate"),
        ("SE", "se"),
        ("DF", "df"),
        ("LCL", "lcl"),
        ("UCL", "ucl"),
        ("STATISTIC", "statistic"),
        ("PVALUE", "p_value"),
        ("PADJ", "p_adjusted"),
    ] {
        if let Ok(v) = rec[idx(col)].parse::<f64>() {
            q.insert(name.to_string(), v);
        }
    }
    q
}

/// `results/comparisons.csv` of a run.
pub fn ours(out: &Path) -> Results {
    let mut res = Results::new();
    let mut rd = csv::Reader::from_path(out.join("results/comparisons.csv")).unwrap();
    let h = rd.headers().unwrap().clone();
    let idx = |n: &str| h.iter().position(|x| x == n).unwrap();
    for rec in rd.records() {
        let rec = rec.unwrap();
        let key = (
            rec[idx("METHOD")].to_string(),
            rec[idx("PARAMCD")].to_string(),
            rec[idx("AVISIT")].to_string(),
            rec[idx("GROUP")].to_string(),
        );
        res.insert(key, quantities(&h, &rec));
    }
    res
}

/// Rows `method,paramcd,avisit,group,quantity,value` written by an R oracle script.
pub fn expected(csv: &Path) -> Vec<(Key, String, f64)> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(csv)
        .unwrap();
    rd.records()
        .map(|r| {
            let r = r.unwrap();
            let s = |i: usize| {
                let v = r[i].to_string();
                if v == "NA" { String::new() } else { v }
            };
            (
                (s(0), s(1), s(2), s(3)),
                r[4].to_string(),
                r[5].trim().parse().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// Compare every R value with ours; `tol(method, quantity)` gives the relative tolerance.
/// Returns the number of values compared; panics listing every mismatch.
pub fn compare(ours: &Results, r: &Path, tol: impl Fn(&str, &str) -> f64) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    for (key, quantity, value) in expected(r) {
        let Some(mine) = ours.get(&key).and_then(|q| q.get(&quantity)) else {
            failures.push(format!(
                "{key:?} {quantity}: R {value}, missing in trialpipe"
            ));
            continue;
        };
        n += 1;
        let rel = tol(&key.0, &quantity);
        let se = ours[&key].get("se").copied();
        let ok = if key.0.starts_with("mmrm") && quantity == "estimate" {
            // nlme stops short of full convergence: estimates within `rel` of their SE.
            (mine - value).abs() <= rel * se.unwrap_or(0.0)
        } else {
            (mine - value).abs() <= rel * value.abs() || (mine - value).abs() < 1e-12
        };
        if !ok {
            failures.push(format!("{key:?} {quantity}: R {value}, trialpipe {mine}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}
