//! Compares the survival, contingency-table and ANCOVA routines of
//! `trialpipe::stats` with R (survival, emmeans, base stats) on real data.
//!
//! Runs `Rscript tests/r/survival_contingency.R <fev_data.csv> <out.csv>`,
//! which writes R's results and, next to them, the data it analysed
//! (`lung.csv`, `veteran.csv` from the survival package, `tables.csv` with
//! 2×2 tables from UCBAdmissions, esoph and infert). Every (case, quantity)
//! is recomputed here and must agree within `tolerance::CLOSED_FORM_REL`;
//! `NA` in R must be `None` here. Every mismatch is listed before the test
//! fails. Without `Rscript` or the R packages the test fails with an install
//! hint: it is never skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use trialpipe::stats::tolerance::{CLOSED_FORM_REL, rel_close};
use trialpipe::stats::{
    Alternative, AncovaModel, BeyondFollowUp, ContinuityCorrection, Covariate, CoxOptions, Factor,
    KaplanMeier, KmConfType, KmOptions, ProportionCi, StatsError, Table2x2, Ties, TimeFix,
    ZeroCells, ancova, binom_test, chi_square_2x2, cox_ph, fisher_exact, kaplan_meier,
    kaplan_meier_by_group, log_rank, mantel_haenszel, odds_ratio, proportion, risk_difference,
};

/// Fewer compared quantities than this means the R script or this test lost cases.
const MIN_COMPARED: usize = 12_000;

type Key = (String, String);

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fev_path() -> PathBuf {
    manifest().join("../shared/reference/mmrm_fev/fev_data.csv")
}

fn parse_value(field: &str, what: &str) -> f64 {
    match field.trim() {
        "NA" | "" | "NaN" => f64::NAN,
        "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s
            .parse()
            .unwrap_or_else(|e| panic!("cannot parse {what} value {s:?}: {e}")),
    }
}

const INSTALL_HINT: &str = "install R with the survival and emmeans packages \
    (apt-get install -y --no-install-recommends r-base-core r-cran-survival r-cran-emmeans). \
    This test compares against R and is never skipped.";

/// Runs the R oracle; returns its table and the directory holding the data it wrote.
fn run_r() -> (BTreeMap<Key, f64>, PathBuf) {
    let fev = fev_path();
    assert!(
        fev.is_file(),
        "reference data not found at {}",
        fev.display()
    );
    let script = manifest().join("tests/r/survival_contingency.R");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("survival_contingency_vs_r");
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let out = dir.join("r_survival_contingency.csv");
    for f in [
        "r_survival_contingency.csv",
        "lung.csv",
        "veteran.csv",
        "tables.csv",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let output = match Command::new("Rscript")
        .arg(&script)
        .arg(&fev)
        .arg(&out)
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("Rscript not found on PATH: {INSTALL_HINT}")
        }
        Err(e) => panic!("cannot run Rscript: {e}"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Rscript {} failed ({}); if a package is missing, {INSTALL_HINT}\n{stderr}",
        script.display(),
        output.status,
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
    (table, dir)
}

/// Reads a CSV written by the R script into rows of (column -> field).
fn read_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    parse_value(
        row.get(col).unwrap_or_else(|| panic!("no column {col}")),
        col,
    )
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

    /// `None` is R's `NA`.
    fn add_opt(&mut self, case: &str, quantity: &str, value: Option<f64>) {
        self.add(case, quantity, value.unwrap_or(f64::NAN));
    }

    fn fail(&mut self, case: &str, e: StatsError) {
        self.errors
            .push(format!("{case}: Rust returned error {e:?}"));
    }
}

// ------------------------------------------------------------- survival ----

struct Surv {
    time: Vec<f64>,
    event: Vec<bool>,
    /// Group code per subject.
    group: Vec<usize>,
    /// Stratum code per subject (`None` when missing).
    stratum: Vec<Option<usize>>,
}

impl Surv {
    /// Subjects with a known stratum.
    fn complete_strata(&self) -> Surv {
        let keep: Vec<usize> = (0..self.time.len())
            .filter(|&i| self.stratum[i].is_some())
            .collect();
        Surv {
            time: keep.iter().map(|&i| self.time[i]).collect(),
            event: keep.iter().map(|&i| self.event[i]).collect(),
            group: keep.iter().map(|&i| self.group[i]).collect(),
            stratum: keep.iter().map(|&i| self.stratum[i]).collect(),
        }
    }

    fn strata(&self) -> Vec<usize> {
        self.stratum
            .iter()
            .map(|s| s.expect("stratum present"))
            .collect()
    }
}

const CELLTYPES: [&str; 4] = ["squamous", "smallcell", "adeno", "large"];

fn read_lung(dir: &Path) -> Surv {
    let rows = read_rows(&dir.join("lung.csv"));
    assert_eq!(rows.len(), 228, "lung has 228 patients");
    Surv {
        time: rows.iter().map(|r| num(r, "time")).collect(),
        event: rows.iter().map(|r| num(r, "status") == 1.0).collect(),
        group: rows.iter().map(|r| num(r, "sex") as usize - 1).collect(),
        stratum: rows
            .iter()
            .map(|r| {
                let v = num(r, "ph_ecog");
                (!v.is_nan()).then_some(v as usize)
            })
            .collect(),
    }
}

/// veteran with `group` = trt (1 -> 0, 2 -> 1) and `stratum` = celltype code.
fn read_veteran(dir: &Path) -> Surv {
    let rows = read_rows(&dir.join("veteran.csv"));
    assert_eq!(rows.len(), 137, "veteran has 137 patients");
    Surv {
        time: rows.iter().map(|r| num(r, "time")).collect(),
        event: rows.iter().map(|r| num(r, "status") == 1.0).collect(),
        group: rows.iter().map(|r| num(r, "trt") as usize - 1).collect(),
        stratum: rows
            .iter()
            .map(|r| {
                let c = &r["celltype"];
                Some(
                    CELLTYPES
                        .iter()
                        .position(|t| t == c)
                        .unwrap_or_else(|| panic!("unknown celltype {c}")),
                )
            })
            .collect(),
    }
}

fn add_km(out: &mut Rust, case: &str, km: &KaplanMeier, landmarks: &[f64], risk_times: &[f64]) {
    for (i, r) in km.rows.iter().enumerate() {
        let p = format!("r{}_", i + 1);
        out.add(case, &format!("{p}time"), r.time);
        out.add(case, &format!("{p}n_risk"), r.n_risk as f64);
        out.add(case, &format!("{p}n_event"), r.n_event as f64);
        out.add(case, &format!("{p}n_censor"), r.n_censor as f64);
        out.add(case, &format!("{p}surv"), r.surv);
        out.add_opt(case, &format!("{p}std_err_log"), r.std_err_log);
        out.add(case, &format!("{p}cumhaz"), r.cumhaz);
        out.add(case, &format!("{p}std_chaz"), r.std_chaz);
        out.add_opt(case, &format!("{p}lower"), r.lower);
        out.add_opt(case, &format!("{p}upper"), r.upper);
    }
    for (i, r) in km.event_rows().iter().enumerate() {
        let p = format!("ev{}_", i + 1);
        out.add(case, &format!("{p}time"), r.time);
        out.add(case, &format!("{p}n_censor"), r.n_censor as f64);
        out.add_opt(case, &format!("{p}std_err"), r.std_err);
    }
    out.add(case, "n", km.n as f64);
    out.add(case, "n_events", km.n_events as f64);
    out.add_opt(case, "median", km.median.estimate);
    out.add_opt(case, "median_lower", km.median.lower);
    out.add_opt(case, "median_upper", km.median.upper);
    match km.at_times(landmarks, BeyondFollowUp::Error) {
        Ok(lms) => {
            for l in lms {
                let p = format!("at{}_", l.time);
                out.add(case, &format!("{p}n_risk"), l.n_risk as f64);
                out.add(case, &format!("{p}n_event"), l.n_event as f64);
                out.add(case, &format!("{p}n_censor"), l.n_censor as f64);
                out.add(case, &format!("{p}surv"), l.surv);
                out.add_opt(case, &format!("{p}std_err"), l.std_err);
                out.add_opt(case, &format!("{p}lower"), l.lower);
                out.add_opt(case, &format!("{p}upper"), l.upper);
            }
        }
        Err(e) => out.fail(case, e),
    }
    for &t in risk_times {
        out.add(case, &format!("risk{t}"), km.n_risk_at(t) as f64);
    }
}

fn km_groups(
    out: &mut Rust,
    prefix: &str,
    s: &Surv,
    options: &KmOptions,
    landmarks: &[f64],
    risk_times: &[f64],
) {
    match kaplan_meier_by_group(&s.time, &s.event, &s.group, options) {
        Ok(curves) => {
            for (g, km) in curves.iter().enumerate() {
                add_km(
                    out,
                    &format!("{prefix}_{}", g + 1),
                    km,
                    landmarks,
                    risk_times,
                );
            }
        }
        Err(e) => out.fail(prefix, e),
    }
}

fn add_logrank(out: &mut Rust, case: &str, s: &Surv, group: &[usize], strata: Option<&[usize]>) {
    match log_rank(&s.time, &s.event, group, strata, TimeFix::Tolerance) {
        Ok(lr) => {
            for (g, grp) in lr.groups.iter().enumerate() {
                out.add(case, &format!("n_{}", g + 1), grp.n as f64);
                out.add(case, &format!("observed_{}", g + 1), grp.observed);
                out.add(case, &format!("expected_{}", g + 1), grp.expected);
                for (h, v) in lr.variance[g].iter().enumerate() {
                    out.add(case, &format!("var_{}_{}", g + 1, h + 1), *v);
                }
            }
            out.add(case, "chisq", lr.test.statistic);
            out.add(case, "df", lr.test.df);
            out.add(case, "p_value", lr.test.p_value);
        }
        Err(e) => out.fail(case, e),
    }
}

fn add_cox(
    out: &mut Rust,
    case: &str,
    s: &Surv,
    group: &[usize],
    strata: Option<&[usize]>,
    ties: Ties,
) {
    let options = CoxOptions {
        ties,
        ..CoxOptions::default()
    };
    let fit = match cox_ph(&s.time, &s.event, group, strata, &options) {
        Ok(f) => f,
        Err(e) => return out.fail(case, e),
    };
    if !fit.converged {
        out.errors.push(format!("{case}: Cox fit did not converge"));
    }
    for (j, t) in fit.terms.iter().enumerate() {
        let k = j + 1;
        out.add(case, &format!("coef_{k}"), t.coef);
        out.add(case, &format!("hr_{k}"), t.hazard_ratio);
        out.add(case, &format!("se_{k}"), t.se);
        out.add(case, &format!("z_{k}"), t.z);
        out.add(case, &format!("p_{k}"), t.p_value);
        out.add(case, &format!("lower_{k}"), t.ci.lower);
        out.add(case, &format!("upper_{k}"), t.ci.upper);
        for (h, v) in fit.variance[j].iter().enumerate() {
            out.add(case, &format!("var_{k}_{}", h + 1), *v);
        }
    }
    out.add(case, "n", fit.n as f64);
    out.add(case, "n_events", fit.n_events as f64);
    out.add(case, "loglik_null", fit.loglik_null);
    out.add(case, "loglik", fit.loglik);
    out.add(case, "lr", fit.likelihood_ratio.statistic);
    out.add(case, "lr_df", fit.likelihood_ratio.df);
    out.add(case, "lr_p", fit.likelihood_ratio.p_value);
    out.add(case, "wald", fit.wald.statistic);
    out.add(case, "wald_p", fit.wald.p_value);
    out.add(case, "score", fit.score.statistic);
    out.add(case, "score_p", fit.score.p_value);
    out.add(case, "iter", fit.iterations as f64);
}

fn compute_survival(out: &mut Rust, dir: &Path) {
    let lung = read_lung(dir);
    let vet = read_veteran(dir);
    let lung_landmarks = [90.0, 180.0, 365.0, 730.0];
    let lung_risk: Vec<f64> = (0..=10).map(|i| f64::from(i) * 100.0).collect();
    let default = KmOptions::default();
    km_groups(
        out,
        "km_lung_sex",
        &lung,
        &default,
        &lung_landmarks,
        &lung_risk,
    );
    km_groups(
        out,
        "km_lung_sex_loglog",
        &lung,
        &KmOptions {
            conf_type: KmConfType::LogLog,
            ..default
        },
        &lung_landmarks,
        &lung_risk,
    );
    km_groups(
        out,
        "km_lung_sex_plain90",
        &lung,
        &KmOptions {
            conf_type: KmConfType::Plain,
            conf_level: 0.9,
            ..default
        },
        &lung_landmarks,
        &lung_risk,
    );
    match kaplan_meier(&lung.time, &lung.event, &default) {
        Ok(km) => add_km(out, "km_lung_all", &km, &lung_landmarks, &lung_risk),
        Err(e) => out.fail("km_lung_all", e),
    }
    let vet_risk: Vec<f64> = (0..=9).map(|i| f64::from(i) * 100.0).collect();
    km_groups(
        out,
        "km_veteran_trt",
        &vet,
        &default,
        &[30.0, 90.0, 180.0, 365.0],
        &vet_risk,
    );

    let lung_s = lung.complete_strata();
    let ecog = lung_s.strata();
    let celltype = vet.strata();
    add_logrank(out, "logrank_lung_sex", &lung, &lung.group, None);
    add_logrank(
        out,
        "logrank_lung_sex_strata_ecog",
        &lung_s,
        &lung_s.group,
        Some(&ecog),
    );
    add_logrank(out, "logrank_veteran_trt", &vet, &vet.group, None);
    add_logrank(
        out,
        "logrank_veteran_trt_strata_celltype",
        &vet,
        &vet.group,
        Some(&celltype),
    );
    add_logrank(out, "logrank_veteran_celltype", &vet, &celltype, None);

    for (ties, name) in [(Ties::Efron, "efron"), (Ties::Breslow, "breslow")] {
        add_cox(
            out,
            &format!("cox_lung_sex_{name}"),
            &lung,
            &lung.group,
            None,
            ties,
        );
        add_cox(
            out,
            &format!("cox_lung_sex_strata_ecog_{name}"),
            &lung_s,
            &lung_s.group,
            Some(&ecog),
            ties,
        );
        add_cox(
            out,
            &format!("cox_veteran_trt_{name}"),
            &vet,
            &vet.group,
            None,
            ties,
        );
        add_cox(
            out,
            &format!("cox_veteran_trt_strata_celltype_{name}"),
            &vet,
            &vet.group,
            Some(&celltype),
            ties,
        );
        add_cox(
            out,
            &format!("cox_veteran_celltype_{name}"),
            &vet,
            &celltype,
            None,
            ties,
        );
    }
}

// ---------------------------------------------------------- contingency ----

struct Tables(Vec<(String, String, Table2x2)>);

impl Tables {
    fn read(dir: &Path) -> Self {
        let rows = read_rows(&dir.join("tables.csv"));
        Tables(
            rows.iter()
                .map(|r| {
                    let c = |k: &str| num(r, k) as u64;
                    (
                        r["set"].clone(),
                        r["stratum"].clone(),
                        Table2x2::new(c("a"), c("b"), c("c"), c("d")),
                    )
                })
                .collect(),
        )
    }

    fn set(&self, set: &str) -> Vec<(String, Table2x2)> {
        self.0
            .iter()
            .filter(|(s, _, _)| s == set)
            .map(|(_, k, t)| (k.clone(), *t))
            .collect()
    }

    fn pooled(&self, set: &str) -> Table2x2 {
        self.set(set)
            .iter()
            .fold(Table2x2::new(0, 0, 0, 0), |acc, (_, t)| {
                Table2x2::new(acc.a + t.a, acc.b + t.b, acc.c + t.c, acc.d + t.d)
            })
    }
}

fn add_props(out: &mut Rust, case: &str, x: u64, n: u64) {
    match (
        proportion(x, n, ProportionCi::Wilson, 0.95),
        proportion(x, n, ProportionCi::ClopperPearson, 0.95),
    ) {
        (Ok(w), Ok(cp)) => {
            out.add(case, "estimate", w.estimate);
            out.add(case, "wilson_lower", w.ci.lower);
            out.add(case, "wilson_upper", w.ci.upper);
            out.add(case, "cp_lower", cp.ci.lower);
            out.add(case, "cp_upper", cp.ci.upper);
        }
        (Err(e), _) | (_, Err(e)) => out.fail(case, e),
    }
}

fn add_2x2(out: &mut Rust, case: &str, t: &Table2x2) {
    add_props(out, &format!("{case}_group1"), t.a, t.a + t.b);
    add_props(out, &format!("{case}_group2"), t.c, t.c + t.d);
    match risk_difference(t.a, t.a + t.b, t.c, t.c + t.d, 0.95) {
        Ok(rd) => {
            out.add(case, "rd_estimate", rd.estimate);
            out.add(case, "rd_lower", rd.ci.lower);
            out.add(case, "rd_upper", rd.ci.upper);
        }
        Err(e) => out.fail(case, e),
    }
    let has_zero = [t.a, t.b, t.c, t.d].contains(&0);
    if has_zero {
        match odds_ratio(t, 0.95, ZeroCells::Error) {
            Err(StatsError::Undefined { .. }) => {}
            other => out.errors.push(format!(
                "{case}: zero cell should be Undefined, got {other:?}"
            )),
        }
        match odds_ratio(t, 0.95, ZeroCells::AddHalf) {
            Ok(o) => {
                out.add(case, "or_haldane", o.estimate);
                out.add(case, "or_haldane_lower", o.ci.lower);
                out.add(case, "or_haldane_upper", o.ci.upper);
            }
            Err(e) => out.fail(case, e),
        }
    } else {
        match odds_ratio(t, 0.95, ZeroCells::Error) {
            Ok(o) => {
                out.add(case, "or", o.estimate);
                out.add(case, "log_or", o.log_or);
                out.add(case, "or_se_log", o.se_log);
                out.add(case, "or_z", o.z);
                out.add(case, "or_p", o.p_value);
                out.add(case, "or_lower", o.ci.lower);
                out.add(case, "or_upper", o.ci.upper);
            }
            Err(e) => out.fail(case, e),
        }
    }
    match fisher_exact(t, Alternative::TwoSided, 0.95) {
        Ok(f) => {
            out.add(case, "fisher_p", f.p_value);
            out.add(case, "fisher_or", f.estimate);
            out.add(case, "fisher_lower", f.ci.lower);
            out.add(case, "fisher_upper", f.ci.upper);
        }
        Err(e) => out.fail(case, e),
    }
    for (alt, name) in [
        (Alternative::Less, "less"),
        (Alternative::Greater, "greater"),
    ] {
        match fisher_exact(t, alt, 0.9) {
            Ok(f) => {
                out.add(case, &format!("fisher_{name}_p"), f.p_value);
                out.add(case, &format!("fisher_{name}_lower"), f.ci.lower);
                out.add(case, &format!("fisher_{name}_upper"), f.ci.upper);
            }
            Err(e) => out.fail(case, e),
        }
    }
    let margins_ok = t.a + t.b > 0 && t.c + t.d > 0 && t.a + t.c > 0 && t.b + t.d > 0;
    if margins_ok {
        for (corr, name) in [
            (ContinuityCorrection::None, "chisq"),
            (ContinuityCorrection::Yates, "chisq_yates"),
        ] {
            match chi_square_2x2(t, corr) {
                Ok(c) => {
                    out.add(case, name, c.statistic);
                    out.add(case, &format!("{name}_p"), c.p_value);
                }
                Err(e) => out.fail(case, e),
            }
        }
    }
}

fn add_cmh(
    out: &mut Rust,
    case: &str,
    tables: &[Table2x2],
    correction: ContinuityCorrection,
    alternative: Alternative,
    conf_level: f64,
) {
    match mantel_haenszel(tables, correction, alternative, conf_level) {
        Ok(m) => {
            out.add(case, "statistic", m.statistic);
            out.add(case, "p_value", m.p_value);
            out.add(case, "estimate", m.common_odds_ratio);
            out.add(case, "lower", m.ci.lower);
            out.add(case, "upper", m.ci.upper);
        }
        Err(e) => out.fail(case, e),
    }
}

fn add_binom(
    out: &mut Rust,
    case: &str,
    x: u64,
    n: u64,
    p: f64,
    alternative: Alternative,
    conf_level: f64,
) {
    match binom_test(x, n, p, alternative, conf_level) {
        Ok(r) => {
            out.add(case, "estimate", r.estimate);
            out.add(case, "p_value", r.p_value);
            let ci = r.ci.expect("binomial interval");
            out.add(case, "lower", ci.lower);
            out.add(case, "upper", ci.upper);
        }
        Err(e) => out.fail(case, e),
    }
}

fn compute_contingency(out: &mut Rust, dir: &Path) {
    use Alternative::{Greater, Less, TwoSided};
    use ContinuityCorrection::{None as NoCorrection, Yates};
    let tables = Tables::read(dir);
    for set in ["ucb", "esoph", "infert"] {
        for (stratum, t) in tables.set(set) {
            add_2x2(out, &format!("tab_{set}_{stratum}"), &t);
        }
        add_2x2(out, &format!("tab_{set}_pooled"), &tables.pooled(set));
    }
    let strata = |set: &str, drop: &[&str]| -> Vec<Table2x2> {
        tables
            .set(set)
            .into_iter()
            .filter(|(k, _)| !drop.contains(&k.as_str()))
            .map(|(_, t)| t)
            .collect()
    };
    let ucb = strata("ucb", &[]);
    add_cmh(out, "cmh_ucb_datasets", &ucb, Yates, TwoSided, 0.95);
    add_cmh(out, "cmh_ucb", &ucb, Yates, TwoSided, 0.95);
    add_cmh(
        out,
        "cmh_ucb_uncorrected",
        &ucb,
        NoCorrection,
        TwoSided,
        0.95,
    );
    add_cmh(
        out,
        "cmh_ucb_without_A",
        &strata("ucb", &["A"]),
        Yates,
        TwoSided,
        0.95,
    );
    add_cmh(out, "cmh_ucb_less90", &ucb, Yates, Less, 0.9);
    add_cmh(out, "cmh_ucb_greater90", &ucb, Yates, Greater, 0.9);
    add_cmh(
        out,
        "cmh_esoph",
        &strata("esoph", &[]),
        Yates,
        TwoSided,
        0.95,
    );
    add_cmh(
        out,
        "cmh_infert",
        &strata("infert", &[]),
        Yates,
        TwoSided,
        0.95,
    );

    let u = tables.pooled("ucb");
    let (xf, nf) = (u.c, u.c + u.d);
    add_binom(out, "binom_ucb_female_35", xf, nf, 0.35, TwoSided, 0.95);
    add_binom(out, "binom_ucb_female_35_less", xf, nf, 0.35, Less, 0.9);
    add_binom(
        out,
        "binom_ucb_female_35_greater",
        xf,
        nf,
        0.35,
        Greater,
        0.9,
    );
    let inf = tables.pooled("infert");
    add_binom(
        out,
        "binom_infert_cases_third",
        inf.a + inf.c,
        inf.a + inf.b + inf.c + inf.d,
        1.0 / 3.0,
        TwoSided,
        0.95,
    );
    let small = tables
        .set("infert")
        .into_iter()
        .find(|(k, _)| k == "0-5yrs")
        .expect("infert 0-5yrs")
        .1;
    add_binom(
        out,
        "binom_infert_0_5yrs_third",
        small.a + small.c,
        small.a + small.b + small.c + small.d,
        1.0 / 3.0,
        TwoSided,
        0.95,
    );
    let a = tables
        .set("ucb")
        .into_iter()
        .find(|(k, _)| k == "A")
        .expect("ucb A")
        .1;
    add_binom(
        out,
        "binom_ucb_A_female_80",
        a.c,
        a.c + a.d,
        0.8,
        TwoSided,
        0.95,
    );
}

// --------------------------------------------------------------- ANCOVA ----

struct FevVis4 {
    chg: Vec<f64>,
    base: Vec<f64>,
    arm: Vec<usize>,
    sex: Vec<usize>,
    race: Vec<usize>,
}

const ARMS: [&str; 2] = ["PBO", "TRT"];
const SEXES: [&str; 2] = ["Male", "Female"];
const RACES: [&str; 3] = ["Asian", "Black or African American", "White"];

fn code(levels: &[&str], v: &str) -> usize {
    levels
        .iter()
        .position(|l| *l == v)
        .unwrap_or_else(|| panic!("unknown level {v}"))
}

fn read_fev_vis4() -> FevVis4 {
    let rows = read_rows(&fev_path());
    let mut d = FevVis4 {
        chg: vec![],
        base: vec![],
        arm: vec![],
        sex: vec![],
        race: vec![],
    };
    for r in rows.iter().filter(|r| r["AVISIT"] == "VIS4") {
        let (fev1, bl) = (num(r, "FEV1"), num(r, "FEV1_BL"));
        if fev1.is_nan() || bl.is_nan() {
            continue;
        }
        d.chg.push(fev1 - bl);
        d.base.push(bl);
        d.arm.push(code(&ARMS, &r["ARMCD"]));
        d.sex.push(code(&SEXES, &r["SEX"]));
        d.race.push(code(&RACES, &r["RACE"]));
    }
    d
}

fn add_ancova(out: &mut Rust, case: &str, d: &FevVis4, n_factors: usize, reference: usize) {
    let covariates = [Covariate {
        name: "FEV1_BL",
        values: &d.base,
    }];
    let all = [
        Factor {
            name: "ARMCD",
            levels: &ARMS,
            codes: &d.arm,
        },
        Factor {
            name: "SEX",
            levels: &SEXES,
            codes: &d.sex,
        },
        Factor {
            name: "RACE",
            levels: &RACES,
            codes: &d.race,
        },
    ];
    let model = AncovaModel {
        response: &d.chg,
        covariates: &covariates,
        factors: &all[..n_factors],
        arm: 0,
        reference,
        conf_level: 0.95,
    };
    let fit = match ancova(&model) {
        Ok(f) => f,
        Err(e) => return out.fail(case, e),
    };
    for c in &fit.coefficients {
        let p = format!("coef[{}]_", c.name);
        out.add(case, &format!("{p}estimate"), c.estimate);
        out.add(case, &format!("{p}se"), c.se);
        out.add(case, &format!("{p}t"), c.t);
        out.add(case, &format!("{p}p"), c.p_value);
    }
    out.add(case, "n", fit.n as f64);
    out.add(case, "df_residual", fit.df_residual);
    out.add(case, "sigma", fit.sigma);
    for m in &fit.lsmeans {
        let p = format!("lsmean[{}]_", m.label);
        out.add(case, &format!("{p}estimate"), m.estimate);
        out.add(case, &format!("{p}se"), m.se);
        out.add(case, &format!("{p}df"), m.df);
        out.add(case, &format!("{p}lower"), m.ci.lower);
        out.add(case, &format!("{p}upper"), m.ci.upper);
    }
    for m in &fit.differences {
        let p = format!("diff[{}]_", m.label.replace(' ', ""));
        out.add(case, &format!("{p}estimate"), m.estimate);
        out.add(case, &format!("{p}se"), m.se);
        out.add(case, &format!("{p}df"), m.df);
        out.add(case, &format!("{p}t"), m.t);
        out.add(case, &format!("{p}p"), m.p_value);
        out.add(case, &format!("{p}lower"), m.ci.lower);
        out.add(case, &format!("{p}upper"), m.ci.upper);
    }
}

fn compute_ancova(out: &mut Rust) {
    let d = read_fev_vis4();
    add_ancova(out, "ancova_vis4_base_arm", &d, 1, 0);
    add_ancova(out, "ancova_vis4_base_arm_sex", &d, 2, 0);
    add_ancova(out, "ancova_vis4_base_arm_sex_race", &d, 3, 0);
    add_ancova(out, "ancova_vis4_base_arm_sex_race_ref_trt", &d, 3, 1);
}

#[test]
fn survival_contingency_ancova_match_r() {
    let (r, dir) = run_r();
    let mut rust = Rust::default();
    compute_survival(&mut rust, &dir);
    compute_contingency(&mut rust, &dir);
    compute_ancova(&mut rust);

    let mut problems = rust.errors.clone();
    let (mut passed, mut na_matched) = (0usize, 0usize);
    for ((case, quantity), &r_value) in &r {
        match rust.values.get(&(case.clone(), quantity.clone())) {
            None => problems.push(format!(
                "{case} / {quantity}: R = {r_value:e}, no Rust value"
            )),
            Some(&rust_value) => {
                if r_value.is_nan() && rust_value.is_nan() {
                    na_matched += 1;
                    passed += 1;
                } else if rel_close(r_value, rust_value, CLOSED_FORM_REL) {
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
            problems.push(format!("{case} / {quantity}: Rust value without R value"));
        }
    }
    eprintln!(
        "survival/contingency/ANCOVA vs R: {passed} quantities agree ({na_matched} of them NA in both), {} problems",
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{} mismatches against R:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        passed >= MIN_COMPARED,
        "only {passed} quantities compared, expected at least {MIN_COMPARED}"
    );
}
