//! The simulator: same seed → byte-identical files; a large simulated trial recovers its true
//! arm effects, control-arm changes, within-subject correlation and hazard ratio within
//! sampling error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn simulate(pipeline: &Path, out: &Path, extra: &[&str]) {
    let st = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .arg("--quiet")
        .arg("simulate")
        .arg(pipeline)
        .arg("--out")
        .arg(out)
        .args(extra)
        .status()
        .expect("run trialpipe");
    assert!(st.success(), "simulate failed");
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let p = Path::new("pipelines/msc_cirrhosis.toml");
    let (a, b, c) = (tmp("sim_a"), tmp("sim_b"), tmp("sim_c"));
    simulate(p, &a, &["--subjects", "40", "--seed", "7"]);
    simulate(p, &b, &["--subjects", "40", "--seed", "7"]);
    simulate(p, &c, &["--subjects", "40", "--seed", "8"]);
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        vec![
            "assessments.csv",
            "events.csv",
            "labs_site01.csv",
            "labs_site02.csv",
            "labs_site03.csv",
            "subjects.csv"
        ]
    );
    assert_eq!(fa, fb, "same seed must give identical bytes");
    assert_ne!(
        fa["labs_site01.csv"], fc["labs_site01.csv"],
        "another seed must differ"
    );
}

/// The pipelines `make sample-data` simulates (its `SIMULATED` list).
fn simulated_pipelines() -> Vec<String> {
    let make = std::fs::read_to_string("Makefile").unwrap();
    let line = make
        .lines()
        .find_map(|l| l.strip_prefix("SIMULATED := "))
        .expect("Makefile lists SIMULATED pipelines");
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn committed_sample_data_is_what_make_sample_data_produces() {
    let names = simulated_pipelines();
    assert!(names.contains(&"msc_cirrhosis".to_string()));
    for name in names {
        let out = tmp(&format!("sim_sample_{name}"));
        simulate(Path::new(&format!("pipelines/{name}.toml")), &out, &[]);
        let committed = files(Path::new(&format!("sample_data/{name}")));
        assert_eq!(
            files(&out),
            committed,
            "{name}: run `make sample-data` and commit the result"
        );
    }
}

#[test]
fn every_pipeline_with_a_simulation_is_in_make_sample_data() {
    let names = simulated_pipelines();
    for e in std::fs::read_dir("pipelines").unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        if text.lines().any(|l| l.trim() == "[simulation]") {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                names.contains(&stem),
                "{stem} is missing from SIMULATED in the Makefile"
            );
        }
    }
}

const RECOVERY: &str = r#"
[study]
id = "SIM"
title = "Effect recovery"

[[arms]]
code = "A"
label = "Active"

[[arms]]
code = "P"
label = "Placebo"
role = "control"

[inputs.subjects]
path = "subjects.csv"

[[inputs.labs]]
path = "labs_site*.csv"

[visits]
windows = [
  { name = "BASELINE", number = 0, target = 1, low = -28, high = 1 },
  { name = "WEEK 12", number = 12, target = 85, low = 57, high = 113 },
  { name = "WEEK 24", number = 24, target = 169, low = 141, high = 197 },
]

[[labs]]
code = "BILI"
name = "Bilirubin"
unit = "umol/L"
plausible = { low = 0.01, high = 100000 }
decimals = 3

[[labs]]
code = "ALB"
name = "Albumin"
unit = "g/L"
plausible = { low = -1000, high = 1000 }
decimals = 3

[simulation]
subjects = 4000
seed = 99
start_date = "2020-01-01"
accrual_days = 365
followup_months = 60
age = { mean = 50, sd = 10, min = 18, max = 80 }
male_fraction = 0.5
sites = [{ id = "01" }]

[simulation.survival]
control_median_months = 30
hazard_ratio = 0.6
withdrawal_per_year = 0.05

[simulation.labs.BILI]
scale = "log"
mean = 3.7
sd = 0.6
correlation = 0.7
severity_loading = 0.5
control_change = { "WEEK 12" = 0.05, "WEEK 24" = 0.10 }
effect = { "WEEK 12" = -0.15, "WEEK 24" = -0.30 }

[simulation.labs.ALB]
mean = 30
sd = 5
correlation = 0.6
control_change = { "WEEK 12" = -0.5, "WEEK 24" = -1.0 }
effect = { "WEEK 12" = 1.5, "WEEK 24" = 2.5 }
"#;

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var)
}

#[test]
fn large_trial_recovers_true_effects() {
    let dir = tmp("sim_recovery");
    let pipeline = dir.join("sim.toml");
    std::fs::write(&pipeline, RECOVERY).unwrap();
    simulate(&pipeline, &dir, &[]);

    let mut arm: HashMap<String, String> = HashMap::new();
    let mut rand: HashMap<String, chrono::NaiveDate> = HashMap::new();
    let mut rd = csv::Reader::from_path(dir.join("subjects.csv")).unwrap();
    for r in rd.records() {
        let r = r.unwrap();
        arm.insert(r[2].to_string(), r[3].to_string());
        rand.insert(r[2].to_string(), r[4].parse().unwrap());
    }
    // (subject, test, visit) -> value on the model scale.
    let mut val: HashMap<(String, String, String), f64> = HashMap::new();
    let mut rd = csv::Reader::from_path(dir.join("labs_site01.csv")).unwrap();
    for r in rd.records() {
        let r = r.unwrap();
        let v: f64 = r[7].parse().unwrap();
        let y = if &r[5] == "BILI" { v.ln() } else { v };
        val.insert((r[2].to_string(), r[5].to_string(), r[3].to_string()), y);
    }
    let truth = [
        ("BILI", "WEEK 12", 0.05, -0.15),
        ("BILI", "WEEK 24", 0.10, -0.30),
        ("ALB", "WEEK 12", -0.5, 1.5),
        ("ALB", "WEEK 24", -1.0, 2.5),
    ];
    for (test, visit, control_change, effect) in truth {
        let mut chg: HashMap<&str, Vec<f64>> = HashMap::new();
        for (subj, a) in &arm {
            let b = val.get(&(subj.clone(), test.to_string(), "BASELINE".to_string()));
            let v = val.get(&(subj.clone(), test.to_string(), visit.to_string()));
            if let (Some(b), Some(v)) = (b, v) {
                chg.entry(a.as_str()).or_default().push(v - b);
            }
        }
        let (ma, va) = mean_var(&chg["A"]);
        let (mp, vp) = mean_var(&chg["P"]);
        let se = (va / chg["A"].len() as f64 + vp / chg["P"].len() as f64).sqrt();
        let diff = ma - mp;
        assert!(
            (diff - effect).abs() < 4.0 * se,
            "{test} {visit}: estimated effect {diff:.4} vs true {effect} (SE {se:.4})"
        );
        let se_p = (vp / chg["P"].len() as f64).sqrt();
        assert!(
            (mp - control_change).abs() < 4.0 * se_p,
            "{test} {visit}: control change {mp:.4} vs true {control_change} (SE {se_p:.4})"
        );
    }

    // Within-subject correlation of ALB between baseline and week 12 (true 0.6).
    let pairs: Vec<(f64, f64)> = arm
        .keys()
        .filter_map(|s| {
            let b = val.get(&(s.clone(), "ALB".into(), "BASELINE".into()))?;
            let v = val.get(&(s.clone(), "ALB".into(), "WEEK 12".into()))?;
            Some((*b, *v))
        })
        .collect();
    let (mx, vx) = mean_var(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let (my, vy) = mean_var(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let cov =
        pairs.iter().map(|(x, y)| (x - mx) * (y - my)).sum::<f64>() / (pairs.len() as f64 - 1.0);
    let r = cov / (vx * vy).sqrt();
    // SE of r near 0.6 with n ≈ 3,500 is about (1 − r²)/√n ≈ 0.011.
    assert!(
        (r - 0.6).abs() < 0.05,
        "within-subject correlation {r:.3}, true 0.6"
    );

    // Hazard ratio: exponential MLE per arm, deaths / person-time (no severity effect on death).
    let mut deaths: HashMap<&str, f64> = HashMap::new();
    let mut time: HashMap<&str, f64> = HashMap::new();
    let mut rd = csv::Reader::from_path(dir.join("events.csv")).unwrap();
    let mut end: HashMap<String, (chrono::NaiveDate, bool)> = HashMap::new();
    for r in rd.records() {
        let r = r.unwrap();
        let d: chrono::NaiveDate = r[3].parse().unwrap();
        let e = end.entry(r[1].to_string()).or_insert((d, false));
        if &r[2] == "DEATH" {
            *e = (d, true);
        }
    }
    for (s, (d, died)) in &end {
        let a = arm[s].as_str();
        *time.entry(a).or_default() += (*d - rand[s]).num_days() as f64;
        if *died {
            *deaths.entry(a).or_default() += 1.0;
        }
    }
    let hr = (deaths["A"] / time["A"]) / (deaths["P"] / time["P"]);
    let se_log = (1.0 / deaths["A"] + 1.0 / deaths["P"]).sqrt();
    assert!(
        (hr.ln() - 0.6f64.ln()).abs() < 4.0 * se_log,
        "hazard ratio {hr:.3}, true 0.6 (SE of log HR {se_log:.3})"
    );
}

/// Extra subject columns come from their own random stream: declaring them changes no lab or
/// event value, and only appends columns to `subjects.csv`.
#[test]
fn subject_columns_leave_everything_else_unchanged() {
    let (a, b) = (tmp("sim_cols_a"), tmp("sim_cols_b"));
    let small = RECOVERY.replace("subjects = 4000", "subjects = 200");
    std::fs::write(a.join("sim.toml"), &small).unwrap();
    let with_columns = format!(
        "{small}\n[[simulation.subject_columns]]\nname = \"stage\"\nvalues = [\"I\", \"II\"]\n\n[[simulation.subject_columns]]\nname = \"diagnosis_date\"\ndays_before_consent = {{ min = 100, max = 900 }}\nmissing_rate = 0.3\n"
    );
    std::fs::write(b.join("sim.toml"), with_columns).unwrap();
    simulate(&a.join("sim.toml"), &a.join("out"), &[]);
    simulate(&b.join("sim.toml"), &b.join("out"), &[]);
    let (fa, fb) = (files(&a.join("out")), files(&b.join("out")));
    assert_eq!(fa["labs_site01.csv"], fb["labs_site01.csv"]);
    assert_eq!(fa["events.csv"], fb["events.csv"]);
    let (sa, sb) = (
        String::from_utf8(fa["subjects.csv"].clone()).unwrap(),
        String::from_utf8(fb["subjects.csv"].clone()).unwrap(),
    );
    assert_eq!(sa.lines().count(), sb.lines().count());
    for (la, lb) in sa.lines().zip(sb.lines()) {
        assert!(lb.starts_with(&format!("{la},")), "{la} / {lb}");
        assert_eq!(lb.split(',').count(), la.split(',').count() + 2);
    }
}

/// The opt-in models recover their parameters: category weights and blanks of a subject column,
/// dates within their range, a qualitative test's category probabilities (the latent normal cut
/// at 0, shifted by the arm effect), and the share of values written as 0 by `zero_below`.
#[test]
fn opt_in_models_recover_their_parameters() {
    let dir = tmp("sim_opt_in");
    let text = RECOVERY
        .replace(
            "[simulation.labs.BILI]\nscale = \"log\"",
            "[simulation.labs.BILI]\nzero_below = 30\nscale = \"log\"",
        )
        .replace(
            "[simulation]\n",
            "[[labs]]\ncode = \"HBEAG\"\nname = \"HBeAg\"\nunit = \"1\"\nresult = \"qualitative\"\nvalues = [\"POSITIVE\", \"NEGATIVE\"]\n\n[simulation]\n",
        )
        + "\n[simulation.labs.HBEAG]\nmean = 0.5\nsd = 1.0\ncorrelation = 0.5\neffect = { \"WEEK 24\" = -1.0 }\ncategories = [\"NEGATIVE\", \"POSITIVE\"]\ncuts = [0.0]\n\n[[simulation.subject_columns]]\nname = \"stage\"\nvalues = [\"I\", \"II\", \"III\"]\nweights = [0.7, 0.2, 0.1]\nmissing_rate = 0.1\n\n[[simulation.subject_columns]]\nname = \"diagnosis_date\"\ndays_before_consent = { min = 10, max = 20 }\n";
    let pipeline = dir.join("sim.toml");
    std::fs::write(&pipeline, text).unwrap();
    simulate(&pipeline, &dir, &[]);

    let mut arm: HashMap<String, String> = HashMap::new();
    let mut stage: BTreeMap<String, f64> = BTreeMap::new();
    let mut rd = csv::Reader::from_path(dir.join("subjects.csv")).unwrap();
    let h = rd.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let mut n = 0.0;
    for r in rd.records() {
        let r = r.unwrap();
        arm.insert(r[col("subject_id")].to_string(), r[col("arm")].to_string());
        *stage.entry(r[col("stage")].to_string()).or_default() += 1.0;
        let consent: chrono::NaiveDate = r[col("consent_date")].parse().unwrap();
        let diag: chrono::NaiveDate = r[col("diagnosis_date")].parse().unwrap();
        assert!((10..=20).contains(&(consent - diag).num_days()));
        n += 1.0;
    }
    let near = |p: f64, want: f64, n: f64, what: &str| {
        let se = (want * (1.0 - want) / n).sqrt();
        assert!((p - want).abs() < 4.0 * se, "{what}: {p} vs {want} (n {n})");
    };
    near(stage[""] / n, 0.1, n, "blank stage");
    near(stage["I"] / n, 0.9 * 0.7, n, "stage I");
    near(stage["III"] / n, 0.9 * 0.1, n, "stage III");

    // (arm, visit) -> (positive, total); zero BILI at baseline.
    let mut q: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    let (mut zero, mut bili) = (0.0, 0.0);
    let mut rd = csv::Reader::from_path(dir.join("labs_site01.csv")).unwrap();
    for r in rd.records() {
        let r = r.unwrap();
        let (subject, visit, code, result) = (&r[2], &r[3], &r[5], &r[7]);
        if code == "HBEAG" && visit != "UNSCHEDULED" {
            assert!(["POSITIVE", "NEGATIVE"].contains(&result), "{result}");
            assert_eq!(&r[8], "", "a qualitative result has no unit");
            let c = q
                .entry((arm[subject].clone(), visit.to_string()))
                .or_default();
            c.1 += 1.0;
            c.0 += f64::from(u8::from(result == "POSITIVE"));
        }
        if code == "BILI" && visit == "BASELINE" {
            bili += 1.0;
            zero += f64::from(u8::from(result.parse::<f64>().unwrap() == 0.0));
        }
    }
    // Phi(0.5) = 0.691462, Phi(-0.5) = 0.308538; P(BILI < 30) = Phi((ln 30 - 3.7) / 0.6) = 0.309240.
    for (key, want) in [
        (("A", "BASELINE"), 0.691462),
        (("P", "BASELINE"), 0.691462),
        (("P", "WEEK 24"), 0.691462),
        (("A", "WEEK 24"), 0.308538),
    ] {
        let (x, m) = q[&(key.0.to_string(), key.1.to_string())];
        near(x / m, want, m, &format!("HBEAG positive {key:?}"));
    }
    near(zero / bili, 0.309240, bili, "BILI written as 0");
}
