//! Compares `trialpipe::stats` with R on the shared FEV1 reference data.
//!
//! Runs `Rscript tests/r/basic_stats.R <fev_data.csv> <out.csv>` (base R only),
//! recomputes every (case, quantity) with the Rust functions and requires
//! agreement within `tolerance::CLOSED_FORM_REL`. The case definitions below
//! mirror the R script one for one. Without `Rscript` the test fails: it is
//! never skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use trialpipe::stats::tolerance::{CLOSED_FORM_REL, rel_close};
use trialpipe::stats::{
    Adjustment, Alternative, ContinuityCorrection, QuantileType, StatsError, TestResult,
    VarianceAssumption, WilcoxonMethod, descriptive, p_adjust, quantiles, t_test_one_sample,
    t_test_paired, t_test_two_sample, wilcoxon_paired, wilcoxon_rank_sum, wilcoxon_rank_sum_with,
    wilcoxon_signed_rank, wilcoxon_signed_rank_with,
};

type Key = (String, String);

/// One record of `fev_data.csv`; `NA` becomes `NaN`.
struct Record {
    avisit: String,
    armcd: String,
    fev1: f64,
    fev1_bl: f64,
}

fn fev_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/mmrm_fev/fev_data.csv")
}

fn parse_value(field: &str, what: &str) -> f64 {
    match field.trim() {
        "NA" | "" => f64::NAN,
        "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s
            .parse()
            .unwrap_or_else(|e| panic!("cannot parse {what} value {s:?}: {e}")),
    }
}

fn read_fev(path: &Path) -> Vec<Record> {
    let mut reader = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = reader.headers().expect("fev_data.csv header").clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("fev_data.csv has no column {name}"))
    };
    let (i_subj, i_visit, i_arm, i_fev, i_bl) = (
        col("USUBJID"),
        col("AVISIT"),
        col("ARMCD"),
        col("FEV1"),
        col("FEV1_BL"),
    );
    reader
        .records()
        .map(|r| {
            let r = r.expect("fev_data.csv record");
            assert!(!r[i_subj].is_empty(), "record without USUBJID");
            Record {
                avisit: r[i_visit].to_string(),
                armcd: r[i_arm].to_string(),
                fev1: parse_value(&r[i_fev], "FEV1"),
                fev1_bl: parse_value(&r[i_bl], "FEV1_BL"),
            }
        })
        .collect()
}

/// Runs the R oracle and returns its (case, quantity) -> value table.
fn run_r(fev: &Path) -> BTreeMap<Key, f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/r/basic_stats.R");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stats_vs_r");
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let out = dir.join("r_basic_stats.csv");
    let _ = std::fs::remove_file(&out);
    let result = Command::new("Rscript")
        .arg(&script)
        .arg(fev)
        .arg(&out)
        .output();
    let output = match result {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "Rscript not found on PATH: install r-base-core \
             (apt-get install -y --no-install-recommends r-base-core). \
             This test compares against R and is never skipped."
        ),
        Err(e) => panic!("cannot run Rscript: {e}"),
    };
    assert!(
        output.status.success(),
        "Rscript {} failed ({}):\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut reader = csv::Reader::from_path(&out)
        .unwrap_or_else(|e| panic!("cannot read R output {}: {e}", out.display()));
    let mut table = BTreeMap::new();
    for r in reader.records() {
        let r = r.expect("R output record");
        let key = (r[0].to_string(), r[1].to_string());
        let value = parse_value(&r[2], "R output");
        assert!(
            table.insert(key.clone(), value).is_none(),
            "duplicate R row {key:?}"
        );
    }
    table
}

/// The Rust side of the comparison, keyed like the R output.
#[derive(Default)]
struct Rust {
    values: BTreeMap<Key, f64>,
    errors: Vec<String>,
}

impl Rust {
    fn add(&mut self, case: &str, quantity: &str, value: f64) {
        let key = (case.to_string(), quantity.to_string());
        assert!(
            self.values.insert(key, value).is_none(),
            "duplicate Rust row {case}/{quantity}"
        );
    }

    fn add_test(&mut self, case: &str, result: Result<TestResult, StatsError>) {
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                self.errors
                    .push(format!("{case}: Rust returned error {e:?}"));
                return;
            }
        };
        self.add(case, "statistic", r.statistic);
        self.add(case, "p_value", r.p_value);
        if let Some(df) = r.df {
            self.add(case, "df", df);
        }
        if let Some(se) = r.se {
            self.add(case, "se", se);
        }
        self.add(case, "estimate", r.estimate);
        match r.ci {
            Some(ci) => {
                self.add(case, "ci_lower", ci.lower);
                self.add(case, "ci_upper", ci.upper);
                self.add(case, "ci_level", ci.level);
            }
            None => self.errors.push(format!("{case}: no confidence interval")),
        }
        if r.method.contains("Wilcoxon") {
            self.add(
                case,
                "exact",
                if r.method.contains("exact") { 1.0 } else { 0.0 },
            );
        }
    }
}

struct Data(Vec<Record>);

impl Data {
    fn rows<'a>(&'a self, visit: &'a str, arm: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.0
            .iter()
            .filter(move |r| r.avisit == visit && r.armcd == arm)
    }

    /// FEV1 with missing values as NaN, file order.
    fn fev_all(&self, visit: &str, arm: &str) -> Vec<f64> {
        self.rows(visit, arm).map(|r| r.fev1).collect()
    }

    /// Non-missing FEV1, file order.
    fn fev(&self, visit: &str, arm: &str) -> Vec<f64> {
        self.rows(visit, arm)
            .map(|r| r.fev1)
            .filter(|v| !v.is_nan())
            .collect()
    }

    /// Complete (FEV1, FEV1_BL) pairs, file order.
    fn pairs(&self, visit: &str, arm: &str) -> (Vec<f64>, Vec<f64>) {
        self.rows(visit, arm)
            .filter(|r| !r.fev1.is_nan() && !r.fev1_bl.is_nan())
            .map(|r| (r.fev1, r.fev1_bl))
            .unzip()
    }
}

const VISITS: [&str; 4] = ["VIS1", "VIS2", "VIS3", "VIS4"];
const ARMS: [&str; 2] = ["TRT", "PBO"];
const PROBS: [f64; 7] = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0];
const QTYPES: [QuantileType; 9] = [
    QuantileType::Type1,
    QuantileType::Type2,
    QuantileType::Type3,
    QuantileType::Type4,
    QuantileType::Type5,
    QuantileType::Type6,
    QuantileType::Type7,
    QuantileType::Type8,
    QuantileType::Type9,
];

/// The probabilities as R's `paste0()` prints them in quantity names.
fn prob_label(p: f64) -> String {
    format!("{p}")
}

fn has_duplicates(values: &[f64]) -> bool {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    s.windows(2).any(|w| w[0] == w[1])
}

fn head(v: &[f64], n: usize) -> Vec<f64> {
    v[..n.min(v.len())].to_vec()
}

/// R's `round()` (IEC 60559: halves to even).
fn round(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.round_ties_even()).collect()
}

fn compute_rust(data: &Data) -> Rust {
    use Alternative::{Greater, Less, TwoSided};
    use VarianceAssumption::{Pooled, Welch};
    use WilcoxonMethod::Auto;

    let mut out = Rust::default();
    let mut welch_p = Vec::new();
    for v in VISITS {
        let x = data.fev(v, "TRT");
        let y = data.fev(v, "PBO");
        let welch = t_test_two_sample(&x, &y, Welch, TwoSided, 0.95);
        welch_p.push(welch.as_ref().map(|r| r.p_value).unwrap_or(f64::NAN));
        out.add_test(&format!("welch_{v}"), welch);
        out.add_test(
            &format!("pooled_{v}"),
            t_test_two_sample(&x, &y, Pooled, TwoSided, 0.95),
        );
        out.add_test(
            &format!("ranksum_{v}"),
            wilcoxon_rank_sum(&x, &y, Auto, TwoSided, 0.95),
        );

        for arm in ARMS {
            let case = format!("desc_{v}_{arm}");
            let all = data.fev_all(v, arm);
            match descriptive(&all) {
                Ok(d) => {
                    out.add(&case, "n", d.n as f64);
                    out.add(&case, "n_missing", d.n_missing as f64);
                    out.add(&case, "mean", d.mean);
                    out.add(&case, "sd", d.sd.unwrap_or(f64::NAN));
                    out.add(&case, "se", d.se.unwrap_or(f64::NAN));
                    out.add(&case, "median", d.median);
                    out.add(&case, "q1", d.q1);
                    out.add(&case, "q3", d.q3);
                    out.add(&case, "min", d.min);
                    out.add(&case, "max", d.max);
                }
                Err(e) => out
                    .errors
                    .push(format!("{case}: Rust returned error {e:?}")),
            }
            let nonmissing = data.fev(v, arm);
            for (t, qtype) in QTYPES.iter().enumerate() {
                match quantiles(&nonmissing, &PROBS, *qtype) {
                    Ok(qs) => {
                        for (p, q) in PROBS.iter().zip(qs) {
                            out.add(
                                &format!("quantile_{v}_{arm}"),
                                &format!("type{}_p{}", t + 1, prob_label(*p)),
                                q,
                            );
                        }
                    }
                    Err(e) => out
                        .errors
                        .push(format!("quantile_{v}_{arm} type {}: {e:?}", t + 1)),
                }
            }
            let (post, base) = data.pairs(v, arm);
            out.add_test(
                &format!("paired_t_{v}_{arm}"),
                t_test_paired(&post, &base, TwoSided, 0.95),
            );
            out.add_test(
                &format!("signrank_{v}_{arm}"),
                wilcoxon_paired(&post, &base, Auto, TwoSided, 0.95),
            );
        }
    }

    let x = data.fev("VIS1", "TRT");
    let y = data.fev("VIS1", "PBO");
    for (alt, name) in [(Less, "less"), (Greater, "greater")] {
        out.add_test(
            &format!("welch_VIS1_{name}"),
            t_test_two_sample(&x, &y, Welch, alt, 0.9),
        );
        out.add_test(
            &format!("pooled_VIS1_{name}"),
            t_test_two_sample(&x, &y, Pooled, alt, 0.9),
        );
        out.add_test(
            &format!("ranksum_VIS1_{name}"),
            wilcoxon_rank_sum(&x, &y, Auto, alt, 0.9),
        );
        let (post, base) = data.pairs("VIS2", "TRT");
        out.add_test(
            &format!("paired_t_VIS2_TRT_{name}"),
            t_test_paired(&post, &base, alt, 0.9),
        );
        out.add_test(
            &format!("signrank_VIS2_TRT_{name}"),
            wilcoxon_paired(&post, &base, Auto, alt, 0.9),
        );
    }

    let (post, base) = data.pairs("VIS3", "PBO");
    let chg: Vec<f64> = post.iter().zip(&base).map(|(a, b)| a - b).collect();
    out.add_test(
        "one_sample_t_VIS3_PBO_mu2",
        t_test_one_sample(&chg, 2.0, TwoSided, 0.95),
    );
    out.add_test(
        "signrank_VIS3_PBO_mu2",
        wilcoxon_signed_rank(&chg, 2.0, Auto, TwoSided, 0.95),
    );

    let ex_x = head(&x, 12);
    let ex_y = head(&y, 10);
    let both: Vec<f64> = ex_x.iter().chain(&ex_y).copied().collect();
    assert!(
        !has_duplicates(&both),
        "exact rank-sum subset unexpectedly has ties"
    );
    out.add_test(
        "ranksum_exact",
        wilcoxon_rank_sum(&ex_x, &ex_y, Auto, TwoSided, 0.95),
    );
    out.add_test(
        "ranksum_exact_less",
        wilcoxon_rank_sum(&ex_x, &ex_y, Auto, Less, 0.9),
    );
    out.add_test(
        "ranksum_exact_greater",
        wilcoxon_rank_sum(&ex_x, &ex_y, Auto, Greater, 0.9),
    );
    out.add_test(
        "welch_small",
        t_test_two_sample(&ex_x, &ex_y, Welch, TwoSided, 0.95),
    );
    out.add_test(
        "pooled_small",
        t_test_two_sample(&ex_x, &ex_y, Pooled, TwoSided, 0.95),
    );
    out.add_test(
        "ranksum_tiny",
        wilcoxon_rank_sum(&head(&x, 3), &head(&y, 3), Auto, TwoSided, 0.95),
    );

    let (tx, ty) = (round(&ex_x), round(&ex_y));
    let both: Vec<f64> = tx.iter().chain(&ty).copied().collect();
    assert!(
        has_duplicates(&both),
        "rounded rank-sum subset should have ties"
    );
    out.add_test(
        "ranksum_ties",
        wilcoxon_rank_sum(&tx, &ty, Auto, TwoSided, 0.95),
    );
    out.add_test(
        "ranksum_ties_less",
        wilcoxon_rank_sum(&tx, &ty, Auto, Less, 0.95),
    );
    out.add_test(
        "ranksum_ties_greater",
        wilcoxon_rank_sum(&tx, &ty, Auto, Greater, 0.95),
    );
    for (case, alt) in [
        ("ranksum_ties_nocorrect", TwoSided),
        ("ranksum_ties_nocorrect_less", Less),
    ] {
        out.add_test(
            case,
            wilcoxon_rank_sum_with(&tx, &ty, Auto, ContinuityCorrection::None, alt, 0.95),
        );
    }

    let (post, base) = data.pairs("VIS1", "TRT");
    let d: Vec<f64> = post.iter().zip(&base).map(|(a, b)| a - b).collect();
    let ex_d = head(&d, 15);
    let abs: Vec<f64> = ex_d.iter().map(|v| v.abs()).collect();
    assert!(
        !has_duplicates(&abs) && !ex_d.contains(&0.0),
        "exact signed-rank subset has ties or zeros"
    );
    out.add_test(
        "signrank_exact",
        wilcoxon_signed_rank(&ex_d, 0.0, Auto, TwoSided, 0.95),
    );
    out.add_test(
        "signrank_exact_less",
        wilcoxon_signed_rank(&ex_d, 0.0, Auto, Less, 0.9),
    );
    out.add_test(
        "signrank_exact_greater",
        wilcoxon_signed_rank(&ex_d, 0.0, Auto, Greater, 0.9),
    );
    out.add_test(
        "paired_t_small",
        t_test_one_sample(&ex_d, 0.0, TwoSided, 0.95),
    );
    out.add_test(
        "signrank_tiny",
        wilcoxon_signed_rank(&head(&ex_d, 4), 0.0, Auto, TwoSided, 0.95),
    );
    let td: Vec<f64> = ex_d
        .iter()
        .map(|v| 2.0 * (v / 2.0).round_ties_even())
        .collect();
    out.add_test(
        "signrank_ties",
        wilcoxon_signed_rank(&td, 0.0, Auto, TwoSided, 0.95),
    );
    out.add_test(
        "signrank_ties_less",
        wilcoxon_signed_rank(&td, 0.0, Auto, Less, 0.95),
    );
    out.add_test(
        "signrank_ties_greater",
        wilcoxon_signed_rank(&td, 0.0, Auto, Greater, 0.95),
    );
    for (case, alt) in [
        ("signrank_ties_nocorrect", TwoSided),
        ("signrank_ties_nocorrect_greater", Greater),
    ] {
        out.add_test(
            case,
            wilcoxon_signed_rank_with(&td, 0.0, Auto, ContinuityCorrection::None, alt, 0.95),
        );
    }
    out.add_test(
        "signrank_ties_tiny",
        wilcoxon_signed_rank(&head(&td, 6), 0.0, Auto, TwoSided, 0.95),
    );

    for (method, name) in [
        (Adjustment::Holm, "holm"),
        (Adjustment::Hochberg, "hochberg"),
        (Adjustment::BenjaminiHochberg, "BH"),
        (Adjustment::Bonferroni, "bonferroni"),
    ] {
        match p_adjust(&welch_p, method) {
            Ok(adj) => {
                for (v, a) in VISITS.iter().zip(adj) {
                    out.add(&format!("padjust_{name}"), &format!("adj_{v}"), a);
                }
            }
            Err(e) => out
                .errors
                .push(format!("padjust_{name}: Rust returned error {e:?}")),
        }
    }
    out
}

#[test]
fn stats_match_r() {
    let fev = fev_path();
    assert!(
        fev.is_file(),
        "reference data not found at {}",
        fev.display()
    );
    let r = run_r(&fev);
    let data = Data(read_fev(&fev));
    let rust = compute_rust(&data);

    let mut problems = rust.errors.clone();
    let mut passed = 0usize;
    for ((case, quantity), &r_value) in &r {
        match rust.values.get(&(case.clone(), quantity.clone())) {
            None => problems.push(format!(
                "{case} / {quantity}: R = {r_value:e}, no Rust value"
            )),
            Some(&rust_value) => {
                if rel_close(r_value, rust_value, CLOSED_FORM_REL) {
                    passed += 1;
                } else {
                    let rel = (r_value - rust_value).abs()
                        / r_value.abs().max(rust_value.abs()).max(1e-300);
                    problems.push(format!(
                        "{case} / {quantity}: R = {r_value:.17e}, Rust = {rust_value:.17e} (rel. diff {rel:.2e})"
                    ));
                }
            }
        }
    }
    for (case, quantity) in rust.values.keys() {
        if !r.contains_key(&(case.clone(), quantity.clone())) {
            problems.push(format!(
                "{case} / {quantity}: Rust value without an R counterpart"
            ));
        }
    }
    println!(
        "{passed} of {} R comparisons within rel. {CLOSED_FORM_REL:e}",
        r.len()
    );
    assert!(
        r.len() >= 1000,
        "R produced only {} rows; the oracle script is incomplete",
        r.len()
    );
    assert!(
        problems.is_empty(),
        "{} mismatch(es) against R ({passed} of {} comparisons passed):\n{}",
        problems.len(),
        r.len(),
        problems.join("\n")
    );
}
