//! Per-analysis options from the pipeline file reach the statistics: the MMRM's covariance chain,
//! Kenward-Roger df, BASE × AVISIT term and LOCF sensitivity fit; the stratified ANCOVA, the
//! Wilcoxon method and continuity correction, the t-test variance, the CMH continuity correction
//! and the Cox ties, each compared with R (`tests/r/analysis_options.R`); unknown option keys and
//! a stratified ANCOVA without strata are refused by `check`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use trialpipe::stats::tolerance::{CLOSED_FORM_REL, rel_close};

mod common;

/// The flagship pipeline with absolute data paths and `edits` (old, new) applied, written to
/// `dir/pipelines/name.toml`.
fn pipeline_with(dir: &Path, name: &str, edits: &[(&str, &str)]) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    let abs = std::fs::canonicalize("sample_data/msc_cirrhosis").unwrap();
    let mut text = std::fs::read_to_string("pipelines/msc_cirrhosis.toml")
        .unwrap()
        .replace("../sample_data/msc_cirrhosis", &abs.to_string_lossy());
    for (old, new) in edits {
        assert!(text.contains(old), "{old}");
        text = text.replacen(old, new, 1);
    }
    let path = dir.join(format!("pipelines/{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn method_options_match_r() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze_method_options");
    let _ = std::fs::remove_dir_all(&dir);
    let pipeline = pipeline_with(
        &dir,
        "opts",
        &[
            (
                "params = [\"ALT\", \"BILI\", \"PT\", \"ALB\", \"PREALB\", \"MELD\", \"ALBI\"]\n",
                "params = [\"ALT\", \"BILI\", \"PT\", \"ALB\", \"PREALB\", \"MELD\", \"ALBI\"]\n\
                 [analyses.ancova]\nstratified = true\n",
            ),
            (
                "method = \"wilcoxon\"\nvariable = \"CHG\"\nparams = [\"ALT\", \"BILI\", \"PT\", \"ALB\", \"PREALB\"]\n",
                "method = \"wilcoxon\"\nvariable = \"CHG\"\nparams = [\"ALT\", \"BILI\", \"PT\", \"ALB\", \"PREALB\"]\n\
                 [analyses.wilcoxon]\nmethod = \"normal\"\ncorrection = \"none\"\n",
            ),
            (
                "adjust = \"holm\"      # Holm over the visits and parameters of this analysis\n",
                "adjust = \"holm\"\n[analyses.t_test]\nvariance = \"pooled\"\n",
            ),
            (
                "params = [\"ALTNORM\", \"ALBUP5\", \"BILI30\"]\n",
                "params = [\"ALTNORM\", \"ALBUP5\", \"BILI30\"]\n[analyses.responders]\ncmh_correction = \"yates\"\n",
            ),
            (
                "id = \"survival\"\nmethod = \"survival\"\n",
                "id = \"survival\"\nmethod = \"survival\"\n[analyses.survival]\nties = \"breslow\"\n",
            ),
        ],
    );
    let out = dir.join("out");
    common::run_expecting_warnings(&pipeline, &out);
    common::export_for_r(&out, &dir);
    let expected = dir.join("r.csv");
    let r = Command::new("Rscript")
        .arg("tests/r/analysis_options.R")
        .args(["adlb.csv", "adtte.csv", "adrs.csv", "adsl.csv"].map(|f| dir.join(f)))
        .arg(&expected)
        .output()
        .expect("Rscript (r-base-core, r-cran-emmeans, r-cran-survival)");
    assert!(
        r.status.success(),
        "R failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );

    // Our rows keyed by (method, paramcd, visit, or visit|arm for LS-means).
    let mut ours: BTreeMap<(String, String, String), BTreeMap<String, f64>> = BTreeMap::new();
    let mut notes: Vec<(String, String)> = Vec::new();
    let mut rd = csv::Reader::from_path(out.join("results/comparisons.csv")).unwrap();
    let h = rd.headers().unwrap().clone();
    let idx = |n: &str| h.iter().position(|x| x == n).unwrap();
    for rec in rd.records() {
        let rec = rec.unwrap();
        let method = rec[idx("METHOD")].to_string();
        let mut visit = rec[idx("AVISIT")].to_string();
        if method == "ancova_lsmean" {
            let arm = if rec[idx("GROUP")].starts_with("UC-MSC") {
                "MSC"
            } else {
                "SALINE"
            };
            visit = format!("{visit}|{arm}");
        }
        let q = common::quantities(&h, &rec);
        notes.push((method.clone(), rec[idx("NOTE")].to_string()));
        ours.insert((method, rec[idx("PARAMCD")].to_string(), visit), q);
    }
    // t_test variance = "pooled": no Welch rows, and Holm adjusts the pooled p-values.
    assert!(!ours.keys().any(|k| k.0 == "t_welch"));
    let padj = csv::Reader::from_path(out.join("results/comparisons.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[idx("METHOD")] == "t_pooled" && !r[idx("PADJ")].is_empty())
        .count();
    assert_eq!(padj, 15, "Holm over 5 parameters x 3 visits");
    // The notes name the options.
    let has = |m: &str, text: &str| notes.iter().any(|(x, n)| x == m && n.contains(text));
    assert!(has(
        "ancova_difference",
        "CHG ~ BASE + ARM + site_id (3 strata)"
    ));
    assert!(has("cmh", "continuity correction 0.5"));
    assert!(has("cox_hr", "Breslow ties"));

    let mut per_method: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for rec in csv::Reader::from_path(&expected).unwrap().records() {
        let rec = rec.unwrap();
        let (method, param, visit, quantity) = (&rec[0], &rec[1], &rec[2], &rec[3]);
        let r_value: f64 = rec[4].trim().parse().unwrap();
        let key = (method.to_string(), param.to_string(), visit.to_string());
        match ours.get(&key).and_then(|q| q.get(quantity)) {
            Some(mine) if rel_close(*mine, r_value, CLOSED_FORM_REL) => {
                *per_method.entry(method.to_string()).or_default() += 1;
            }
            mine => failures.push(format!(
                "{key:?} {quantity}: R {r_value}, trialpipe {mine:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for (m, at_least) in [
        ("ancova_lsmean", 7 * 3 * 2 * 3),
        ("ancova_difference", 7 * 3 * 6),
        ("wilcoxon_rank_sum", 5 * 3 * 5),
        ("t_pooled", 5 * 3 * 2),
        ("cmh", 2 * 9),
        ("cox_hr", 2 * 5),
        ("cox_hr_stratified", 2 * 3),
    ] {
        assert!(
            per_method.get(m).copied().unwrap_or(0) >= at_least,
            "{m}: {per_method:?}"
        );
    }
}

#[test]
fn option_keys_are_checked() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze_option_keys");
    let _ = std::fs::remove_dir_all(&dir);
    let check = |name: &str, edits: &[(&str, &str)]| {
        let p = pipeline_with(&dir, name, edits);
        let o = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
            .arg("check")
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(4), "{name}");
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = check(
        "unknown_key",
        &[(
            "id = \"survival\"\nmethod = \"survival\"\n",
            "id = \"survival\"\nmethod = \"survival\"\n[analyses.survival]\nties = \"breslow\"\nexact = true\n",
        )],
    );
    assert!(
        e.contains("analyses[6].survival.exact: unknown field `exact`"),
        "{e}"
    );
    let e = check(
        "bad_value",
        &[(
            "params = [\"ALTNORM\", \"ALBUP5\", \"BILI30\"]\n",
            "params = [\"ALTNORM\", \"ALBUP5\", \"BILI30\"]\n[analyses.responders]\ncmh_correction = \"true\"\n",
        )],
    );
    assert!(e.contains("analyses[5].responders.cmh_correction"), "{e}");
    let e = check(
        "no_strata",
        &[
            ("strata = [\"site_id\"]\n", ""),
            (
                "params = [\"ALT\", \"BILI\", \"PT\", \"ALB\", \"PREALB\", \"MELD\", \"ALBI\"]\n",
                "params = [\"ALT\", \"BILI\", \"PT\", \"ALB\", \"PREALB\", \"MELD\", \"ALBI\"]\n\
                 [analyses.ancova]\nstratified = true\n",
            ),
        ],
    );
    assert!(
        e.contains("analyses[2].ancova.stratified: needs inputs.subjects.strata"),
        "{e}"
    );
}

#[test]
fn mmrm_options_are_applied() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze_options");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    let base = std::fs::read_to_string("pipelines/msc_cirrhosis.toml").unwrap();
    let abs = std::fs::canonicalize("sample_data/msc_cirrhosis").unwrap();
    let text = base
        .replace("../sample_data/msc_cirrhosis", &abs.to_string_lossy())
        .replace(
            "[derive]\nscores",
            "[derive]\nmissing_visits = \"locf\"\nscores",
        )
        .replace(
            "covariance = [\"un\", \"toeph\", \"arh1\", \"csh\", \"cs\"]   # the first that converges is used\nestimation = \"reml\"\ndf = \"satterthwaite\"",
            "covariance = [\"cs\"]\nestimation = \"reml\"\ndf = \"kenward_roger\"\nbase_by_visit = true\nlocf_sensitivity = true",
        );
    assert!(text.contains("locf_sensitivity = true") && text.contains("missing_visits = \"locf\""));
    let pipeline = dir.join("pipelines/opts.toml");
    std::fs::write(&pipeline, text).unwrap();
    let out = dir.join("out");
    common::run_expecting_warnings(&pipeline, &out);
    let csv = std::fs::read_to_string(out.join("results/comparisons.csv")).unwrap();
    let mmrm: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains(",mmrm_difference,"))
        .collect();
    let locf: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains(",mmrm_locf_difference,"))
        .collect();
    assert_eq!(mmrm.len(), 18, "6 parameters × 3 visits");
    assert_eq!(locf.len(), 18);
    for l in mmrm.iter().chain(&locf) {
        assert!(
            l.contains("BASE:AVISIT")
                && l.contains("CompoundSymmetry covariance, Reml, KenwardRoger df"),
            "{l}"
        );
    }
    assert!(locf.iter().all(|l| l.contains("(with LOCF rows)")));
    // LOCF rows exist in ADLB and carry DTYPE.
    let adlb = trialpipe::store::read_parquet_text(&out.join("adam/adlb.parquet")).unwrap();
    let dtype = adlb.iter().find(|c| c.name == "DTYPE").unwrap();
    assert!(dtype.values.iter().any(|v| v.as_deref() == Some("LOCF")));
}
