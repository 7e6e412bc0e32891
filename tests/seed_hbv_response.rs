//! Seed 000, the HBV response criteria (`pipelines/hbv_response.toml`) end to end on its sample
//! data: HBV-DNA from copies/mL and IU/mL lands on one log10 scale; every response rule of the
//! seed's table (biochemical, virological, serological, complete response) and the categories
//! basic cure / improve / no response, per subject and visit, match the rules recomputed in R
//! from ADLB; exactly one category holds where all three are known; the responder proportions and
//! Fisher tests by arm match R (`tests/r/seed_hbv_response.R`).

mod common;

use std::collections::BTreeMap;

use common::*;

#[test]
#[allow(clippy::needless_range_loop)] // rows of several columns, indexed together
fn hbv_response_runs_and_matches_r() {
    let tmp = scratch("seed_hbv_response");
    let out = tmp.join("out");
    let (code, stderr) = run("pipelines/hbv_response.toml", &out);
    // 1 = completed with warnings: duplicate rows and late visits in the sample data.
    assert_eq!(code, 1, "{stderr}");

    // HBV-DNA: copies/mL and IU/mL (1 IU = 5.82 copies) become log10 copies/mL.
    let labs = columns(&out.join("ingest/labs.parquet"));
    let mut units = BTreeMap::new();
    for i in 0..labs["LBTESTCD"].len() {
        if labs["LBTESTCD"][i].as_deref() != Some("HBVDNA") {
            continue;
        }
        let (Some(o), Some(u), Some(s)) = (
            &labs["LBORRESN"][i],
            &labs["LBORRESU"][i],
            &labs["LBSTRESN"][i],
        ) else {
            continue;
        };
        let (o, s): (f64, f64) = (o.parse().unwrap(), s.parse().unwrap());
        let want = match u.as_str() {
            "copies/mL" => o.log10(),
            "IU/mL" => (o * 5.82).log10(),
            other => panic!("unexpected HBV-DNA unit {other}"),
        };
        assert!((s - want).abs() < 1e-12, "{o} {u} -> {s}, want {want}");
        assert_eq!(labs["LBSTRESU"][i].as_deref(), Some("log10 copies/mL"));
        *units.entry(u.clone()).or_insert(0) += 1;
    }
    assert_eq!(units.len(), 2, "{units:?}");

    export(
        &out.join("adam/adlb.parquet"),
        &tmp.join("adlb.csv"),
        &[
            "USUBJID", "ARMCD", "PARAMCD", "AVISIT", "ANL01FL", "ABLFL", "AVAL", "AVALC", "CHG",
            "ANRHI",
        ],
    );
    let (r, r_flags) = (tmp.join("r.csv"), tmp.join("r_flags.csv"));
    rscript(
        "tests/r/seed_hbv_response.R",
        &[&tmp.join("adlb.csv"), &r_flags, &r],
    );

    // Every flag of ADRS equals R's, and R has no flag ADRS lacks.
    let adrs = columns(&out.join("adam/adrs.parquet"));
    let mut mine: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for i in 0..adrs["USUBJID"].len() {
        let s = |c: &str| adrs[c][i].clone().unwrap_or_default();
        mine.insert((s("USUBJID"), s("PARAMCD"), s("AVISIT")), s("AVALC"));
    }
    let mut rd = csv::Reader::from_path(&r_flags).unwrap();
    let mut n = 0;
    let mut yes: BTreeMap<String, usize> = BTreeMap::new();
    for rec in rd.records() {
        let rec = rec.unwrap();
        let k = (rec[0].to_string(), rec[1].to_string(), rec[2].to_string());
        assert_eq!(mine.get(&k).map(String::as_str), Some(&rec[3]), "{k:?}");
        if &rec[3] == "Y" {
            *yes.entry(k.1.clone()).or_default() += 1;
        }
        n += 1;
    }
    assert_eq!(n, mine.len(), "R and ADRS hold different subject-visits");
    // The sample exercises every rule in both directions.
    for id in ["CURE", "IMPROVE", "NORESP", "CR", "ESEROCON", "SEROCURE"] {
        assert!(
            yes.get(id).is_some_and(|c| *c > 0),
            "no {id} responder: {yes:?}"
        );
    }

    // Exactly one category per subject and visit where all three are known.
    let mut cats: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for ((u, id, v), val) in &mine {
        if ["CURE", "IMPROVE", "NORESP"].contains(&id.as_str()) {
            cats.entry((u.clone(), v.clone()))
                .or_default()
                .push(val.clone());
        }
    }
    let mut known = 0;
    for (k, vals) in &cats {
        if vals.iter().all(|v| !v.is_empty()) {
            assert_eq!(
                vals.iter().filter(|v| *v == "Y").count(),
                1,
                "{k:?}: {vals:?}"
            );
            known += 1;
        }
    }
    assert!(known > 200, "{known} subject-visits with a known category");

    let compared = compare(&ours(&out), &r, |_, _| 1e-9);
    // 8 rules x 3 visits x (2 arms x 6 + 1 Fisher).
    assert_eq!(compared, 8 * 3 * 13);
}
