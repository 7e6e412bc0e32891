//! The analyze stage on the flagship sample data against R, live: t tests, Wilcoxon with
//! Hodges-Lehmann, ANCOVA with emmeans LS-means, Holm adjustment, Kaplan-Meier medians, log-rank
//! and Cox, computed by `tests/r/flagship_analyses.R` on the datasets trialpipe derived. This
//! checks that analyze selects the right records and maps them onto the statistics (the
//! statistics themselves are checked on reference data in stats_vs_r and
//! survival_contingency_vs_r). Needs Rscript with emmeans and survival.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use trialpipe::stats::tolerance::{CLOSED_FORM_REL, rel_close};

mod common;

#[test]
fn flagship_analyses_match_r() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze_vs_r");
    let _ = std::fs::remove_dir_all(&tmp);
    let out = tmp.join("out");
    common::run_expecting_warnings(Path::new("pipelines/msc_cirrhosis.toml"), &out);
    common::export_for_r(&out, &tmp);
    let expected = tmp.join("r.csv");
    let r = Command::new("Rscript")
        .arg("tests/r/flagship_analyses.R")
        .arg(tmp.join("adlb.csv"))
        .arg(tmp.join("adtte.csv"))
        .arg(&expected)
        .arg(tmp.join("adrs.csv"))
        .arg(tmp.join("adsl.csv"))
        .output()
        .unwrap_or_else(|e| {
            panic!("Rscript not found ({e}): apt-get install r-base-core r-cran-emmeans r-cran-survival")
        });
    assert!(
        r.status.success(),
        "R failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );

    // Our results, keyed by (method, paramcd, visit-or-arm).
    let mut ours: BTreeMap<(String, String, String), BTreeMap<String, f64>> = BTreeMap::new();
    let mut rd = csv::Reader::from_path(out.join("results/comparisons.csv")).unwrap();
    let h = rd.headers().unwrap().clone();
    let idx = |n: &str| h.iter().position(|x| x == n).unwrap();
    for rec in rd.records() {
        let rec = rec.unwrap();
        let method = rec[idx("METHOD")].to_string();
        let param = rec[idx("PARAMCD")].to_string();
        let group = rec[idx("GROUP")].to_string();
        let visit = match method.as_str() {
            "km_median" => if group.starts_with("UC-MSC") {
                "MSC"
            } else {
                "SALINE"
            }
            .to_string(),
            "ancova_lsmean" | "proportion_wilson" | "proportion_clopper_pearson" => format!(
                "{}|{}",
                &rec[idx("AVISIT")],
                if group.starts_with("UC-MSC") {
                    "MSC"
                } else {
                    "SALINE"
                }
            ),
            _ => rec[idx("AVISIT")].to_string(),
        };
        let q = common::quantities(&h, &rec);
        ours.insert((method, param, visit), q);
    }
    let mut rd = csv::Reader::from_path(&expected).unwrap();
    // -2 log-likelihood of each MMRM fit, from the NOTE.
    let mut m2ll: BTreeMap<String, f64> = BTreeMap::new();
    let mut rd2 = csv::Reader::from_path(out.join("results/comparisons.csv")).unwrap();
    for rec in rd2.records() {
        let rec = rec.unwrap();
        if &rec[idx("METHOD")] == "mmrm_difference"
            && let Some(x) = rec[idx("NOTE")].split("-2LL ").nth(1)
        {
            let v: f64 = x.split(';').next().unwrap().trim().parse().unwrap();
            m2ll.insert(rec[idx("PARAMCD")].to_string(), v);
        }
    }
    let mut compared = 0;
    let mut cmh_compared = 0;
    let mut failures = Vec::new();
    for rec in rd.records() {
        let rec = rec.unwrap();
        let (method, param, visit, quantity) = (&rec[0], &rec[1], &rec[2], &rec[3]);
        let r_value: f64 = rec[4].trim().parse().unwrap_or(f64::NAN);
        if method == "mmrm_difference" {
            // nlme stops short of full convergence (see tests/mmrm_vs_sas.rs): estimates within
            // 0.1% of their SE, the SE within 0.1%, -2 log L within 1e-4 relative.
            if quantity == "m2loglik" {
                let mine = m2ll[param];
                compared += 1;
                if !rel_close(mine, r_value, 1e-4) {
                    failures.push(format!("mmrm {param} -2LL: R {r_value}, trialpipe {mine}"));
                }
                continue;
            }
            let key = (method.to_string(), param.to_string(), visit.to_string());
            let q = &ours[&key];
            let se = q["se"];
            compared += 1;
            let ok = match quantity {
                "estimate" => (q["estimate"] - r_value).abs() <= 1e-3 * se,
                _ => rel_close(se, r_value, 1e-3),
            };
            if !ok {
                failures.push(format!(
                    "{key:?} {quantity}: R {r_value}, trialpipe {:?}",
                    q.get(quantity)
                ));
            }
            continue;
        }
        if method.starts_with("proportion_") {
            let key = (method.to_string(), param.to_string(), visit.to_string());
            let Some(mine) = ours.get(&key).and_then(|q| q.get(quantity)) else {
                failures.push(format!(
                    "{key:?} {quantity}: R {r_value}, missing in trialpipe"
                ));
                continue;
            };
            compared += 1;
            if !rel_close(*mine, r_value, CLOSED_FORM_REL) {
                failures.push(format!("{key:?} {quantity}: R {r_value}, trialpipe {mine}"));
            }
            continue;
        }
        let (key, quantity) = match (method, quantity.split_once('_')) {
            ("ancova_lsmean", Some((q, arm))) => (
                (
                    method.to_string(),
                    param.to_string(),
                    format!("{visit}|{arm}"),
                ),
                q.to_string(),
            ),
            _ => (
                (method.to_string(), param.to_string(), visit.to_string()),
                quantity.to_string(),
            ),
        };
        let Some(mine) = ours.get(&key).and_then(|q| q.get(&quantity)) else {
            failures.push(format!(
                "{key:?} {quantity}: R {r_value}, missing in trialpipe"
            ));
            continue;
        };
        compared += 1;
        if matches!(method, "cmh" | "odds_ratio_mh") {
            cmh_compared += 1;
        }
        if !rel_close(*mine, r_value, CLOSED_FORM_REL) {
            failures.push(format!("{key:?} {quantity}: R {r_value}, trialpipe {mine}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 400, "only {compared} quantities compared");
    // CMH statistic and p, MH odds ratio and its interval, for several rules and visits.
    assert!(
        cmh_compared >= 20,
        "only {cmh_compared} CMH quantities compared"
    );
}
