//! Seed 001, single-arm UC-MSC in decompensated hepatitis B cirrhosis (NCT05106972,
//! `pipelines/ucmsc_hbv_cirrhosis.toml`) end to end on its sample data: the screening report
//! (every criterion for every subject, ADSL ELIGFL, and the report's per-criterion table) matches
//! the protocol's criteria recomputed in R from the subjects file, and the within-arm paired t, signed-rank, MMRM
//! LS-means and Kaplan-Meier estimates match R (`tests/r/seed_ucmsc_hbv_cirrhosis.R`).

mod common;

use std::collections::BTreeMap;

use common::*;

#[test]
#[allow(clippy::needless_range_loop)] // rows of several columns, indexed together
fn ucmsc_hbv_cirrhosis_runs_and_matches_r() {
    let tmp = scratch("seed_ucmsc_hbv_cirrhosis");
    let out = tmp.join("out");
    let (code, stderr) = run("pipelines/ucmsc_hbv_cirrhosis.toml", &out);
    // 1 = completed with warnings: ineligible subjects, duplicates, late visits.
    assert_eq!(code, 1, "{stderr}");

    export(
        &out.join("adam/adlb.parquet"),
        &tmp.join("adlb.csv"),
        &[
            "USUBJID", "PARAMCD", "AVISIT", "ANL01FL", "ABLFL", "AVAL", "BASE", "CHG",
        ],
    );
    export(
        &out.join("adam/adtte.parquet"),
        &tmp.join("adtte.csv"),
        &["PARAMCD", "AVAL", "CNSR"],
    );
    export(
        &out.join("validation/eligibility.parquet"),
        &tmp.join("eligibility.csv"),
        &["SUBJID", "CRITID", "CRITKIND", "CRITMET", "DETAIL"],
    );
    let (r, r_elig) = (tmp.join("r.csv"), tmp.join("r_eligibility.csv"));
    rscript(
        "tests/r/seed_ucmsc_hbv_cirrhosis.R",
        &[
            std::path::Path::new("sample_data/ucmsc_hbv_cirrhosis/subjects.csv"),
            &tmp.join("adlb.csv"),
            &tmp.join("adtte.csv"),
            &r,
            &r_elig,
        ],
    );

    // Screening report: every (subject, criterion) and the verdict, as R sees them.
    let elig = columns(&out.join("validation/eligibility.parquet"));
    let mut ours_elig: BTreeMap<(String, String), String> = BTreeMap::new();
    for i in 0..elig["SUBJID"].len() {
        ours_elig.insert(
            (
                elig["SUBJID"][i].clone().unwrap(),
                elig["CRITID"][i].clone().unwrap(),
            ),
            elig["CRITMET"][i].clone().unwrap_or_default(),
        );
    }
    let adsl = columns(&out.join("adam/adsl.parquet"));
    for i in 0..adsl["SUBJID"].len() {
        ours_elig.insert(
            (adsl["SUBJID"][i].clone().unwrap(), "ELIGFL".into()),
            adsl["ELIGFL"][i].clone().unwrap_or_default(),
        );
    }
    let mut rd = csv::Reader::from_path(&r_elig).unwrap();
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    // criterion -> [met, not met, unknown]
    let mut per_criterion: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    let mut n = 0;
    for rec in rd.records() {
        let rec = rec.unwrap();
        let key = (rec[0].to_string(), rec[1].to_string());
        let want = rec[2].to_string();
        assert_eq!(ours_elig.get(&key), Some(&want), "{key:?}");
        if key.1 == "ELIGFL" {
            *verdicts.entry(want).or_default() += 1;
        } else {
            let k = match want.as_str() {
                "Y" => 0,
                "N" => 1,
                _ => 2,
            };
            per_criterion.entry(key.1.clone()).or_default()[k] += 1;
        }
        n += 1;
    }
    // The report's screening table counts each criterion as R does.
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(html.contains("<h3>Screening report</h3>"));
    for (id, [met, not, unknown]) in &per_criterion {
        let tail = format!(
            "<td class=\"num\">{met}</td><td class=\"num\">{not}</td><td class=\"num\">{unknown}</td></tr>"
        );
        assert!(
            html.lines()
                .any(|l| l.starts_with(&format!("<tr><td>{id}</td>")) && l.ends_with(&tail)),
            "screening row of {id}: {met} met, {not} not met, {unknown} unknown"
        );
    }
    assert_eq!(n, 30 * 15, "30 subjects x (14 criteria + verdict)");
    assert_eq!(ours_elig.len(), n);
    // The sample shows every verdict: eligible, ineligible and unknown.
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");

    let mine = ours(&out);
    let compared = compare(&mine, &r, |method, quantity| match (method, quantity) {
        ("mmrm_lsmean", _) => 1e-3,
        ("wilcoxon_signed_rank", "p_value") => 1e-6,
        _ => 1e-9,
    });
    // 5 params x 5 visits x (8 t + 2 signed-rank) + 3 x 5 x 2 MMRM + 2 x 2 x 4 KM.
    assert_eq!(compared, 250 + 30 + 16);
    // No between-arm method for one arm.
    assert!(
        !mine
            .keys()
            .any(|k| ["t_welch", "mmrm_difference", "log_rank"].contains(&k.0.as_str()))
    );
}
