//! Seed 003, CAR-T then allogeneic transplant (`pipelines/cart_transplant.toml`) end to end on
//! its sample data: the complete-remission rate with its exact binomial test against the 90%
//! benchmark, and disease-free survival by remission stratum (Kaplan-Meier per stratum, log-rank
//! across the strata, Cox hazard ratios against CR1) match R's `binom.test`, `survfit`,
//! `survdiff` and `coxph` (`tests/r/seed_cart_transplant.R`).

mod common;

use common::*;

#[test]
fn cart_transplant_runs_and_matches_r() {
    let tmp = scratch("seed_cart_transplant");
    let out = tmp.join("out");
    let (code, stderr) = run("pipelines/cart_transplant.toml", &out);
    // 1 = completed with warnings: a few late marrow assessments.
    assert_eq!(code, 1, "{stderr}");

    export(
        &out.join("adam/adrs.parquet"),
        &tmp.join("adrs.csv"),
        &["USUBJID", "PARAMCD", "AVISIT", "AVALC"],
    );
    export(
        &out.join("adam/adtte.parquet"),
        &tmp.join("adtte.csv"),
        &["PARAMCD", "AVAL", "CNSR", "STRAT1"],
    );
    let r = tmp.join("r.csv");
    rscript(
        "tests/r/seed_cart_transplant.R",
        &[&tmp.join("adrs.csv"), &tmp.join("adtte.csv"), &r],
    );
    let mine = ours(&out);
    let compared = compare(&mine, &r, |method, _| match method {
        // Cox by Newton-Raphson to the same convergence criterion as R, not to the last digit.
        "cox_hr" => 1e-6,
        _ => 1e-9,
    });
    // binomial 2 visits x 6; KM medians: n of 3 strata + estimate and lower limit of the 2 strata
    // whose median is reached; KM at 12, 24, 36 months x 3 strata x 3; log-rank 3; Cox 2 x 5.
    assert_eq!(compared, 12 + 7 + 27 + 3 + 10);

    // One DFS row per subject, grouped into the three strata; the sample has events in each.
    for l in ["CR1", "CR2", "CR3/NR"] {
        let key = (
            "km_median".to_string(),
            "DFS".to_string(),
            String::new(),
            format!("remission_status = {l}"),
        );
        assert!(mine.get(&key).is_some_and(|q| q["n"] > 5.0), "{l}");
    }
    // No arm comparison in a single-arm trial.
    assert!(!mine.keys().any(|k| k.0 == "risk_difference_newcombe"));
}
