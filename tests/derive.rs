//! Derive on the committed sample data: BASE, CHG, ANL01FL and ABLFL recomputed by hand from the
//! raw CSV rows for several subjects, ADSL/ADTTE basics, and byte-identical reruns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use trialpipe::store::read_parquet_text;

mod common;

fn run_into(name: &str) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&out);
    common::run_expecting_warnings(Path::new("pipelines/msc_cirrhosis.toml"), &out);
    out
}

/// Rows of a Parquet file as maps column → text.
fn rows(path: &Path) -> Vec<BTreeMap<String, Option<String>>> {
    let cols = read_parquet_text(path).unwrap();
    let n = cols.first().map_or(0, |c| c.values.len());
    (0..n)
        .map(|i| {
            cols.iter()
                .map(|c| (c.name.clone(), c.values[i].clone()))
                .collect()
        })
        .collect()
}

fn num(r: &BTreeMap<String, Option<String>>, k: &str) -> Option<f64> {
    r[k].as_ref().map(|v| v.parse().unwrap())
}

fn txt<'a>(r: &'a BTreeMap<String, Option<String>>, k: &str) -> Option<&'a str> {
    r[k].as_deref()
}

/// AVAL of the ADLB row of a subject, parameter and date (the first such row), if any.
fn aval_on(
    adlb: &[BTreeMap<String, Option<String>>],
    subj: &str,
    code: &str,
    adt: &str,
) -> Option<f64> {
    adlb.iter()
        .find(|r| {
            txt(r, "USUBJID") == Some(subj)
                && txt(r, "PARAMCD") == Some(code)
                && txt(r, "ADT") == Some(adt)
        })
        .and_then(|r| num(r, "AVAL"))
}

/// Windows of the flagship pipeline: (name, target, low, high).
const WINDOWS: [(&str, i64, i64, i64); 4] = [
    ("BASELINE", 1, -28, 1),
    ("WEEK 12", 85, 57, 113),
    ("WEEK 24", 169, 141, 197),
    ("WEEK 48", 337, 309, 365),
];

#[test]
fn base_chg_and_anl01fl_match_a_hand_computation_from_raw_rows() {
    let out = run_into("derive_hand");
    let adlb = rows(&out.join("adam/adlb.parquet"));

    // Raw site-01 rows (comma-separated, UTF-8 with BOM, standard units for these tests).
    let raw = std::fs::read_to_string("sample_data/msc_cirrhosis/labs_site01.csv").unwrap();
    let subjects = std::fs::read_to_string("sample_data/msc_cirrhosis/subjects.csv").unwrap();
    let rand: BTreeMap<&str, chrono::NaiveDate> = subjects
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2], f[4].parse().unwrap())
        })
        .collect();
    // (subject, test) -> [(date, value, unit)]
    type RawRow<'a> = (chrono::NaiveDate, &'a str, &'a str);
    let mut by: BTreeMap<(&str, &str), Vec<RawRow>> = BTreeMap::new();
    for l in raw.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        by.entry((f[2], f[5]))
            .or_default()
            .push((f[4].parse().unwrap(), f[7], f[8]));
    }
    let std_unit = BTreeMap::from([("ALB", "g/L"), ("PT", "s"), ("SODIUM", "mmol/L")]);
    // Plausible ranges of the flagship panel: values outside are quarantined.
    let plausible = BTreeMap::from([
        ("ALB", (5.0, 70.0)),
        ("PT", (5.0, 150.0)),
        ("SODIUM", (100.0, 180.0)),
    ]);
    let mut checked = 0;
    for ((subj, test), recs) in &by {
        let Some(unit) = std_unit.get(test) else {
            continue;
        };
        let Some(r0) = rand.get(subj) else { continue };
        // Only clean sets: plausible numeric results, the standard spelling, no repeated date.
        let (lo, hi) = plausible[test];
        let mut dates: Vec<_> = recs.iter().map(|r| r.0).collect();
        dates.sort();
        dates.dedup();
        if dates.len() != recs.len()
            || recs
                .iter()
                .any(|r| r.2 != *unit || !r.1.parse::<f64>().is_ok_and(|v| v >= lo && v <= hi))
        {
            continue;
        }
        // Study day (no day 0), window, closest-to-target selection with ties to the earlier.
        let day = |d: chrono::NaiveDate| {
            let x = (d - *r0).num_days();
            if x >= 0 { x + 1 } else { x }
        };
        let mut selected: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
        for (d, v, _) in recs {
            let dy = day(*d);
            let v: f64 = v.parse().unwrap();
            if let Some(w) = WINDOWS.iter().find(|w| dy >= w.2 && dy <= w.3) {
                let better = match selected.get(w.0) {
                    None => true,
                    Some((od, _)) => {
                        let (a, b) = ((dy - w.1).abs(), (od - w.1).abs());
                        a < b || (a == b && dy < *od)
                    }
                };
                if better {
                    selected.insert(w.0, (dy, v));
                }
            }
        }
        let Some((base_day, base)) = selected.get("BASELINE").copied() else {
            continue;
        };
        let usubjid = format!("MSC-LC-{subj}");
        let mine: Vec<_> = adlb
            .iter()
            .filter(|r| txt(r, "USUBJID") == Some(&usubjid) && txt(r, "PARAMCD") == Some(test))
            .collect();
        assert_eq!(
            mine.len(),
            recs.len(),
            "{subj} {test}: one ADLB row per raw row"
        );
        for r in &mine {
            let dy = num(r, "ADY").unwrap() as i64;
            let aval = num(r, "AVAL").unwrap();
            assert_eq!(num(r, "BASE"), Some(base), "{subj} {test} day {dy}");
            let sel = WINDOWS
                .iter()
                .find(|w| dy >= w.2 && dy <= w.3)
                .is_some_and(|w| selected[w.0].0 == dy);
            assert_eq!(
                txt(r, "ANL01FL") == Some("Y"),
                sel,
                "{subj} {test} day {dy} ANL01FL"
            );
            assert_eq!(
                txt(r, "ABLFL") == Some("Y"),
                dy == base_day,
                "{subj} {test} day {dy} ABLFL"
            );
            if dy > base_day {
                let chg = num(r, "CHG").unwrap();
                assert!(
                    (chg - (aval - base)).abs() < 1e-9,
                    "{subj} {test} day {dy} CHG"
                );
                let pchg = num(r, "PCHG").unwrap();
                assert!((pchg - (aval - base) / base * 100.0).abs() < 1e-9);
            } else {
                assert_eq!(
                    num(r, "CHG"),
                    None,
                    "{subj} {test} day {dy}: no CHG before baseline"
                );
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 20,
        "only {checked} subject/test sets were clean enough to check"
    );
}

#[test]
fn adsl_and_adtte_have_one_row_per_subject_and_endpoint() {
    let out = run_into("derive_adsl");
    let adsl = rows(&out.join("adam/adsl.parquet"));
    let subjects = std::fs::read_to_string("sample_data/msc_cirrhosis/subjects.csv").unwrap();
    assert_eq!(adsl.len(), subjects.lines().count() - 1);
    for r in &adsl {
        assert!(!r.contains_key("birth_date") && !r.contains_key("BRTHDT"));
        assert_eq!(txt(r, "RANDFL"), Some("Y"));
        assert_eq!(
            txt(r, "USUBJID"),
            Some(format!("MSC-LC-{}", txt(r, "SUBJID").unwrap()).as_str())
        );
    }
    let adtte = rows(&out.join("adam/adtte.parquet"));
    assert_eq!(adtte.len(), 2 * adsl.len());
    let events = std::fs::read_to_string("sample_data/msc_cirrhosis/events.csv").unwrap();
    for r in adtte.iter().filter(|r| txt(r, "PARAMCD") == Some("OS")) {
        let subj = txt(r, "USUBJID").unwrap().trim_start_matches("MSC-LC-");
        let death = events
            .lines()
            .find(|l| l.contains(&format!(",{subj},DEATH,")))
            .map(|l| l.rsplit(',').next().unwrap().to_string());
        assert_eq!(txt(r, "CNSR") == Some("0"), death.is_some(), "{subj}");
        if let Some(d) = death {
            assert_eq!(txt(r, "ADT"), Some(d.as_str()));
        }
        let start: chrono::NaiveDate = txt(r, "STARTDT").unwrap().parse().unwrap();
        let adt: chrono::NaiveDate = txt(r, "ADT").unwrap().parse().unwrap();
        assert_eq!(num(r, "AVAL"), Some(((adt - start).num_days() + 1) as f64));
    }
}

#[test]
fn derived_datasets_are_byte_identical_across_reruns() {
    let (a, b) = (run_into("derive_rep_a"), run_into("derive_rep_b"));
    for rel in [
        "sdtm/lb.parquet",
        "adam/adsl.parquet",
        "adam/adlb.parquet",
        "adam/adtte.parquet",
    ] {
        assert_eq!(
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(b.join(rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn meld_and_albi_rows_recompute_from_their_same_date_inputs() {
    let out = run_into("derive_scores");
    let adlb = rows(&out.join("adam/adlb.parquet"));
    let value = |subj: &str, code: &str, adt: &str| aval_on(&adlb, subj, code, adt);
    let mut checked = 0;
    for r in adlb
        .iter()
        .filter(|r| matches!(txt(r, "PARAMCD"), Some("MELD" | "ALBI")))
    {
        let (s, d) = (txt(r, "USUBJID").unwrap(), txt(r, "ADT").unwrap());
        let got = num(r, "AVAL").unwrap();
        let want = if txt(r, "PARAMCD") == Some("MELD") {
            // Standard units of the flagship: umol/L for bilirubin and creatinine.
            trialpipe::scores::meld(
                value(s, "CREAT", d).unwrap() / 88.42,
                value(s, "BILI", d).unwrap() / 17.104,
                value(s, "INR", d).unwrap(),
            )
            .unwrap()
        } else {
            trialpipe::scores::albi(value(s, "BILI", d).unwrap(), value(s, "ALB", d).unwrap())
                .unwrap()
        };
        assert!((got - want).abs() < 1e-9, "{s} {d}: {got} vs {want}");
        checked += 1;
    }
    assert!(checked > 300, "only {checked} score rows");
}

#[test]
fn apri_and_fib4_rows_recompute_from_same_date_inputs_age_and_uln() {
    let out = run_into("derive_fibrosis");
    let adlb = rows(&out.join("adam/adlb.parquet"));
    let adsl = rows(&out.join("adam/adsl.parquet"));
    let record = |subj: &str, code: &str, adt: &str| {
        adlb.iter().find(|r| {
            txt(r, "USUBJID") == Some(subj)
                && txt(r, "PARAMCD") == Some(code)
                && txt(r, "ADT") == Some(adt)
        })
    };
    let mut checked = (0, 0);
    for r in adlb
        .iter()
        .filter(|r| matches!(txt(r, "PARAMCD"), Some("APRI" | "FIB4")))
    {
        let (s, d) = (txt(r, "USUBJID").unwrap(), txt(r, "ADT").unwrap());
        let ast = record(s, "AST", d).unwrap();
        let plat = num(record(s, "PLAT", d).unwrap(), "AVAL").unwrap();
        let got = num(r, "AVAL").unwrap();
        let want = if txt(r, "PARAMCD") == Some("APRI") {
            checked.0 += 1;
            // The ULN is the subject's sex-specific AST range (40 U/L male, 35 U/L female).
            let sex = adsl
                .iter()
                .find(|a| txt(a, "USUBJID") == Some(s))
                .and_then(|a| txt(a, "SEX"));
            let uln = num(ast, "ANRHI").unwrap();
            assert_eq!(uln, if sex == Some("M") { 40.0 } else { 35.0 }, "{s}");
            trialpipe::scores::apri(num(ast, "AVAL").unwrap(), uln, plat).unwrap()
        } else {
            checked.1 += 1;
            let a = adsl.iter().find(|a| txt(a, "USUBJID") == Some(s)).unwrap();
            let rand: chrono::NaiveDate = txt(a, "RANDDT").unwrap().parse().unwrap();
            let adt: chrono::NaiveDate = d.parse().unwrap();
            let age = num(a, "AGE").unwrap() + (adt - rand).num_days() as f64 / 365.25;
            let alt = num(record(s, "ALT", d).unwrap(), "AVAL").unwrap();
            trialpipe::scores::fib4(age, num(ast, "AVAL").unwrap(), alt, plat).unwrap()
        };
        assert!((got - want).abs() < 1e-9, "{s} {d}: {got} vs {want}");
    }
    assert!(checked.0 > 150 && checked.1 > 150, "{checked:?}");
}

#[test]
fn hyslaw_rows_follow_the_same_date_multiples_of_uln() {
    let out = run_into("derive_hyslaw");
    let adlb = rows(&out.join("adam/adlb.parquet"));
    // (subject, date) -> code -> AVAL / ANRHI, from the first record of the date (as derive).
    let mut xuln: BTreeMap<(&str, &str), BTreeMap<&str, f64>> = BTreeMap::new();
    for r in &adlb {
        let code = txt(r, "PARAMCD").unwrap();
        if !matches!(code, "ALT" | "AST" | "BILI") {
            continue;
        }
        if let (Some(v), Some(h), Some(d)) = (num(r, "AVAL"), num(r, "ANRHI"), txt(r, "ADT")) {
            xuln.entry((txt(r, "USUBJID").unwrap(), d))
                .or_default()
                .entry(code)
                .or_insert(v / h);
        }
    }
    let hys: BTreeMap<(&str, &str), &str> = adlb
        .iter()
        .filter(|r| txt(r, "PARAMCD") == Some("HYSLAW"))
        .map(|r| {
            assert!(num(r, "ADY").unwrap() > 1.0, "post-baseline dates only");
            assert_eq!(
                num(r, "AVAL"),
                Some(if txt(r, "AVALC") == Some("Y") {
                    1.0
                } else {
                    0.0
                })
            );
            (
                (txt(r, "USUBJID").unwrap(), txt(r, "ADT").unwrap()),
                txt(r, "AVALC").unwrap(),
            )
        })
        .collect();
    let post = |s: &str, d: &str| {
        adlb.iter().any(|r| {
            txt(r, "USUBJID") == Some(s)
                && txt(r, "ADT") == Some(d)
                && num(r, "ADY").is_some_and(|y| y > 1.0)
        })
    };
    let (mut yes, mut no) = (0, 0);
    for ((s, d), v) in &xuln {
        let (alt, ast, bili) = (v.get("ALT"), v.get("AST"), v.get("BILI"));
        // Decided when bilirubin and both aminotransferases are there (or bilirubin < 2 × ULN
        // with one of them).
        let want = match (alt, ast, bili) {
            (_, _, None) | (None, None, _) => None,
            (_, _, Some(b)) if *b < 2.0 => Some("N"),
            (Some(a), Some(t), Some(_)) => Some(if *a >= 3.0 || *t >= 3.0 { "Y" } else { "N" }),
            (Some(a), None, _) | (None, Some(a), _) => (*a >= 3.0).then_some("Y"),
        };
        let want = want.filter(|_| post(s, d));
        assert_eq!(hys.get(&(*s, *d)).copied(), want, "{s} {d}: {v:?}");
        match want {
            Some("Y") => yes += 1,
            Some(_) => no += 1,
            None => {}
        }
    }
    assert_eq!(yes + no, hys.len());
    // The sample data has cases both ways (cirrhosis: bilirubin is often above 2 × ULN).
    assert!(yes > 0 && no > 100, "{yes} Y, {no} N");
}

#[test]
fn child_pugh_rows_recompute_from_same_date_labs_and_assessments() {
    use trialpipe::scores::{Ascites, Coagulation, Encephalopathy};
    let out = run_into("derive_child_pugh");
    let adlb = rows(&out.join("adam/adlb.parquet"));
    let value = |subj: &str, code: &str, adt: &str| aval_on(&adlb, subj, code, adt);
    // The raw assessments file: (USUBJID, date) -> (ascites, encephalopathy).
    let raw = std::fs::read_to_string("sample_data/msc_cirrhosis/assessments.csv").unwrap();
    let grades: BTreeMap<(String, String), (String, String)> = raw
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                (format!("MSC-LC-{}", f[2]), f[4].to_string()),
                (f[5].to_string(), f[6].to_string()),
            )
        })
        .collect();
    let mut checked = 0;
    for r in adlb
        .iter()
        .filter(|r| matches!(txt(r, "PARAMCD"), Some("CPS" | "CPSCL")))
    {
        let (s, d) = (txt(r, "USUBJID").unwrap(), txt(r, "ADT").unwrap());
        let (a, e) = &grades[&(s.to_string(), d.to_string())];
        let asc = match a.as_str() {
            "none" => Ascites::None,
            "slight" => Ascites::Slight,
            "moderate" | "severe" => Ascites::ModerateSevere,
            other => panic!("{s} {d}: ascites `{other}` has no score"),
        };
        let enc = match e.as_str() {
            "0" => Encephalopathy::None,
            "1" | "2" => Encephalopathy::Grade1To2,
            "3" | "4" => Encephalopathy::Grade3To4,
            other => panic!("{s} {d}: encephalopathy `{other}` has no score"),
        };
        // Standard units of the flagship: bilirubin umol/L, albumin g/L.
        let score = trialpipe::scores::child_pugh(
            value(s, "BILI", d).unwrap() / 17.104,
            value(s, "ALB", d).unwrap() / 10.0,
            Coagulation::Inr(value(s, "INR", d).unwrap()),
            asc,
            enc,
        )
        .unwrap();
        if txt(r, "PARAMCD") == Some("CPS") {
            assert_eq!(num(r, "AVAL"), Some(f64::from(score)), "{s} {d}");
        } else {
            let class = trialpipe::scores::child_pugh_class(score).to_string();
            assert_eq!(txt(r, "AVALC"), Some(class.as_str()), "{s} {d}");
        }
        checked += 1;
    }
    assert!(checked > 300, "only {checked} Child-Pugh rows");
    // A date with a blank grade has no Child-Pugh row.
    let blank = grades
        .iter()
        .find(|(k, (a, e))| (a.is_empty() || e.is_empty()) && value(&k.0, "BILI", &k.1).is_some())
        .map(|(k, _)| k)
        .expect("the sample data has blank grades on lab dates");
    assert_eq!(value(&blank.0, "CPS", &blank.1), None);
}

/// The scratch root and sample-data directory of a private copy of the flagship
/// ([`common::flagship_copy`], pipeline unchanged), for tests that alter an input.
fn flagship_dirs(name: &str) -> (PathBuf, PathBuf) {
    let pipeline = common::flagship_copy(name, |text| text);
    let root = pipeline.parent().unwrap().parent().unwrap().to_path_buf();
    let data = root.join("sample_data/msc_cirrhosis");
    (root, data)
}

/// The `paramcd` rows of an ADLB as (USUBJID, ADT) -> AVAL as written.
fn aval_by_date(adlb: &Path, paramcd: &str) -> BTreeMap<(String, String), Option<String>> {
    rows(adlb)
        .into_iter()
        .filter(|r| txt(r, "PARAMCD") == Some(paramcd))
        .map(|r| {
            let key = (
                txt(&r, "USUBJID").unwrap().to_string(),
                txt(&r, "ADT").unwrap().to_string(),
            );
            (key, r["AVAL"].clone())
        })
        .collect()
}

#[test]
fn assessments_a_day_off_the_lab_date_are_used_only_within_match_days() {
    // The flagship's assessments, each moved one day after its lab date.
    let (dir, data) = flagship_dirs("derive_match_days");
    let text = std::fs::read_to_string(data.join("assessments.csv")).unwrap();
    let mut moved = 0;
    let shifted: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            if i > 0
                && let Ok(d) = chrono::NaiveDate::parse_from_str(&f[4], "%Y-%m-%d")
            {
                f[4] = (d + chrono::Days::new(1)).to_string();
                moved += 1;
            }
            f.join(",")
        })
        .collect();
    assert!(moved > 200, "{moved}");
    std::fs::write(data.join("assessments.csv"), shifted.join("\n") + "\n").unwrap();
    let pipeline = std::fs::read_to_string("pipelines/msc_cirrhosis.toml").unwrap();
    let derive_with = |name: &str, extra: &str| {
        let toml = pipeline.replacen(
            "[inputs.assessments]\n",
            &format!("[inputs.assessments]\n{extra}"),
            1,
        );
        assert!(
            extra.is_empty() || toml != pipeline,
            "the pipeline has an [inputs.assessments] table"
        );
        let path = dir.join(format!("pipelines/{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        let out = dir.join(name);
        common::derive_expecting_warnings(&path, &out);
        aval_by_date(&out.join("adam/adlb.parquet"), "CPS")
    };
    // The same date only (the default): no assessment is on a lab date any more.
    assert!(derive_with("same_date", "").is_empty());
    assert!(derive_with("zero", "match_days = 0\n").is_empty());
    // One day either way: every score of the unmoved data comes back, with the same value.
    let original = aval_by_date(
        &run_into("derive_match_days_original").join("adam/adlb.parquet"),
        "CPS",
    );
    assert!(original.len() > 150, "{}", original.len());
    assert_eq!(derive_with("one_day", "match_days = 1\n"), original);
}

#[test]
fn an_undeclared_assessment_grade_is_a_finding_and_the_row_is_quarantined() {
    let (dir, data) = flagship_dirs("derive_bad_grade");
    let text = std::fs::read_to_string(data.join("assessments.csv")).unwrap();
    let line3 = text.lines().nth(2).unwrap();
    let bad = line3
        .replacen(",slight,", ",tense,", 1)
        .replacen(",none,", ",tense,", 1);
    assert_ne!(bad, line3);
    std::fs::write(data.join("assessments.csv"), text.replacen(line3, &bad, 1)).unwrap();
    let out = dir.join("out");
    // A data problem, not unusable input: the run goes on (warnings: exit 1).
    common::derive_expecting_warnings(&dir.join("pipelines/msc_cirrhosis.toml"), &out);
    let f: Vec<_> = rows(&out.join("validation/findings.parquet"))
        .into_iter()
        .filter(|r| txt(r, "RULE") == Some("assessment_value"))
        .collect();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(txt(&f[0], "SRCLINE"), Some("3"));
    assert!(txt(&f[0], "SRCFILE").unwrap().ends_with("assessments.csv"));
    assert_eq!(
        txt(&f[0], "MESSAGE"),
        Some(
            "column `ascites`: `tense` is not a declared grade (`none`, `slight`, `moderate`, `severe`) or blank"
        )
    );
    let q: Vec<_> = rows(&out.join("quarantine/rejected.parquet"))
        .into_iter()
        .filter(|r| txt(r, "DOMAIN") == Some("assessments"))
        .collect();
    // The bad grade, and the sample's four rows of subject 02-011, who is not in the subjects
    // file (rule `assessment_unknown_subject`).
    let reasons: Vec<_> = q.iter().map(|r| txt(r, "REASONS").unwrap()).collect();
    assert_eq!(
        reasons,
        [
            "assessment_value",
            "assessment_unknown_subject",
            "assessment_unknown_subject",
            "assessment_unknown_subject",
            "assessment_unknown_subject"
        ]
    );
    assert!(txt(&q[0], "RAWROW").unwrap().contains("\"tense\""));
    assert!(q[1..].iter().all(|r| txt(r, "SUBJID") == Some("02-011")));
    // Row accounting counts the assessments file too.
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("validation/summary.json")).unwrap(),
    )
    .unwrap();
    let file = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "assessments")
        .expect("the assessments file is accounted for");
    assert_eq!(file["rows_quarantined"], 5);
    assert_eq!(
        file["rows_read"].as_u64(),
        Some(text.lines().count() as u64 - 1)
    );
}

#[test]
fn scores_convert_their_inputs_with_the_pipelines_declared_conversions() {
    // Albumin standardized to µmol/L, reachable from the sites' g/L and g/dL only through
    // conversions the pipeline declares (66.5 kDa: 1 g/L = 15.04 µmol/L). ALBI needs g/L, which
    // only the declared conversion (taken backwards) gives: the scores must match the flagship's.
    let pipeline = common::flagship_copy("derive_declared_conversions", |text| {
        let old = "code = \"ALB\"\nname = \"Albumin\"\nunit = \"g/L\"\nsource_units = [\"g/L\", \"g/dL\"]\nplausible = { low = 5, high = 70 }\nnormal = { low = 35, high = 50 }\n";
        assert!(text.contains(old));
        text.replace(
            old,
            "code = \"ALB\"\nname = \"Albumin\"\nunit = \"umol/L\"\nsource_units = [\"g/L\", \"g/dL\"]\n\
             conversions = [{ from = \"g/L\", to = \"umol/L\", factor = 15.04 }]\n\
             plausible = { low = 75.2, high = 1052.8 }\nnormal = { low = 526.4, high = 752 }\n",
        )
    });
    let root = pipeline.parent().unwrap().parent().unwrap().to_path_buf();
    let (code, stderr) = common::run(pipeline.to_str().unwrap(), &root.join("out"));
    assert_eq!(code, 1, "{stderr}");
    let albi = |out: &Path| -> BTreeMap<(String, String), f64> {
        aval_by_date(&out.join("adam/adlb.parquet"), "ALBI")
            .into_iter()
            .map(|(k, v)| (k, v.unwrap().parse().unwrap()))
            .collect()
    };
    let ours = albi(&root.join("out"));
    let flagship = albi(&run_into("derive_declared_conversions_flagship"));
    assert!(flagship.len() > 50, "{} ALBI rows", flagship.len());
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        flagship.keys().collect::<Vec<_>>()
    );
    for (k, v) in &flagship {
        assert!((ours[k] - v).abs() < 1e-9, "{k:?}: {} vs {v}", ours[k]);
    }
}
