//! The synthetic trial generator behind `trialpipe simulate`.
//!
//! It writes raw exports in the default input layouts (subjects, one long lab file per site,
//! events) from the statistical model in the pipeline file's `[simulation]` section:
//!
//! * a latent disease severity `z ~ N(0, 1)` per subject;
//! * for each test, on its model scale (natural or log), the value of subject *i* at window *v* is
//!   `mean + control_change[v] + effect[v]·[arm is experimental] + b_i + e_iv`, with the subject
//!   effect `b_i = sd·(λ·z_i + √(ρ − λ²)·u_i)` and `e_iv ~ N(0, sd²·(1 − ρ))`, so the total SD is
//!   `sd`, the within-subject correlation across visits is `ρ` (exchangeable) and the correlation
//!   with severity is `λ` (`severity_loading`);
//! * death from an exponential hazard `λ0·HR^[experimental]·exp(β·z)` with `λ0 = ln 2 / median`,
//!   transplant and withdrawal from their own exponential hazards, administrative censoring at
//!   `start_date + followup_months`; visits stop at death or withdrawal;
//! * the defects of real transfers at configurable rates: site-specific units, decimal commas,
//!   censored (`<x`) and not-done results, blanks, exact and conflicting duplicates, unit spelling
//!   variants and typos, out-of-window and unscheduled visits, implausible values, and subjects
//!   missing from the subjects file.
//!
//! A ChaCha8 generator seeded from `seed` and fixed iteration order make the files byte-identical
//! for the same pipeline and seed. This module deliberately shares no code with `ingest`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Normal};

use crate::spec::{ArmRole, LoadedPipeline, SimLab, SimScale, SimSite, Simulation, Window};
use crate::units::{Conversion, Registry};

/// Mixed into the seed of the separate random stream of `simulation.subject_columns`.
const COLUMN_STREAM: u64 = 0x5EED_C01D;

/// Days per month used to turn months into days (365.25 / 12).
pub const DAYS_PER_MONTH: f64 = 30.4375;

/// Overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct SimulateOptions {
    /// Number of subjects (else the pipeline's).
    pub subjects: Option<usize>,
    /// Seed (else the pipeline's).
    pub seed: Option<u64>,
    /// Output directory for the raw files.
    pub out_dir: PathBuf,
}

/// What a simulation wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimulationSummary {
    /// Files written, in order.
    pub files: Vec<PathBuf>,
    /// Subjects randomized (including those left out of the subjects file).
    pub subjects: usize,
    /// Lab rows written over all site files.
    pub lab_rows: usize,
    /// Event rows written.
    pub events: usize,
    /// Seed used.
    pub seed: u64,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The pipeline has no `[simulation]` section.
    #[error("{0}: the pipeline file has no [simulation] section")]
    NoModel(PathBuf),
    /// A model value is unusable (the message names the key).
    #[error("{path}: {key}: {message}")]
    Model {
        /// Pipeline file.
        path: PathBuf,
        /// Key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Writing an output file failed.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

struct Subject {
    site: usize,
    subject_id: String,
    arm: String,
    experimental: bool,
    rand_date: NaiveDate,
    consent_offset: i64,
    sex: &'static str,
    age: u32,
    birth_date: NaiveDate,
    initials: String,
    severity: f64,
    /// Day offsets from randomization (0 = randomization date) of the end of visits (death or
    /// withdrawal or data cut), death, transplant, withdrawal.
    end_offset: i64,
    death: Option<i64>,
    transplant: Option<i64>,
    withdrawal: Option<i64>,
    doses: u32,
    /// Values of `simulation.subject_columns`, in their order.
    extra: Vec<String>,
}

struct LabRow {
    site: usize,
    subject_id: String,
    visit: String,
    date: NaiveDate,
    code: String,
    name: String,
    result: String,
    unit: String,
    ref_low: String,
    ref_high: String,
}

/// Run the simulator described by the pipeline's `[simulation]` section.
pub fn simulate(
    lp: &LoadedPipeline,
    opts: &SimulateOptions,
) -> Result<SimulationSummary, SimulateError> {
    let sim = lp
        .pipeline
        .simulation
        .as_ref()
        .ok_or_else(|| SimulateError::NoModel(lp.path.clone()))?;
    let n = opts.subjects.unwrap_or(sim.subjects);
    let seed = opts.seed.unwrap_or(sim.seed);
    let model_err = |key: &str, message: String| SimulateError::Model {
        path: lp.path.clone(),
        key: key.to_string(),
        message,
    };
    let start = NaiveDate::parse_from_str(&sim.start_date, "%Y-%m-%d").map_err(|e| {
        model_err(
            "simulation.start_date",
            format!("`{}` is not YYYY-MM-DD: {e}", sim.start_date),
        )
    })?;
    if sim.sites.is_empty() {
        return Err(model_err("simulation.sites", "no sites".into()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let subjects = make_subjects(lp, sim, n, start, seed, &mut rng)?;
    let rows = make_labs(lp, sim, &subjects, &mut rng)?;

    std::fs::create_dir_all(&opts.out_dir).map_err(|source| SimulateError::Write {
        path: opts.out_dir.clone(),
        source,
    })?;
    let mut files = Vec::new();

    // Subjects file, minus the subjects a messy transfer loses.
    let mut missing = Vec::new();
    if sim.messiness.missing_subjects > 0 && !subjects.is_empty() {
        let mut idx: Vec<usize> = (0..subjects.len()).collect();
        for k in 0..sim.messiness.missing_subjects.min(subjects.len()) {
            let j = rng.random_range(k..idx.len());
            idx.swap(k, j);
            missing.push(idx[k]);
        }
    }
    let mut subj_csv = CsvText::new(',', false);
    subj_csv.row(&[
        "study_id",
        "site_id",
        "subject_id",
        "arm",
        "randomization_date",
        "consent_date",
        "first_dose_date",
        "doses_received",
        "sex",
        "age",
        "birth_date",
        "initials",
    ]);
    let extra_names: Vec<&str> = sim
        .subject_columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    if !extra_names.is_empty() {
        // Re-open the header row to append the extra columns.
        subj_csv.extend_last(&extra_names);
    }
    for (i, s) in subjects.iter().enumerate() {
        if missing.contains(&i) {
            continue;
        }
        let consent = s.rand_date - Days::new(s.consent_offset as u64);
        let first_dose = if s.doses > 0 {
            s.rand_date.to_string()
        } else {
            String::new()
        };
        subj_csv.row(&[
            &lp.pipeline.study.id,
            &sim.sites[s.site].id,
            &s.subject_id,
            &s.arm,
            &s.rand_date.to_string(),
            &consent.to_string(),
            &first_dose,
            &s.doses.to_string(),
            s.sex,
            &s.age.to_string(),
            &s.birth_date.to_string(),
            &s.initials,
        ]);
        if !s.extra.is_empty() {
            let extra: Vec<&str> = s.extra.iter().map(String::as_str).collect();
            subj_csv.extend_last(&extra);
        }
    }
    files.push(write(
        &opts.out_dir.join("subjects.csv"),
        subj_csv.finish(),
    )?);

    // One lab transfer per site.
    let mut lab_rows = 0;
    for (si, site) in sim.sites.iter().enumerate() {
        let mut t = CsvText::new(site.delimiter, site.crlf);
        t.row(&[
            "study_id",
            "site_id",
            "subject_id",
            "visit",
            "collection_date",
            "test_code",
            "test_name",
            "result",
            "unit",
            "ref_low",
            "ref_high",
        ]);
        for r in rows.iter().filter(|r| r.site == si) {
            t.row(&[
                &lp.pipeline.study.id,
                &site.id,
                &r.subject_id,
                &r.visit,
                &r.date.to_string(),
                &r.code,
                &r.name,
                &r.result,
                &r.unit,
                &r.ref_low,
                &r.ref_high,
            ]);
            lab_rows += 1;
        }
        let mut bytes = if site.latin1 {
            to_latin1(&t.finish())
        } else {
            t.finish().into_bytes()
        };
        if site.bom && !site.latin1 {
            let mut b = vec![0xEF, 0xBB, 0xBF];
            b.append(&mut bytes);
            bytes = b;
        }
        let path = opts.out_dir.join(format!("labs_site{}.csv", site.id));
        std::fs::write(&path, &bytes).map_err(|source| SimulateError::Write {
            path: path.clone(),
            source,
        })?;
        files.push(path);
    }

    // Events: one time-to-event row per subject for a `tte` endpoint ...
    if let Some(ep) = &sim.survival.tte_endpoint {
        let name = ep.to_lowercase();
        let mut ev = CsvText::new(',', false);
        let (days, event) = (format!("{name}_days"), format!("{name}_event"));
        ev.row(&["study_id", "subject_id", &days, &event]);
        for s in &subjects {
            let (t, e) = s.death.map_or((s.end_offset, "0"), |d| (d, "1"));
            ev.row(&[&lp.pipeline.study.id, &s.subject_id, &t.to_string(), e]);
        }
        files.push(write(&opts.out_dir.join("events.csv"), ev.finish())?);
        return Ok(SimulationSummary {
            files,
            subjects: subjects.len(),
            lab_rows,
            events: subjects.len(),
            seed,
        });
    }
    // ... or the dated events.
    let mut ev = CsvText::new(',', false);
    ev.row(&["study_id", "subject_id", "event", "event_date"]);
    let mut events = 0;
    for s in &subjects {
        let date = |off: i64| (s.rand_date + Days::new(off as u64)).to_string();
        let mut list: Vec<(i64, &str)> = Vec::new();
        if let Some(d) = s.transplant {
            list.push((d, "TRANSPLANT"));
        }
        if let Some(d) = s.withdrawal {
            list.push((d, "WITHDRAWAL"));
        }
        if let Some(d) = s.death {
            list.push((d, "DEATH"));
        }
        list.push((s.end_offset, "LAST_CONTACT"));
        list.sort();
        for (d, e) in list {
            ev.row(&[&lp.pipeline.study.id, &s.subject_id, e, &date(d)]);
            events += 1;
        }
    }
    files.push(write(&opts.out_dir.join("events.csv"), ev.finish())?);

    // Clinical assessments (opt-in), from their own random stream so that adding them leaves
    // the other files unchanged.
    if let Some(model) = &sim.assessments {
        let text = assessments_csv(lp, sim, model, &subjects, &rows, seed);
        files.push(write(&opts.out_dir.join("assessments.csv"), text)?);
    }

    Ok(SimulationSummary {
        files,
        subjects: subjects.len(),
        lab_rows,
        events,
        seed,
    })
}

/// `assessments.csv`: one row per subject and lab visit date with ascites and West Haven
/// encephalopathy grades cut from a latent `λ·severity + √(1 − λ²)·ε` at the normal quantiles of
/// the model's marginal probabilities (the upper grades split evenly into moderate/severe and
/// 1/2, 3/4). Grades are blank at the messiness `blank_rate`.
fn assessments_csv(
    lp: &LoadedPipeline,
    sim: &Simulation,
    model: &crate::spec::SimAssessments,
    subjects: &[Subject],
    rows: &[LabRow],
    seed: u64,
) -> String {
    use statrs::distribution::{ContinuousCDF, Normal as StdNormal};
    let q = |p: f64| {
        StdNormal::new(0.0, 1.0)
            .expect("unit normal")
            .inverse_cdf(p.clamp(1e-12, 1.0 - 1e-12))
    };
    // Cut points for [none | low | low' | high | high'] from P(low grade) and P(high grade).
    let cuts = |p_low: f64, p_high: f64| {
        [
            q(1.0 - p_low - p_high),
            q(1.0 - p_high - p_low / 2.0),
            q(1.0 - p_high),
            q(1.0 - p_high / 2.0),
        ]
    };
    let asc = cuts(model.ascites.slight, model.ascites.moderate_severe);
    let enc = cuts(
        model.encephalopathy.grade_1_2,
        model.encephalopathy.grade_3_4,
    );
    let level = |u: f64, c: &[f64; 4]| c.iter().filter(|&&x| u > x).count();
    let lam = model.severity_loading;
    let rest = (1.0 - lam * lam).max(0.0).sqrt();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4153_5345_5353);
    let by_id: BTreeMap<&str, &Subject> = subjects
        .iter()
        .map(|s| (s.subject_id.as_str(), s))
        .collect();
    let mut csv = CsvText::new(',', false);
    csv.row(&[
        "study_id",
        "site_id",
        "subject_id",
        "visit",
        "date",
        "ascites",
        "encephalopathy",
    ]);
    let mut seen = std::collections::BTreeSet::new();
    for r in rows {
        if !seen.insert((r.subject_id.as_str(), r.date)) {
            continue;
        }
        let z = by_id.get(r.subject_id.as_str()).map_or(0.0, |s| s.severity);
        let u_asc = lam * z + rest * normal(&mut rng);
        let u_enc = lam * z + rest * normal(&mut rng);
        let mut a = ["none", "slight", "slight", "moderate", "severe"][level(u_asc, &asc)];
        let mut e = ["0", "1", "2", "3", "4"][level(u_enc, &enc)];
        if rng.random::<f64>() < sim.messiness.blank_rate {
            a = "";
        }
        if rng.random::<f64>() < sim.messiness.blank_rate {
            e = "";
        }
        csv.row(&[
            &lp.pipeline.study.id,
            &sim.sites[r.site].id,
            &r.subject_id,
            &r.visit,
            &r.date.to_string(),
            a,
            e,
        ]);
    }
    csv.finish()
}

fn write(path: &Path, text: String) -> Result<PathBuf, SimulateError> {
    std::fs::write(path, text).map_err(|source| SimulateError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(path.to_path_buf())
}

fn to_latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| {
            if (c as u32) < 256 {
                c as u32 as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// Minimal CSV text builder: quotes fields that contain the delimiter, quotes or line breaks.
struct CsvText {
    delim: char,
    eol: &'static str,
    out: String,
}

impl CsvText {
    fn new(delim: char, crlf: bool) -> Self {
        CsvText {
            delim,
            eol: if crlf { "\r\n" } else { "\n" },
            out: String::new(),
        }
    }
    fn row(&mut self, fields: &[&str]) {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.out.push(self.delim);
            }
            if f.contains(self.delim) || f.contains('"') || f.contains('\n') || f.contains('\r') {
                self.out.push('"');
                self.out.push_str(&f.replace('"', "\"\""));
                self.out.push('"');
            } else {
                self.out.push_str(f);
            }
        }
        self.out.push_str(self.eol);
    }
    /// Append fields to the row written last.
    fn extend_last(&mut self, fields: &[&str]) {
        let cut = self.out.len() - self.eol.len();
        self.out.truncate(cut);
        for f in fields {
            self.out.push(self.delim);
            if f.contains(self.delim) || f.contains('"') || f.contains('\n') || f.contains('\r') {
                self.out.push('"');
                self.out.push_str(&f.replace('"', "\"\""));
                self.out.push('"');
            } else {
                self.out.push_str(f);
            }
        }
        self.out.push_str(self.eol);
    }
    fn finish(self) -> String {
        self.out
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    Normal::new(0.0, 1.0).expect("unit normal").sample(rng)
}

fn exp_time(rng: &mut ChaCha8Rng, rate_per_day: f64) -> Option<f64> {
    if rate_per_day > 0.0 && rate_per_day.is_finite() {
        Exp::new(rate_per_day).ok().map(|d| d.sample(rng))
    } else {
        None
    }
}

fn make_subjects(
    lp: &LoadedPipeline,
    sim: &Simulation,
    n: usize,
    start: NaiveDate,
    seed: u64,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Subject>, SimulateError> {
    let arms = &lp.pipeline.arms;
    // Site of each subject, by weight.
    let total_w: u32 = sim.sites.iter().map(|s| s.weight.max(1)).sum();
    let mut per_site: Vec<Vec<i64>> = vec![Vec::new(); sim.sites.len()];
    for _ in 0..n {
        let mut x = rng.random_range(0..total_w);
        let mut site = 0;
        for (i, s) in sim.sites.iter().enumerate() {
            let w = s.weight.max(1);
            if x < w {
                site = i;
                break;
            }
            x -= w;
        }
        per_site[site].push(rng.random_range(0..=i64::from(sim.accrual_days)));
    }
    // Permuted blocks within site: each block holds every arm `ratio` times, twice.
    let block: Vec<usize> = arms
        .iter()
        .enumerate()
        .flat_map(|(i, a)| std::iter::repeat_n(i, 2 * a.ratio.max(1) as usize))
        .collect();
    let cut = start + Days::new((sim.followup_months * DAYS_PER_MONTH).round() as u64);
    let lambda0 = std::f64::consts::LN_2 / (sim.survival.control_median_months * DAYS_PER_MONTH);
    // Extra subject columns come from their own stream: declaring them changes nothing else.
    let mut col_rng = ChaCha8Rng::seed_from_u64(seed ^ COLUMN_STREAM);
    let mut out = Vec::with_capacity(n);
    for (si, offsets) in per_site.iter_mut().enumerate() {
        offsets.sort_unstable();
        let mut pending: Vec<usize> = Vec::new();
        for (k, off) in offsets.iter().enumerate() {
            if pending.is_empty() {
                pending = block.clone();
                // Fisher-Yates.
                for i in (1..pending.len()).rev() {
                    let j = rng.random_range(0..=i);
                    pending.swap(i, j);
                }
            }
            let arm_idx = pending.pop().expect("non-empty block");
            let arm = &arms[arm_idx];
            let experimental =
                arm.role == ArmRole::Experimental && arms.len() > 1 || arms.len() == 1;
            let rand_date = start + Days::new(*off as u64);
            let sex = if rng.random::<f64>() < sim.male_fraction {
                "M"
            } else {
                "F"
            };
            let age = (sim.age.mean + sim.age.sd * normal(rng))
                .clamp(sim.age.min, sim.age.max)
                .floor() as u32;
            let consent_offset = rng.random_range(7..=28_i64);
            let birth_date =
                rand_date - Days::new(u64::from(age) * 365 + rng.random_range(0..365_u64) + 1);
            let initials: String = (0..2)
                .map(|_| (b'A' + rng.random_range(0..26_u8)) as char)
                .collect();
            let severity = normal(rng);
            let hr = if experimental && arms.len() > 1 {
                sim.survival.hazard_ratio
            } else {
                1.0
            };
            let consent = rand_date - Days::new(consent_offset as u64);
            let (extra, column_log_hr) = subject_columns(sim, consent, &mut col_rng);
            let rate =
                lambda0 * hr * (sim.survival.severity_log_hr * severity + column_log_hr).exp();
            let t_death = exp_time(rng, rate);
            let t_tx = exp_time(rng, sim.survival.transplant_per_year / 365.25);
            let t_wd = exp_time(rng, sim.survival.withdrawal_per_year / 365.25);
            let admin = (cut - rand_date).num_days().max(1);
            let day = |t: f64| (t.ceil() as i64).max(1);
            let mut end = admin;
            let mut withdrawal = None;
            if let Some(t) = t_wd.map(day)
                && t < end
                && t_death.map(day).is_none_or(|d| t < d)
            {
                withdrawal = Some(t);
                end = t;
            }
            let death = t_death.map(day).filter(|d| *d <= end);
            if let Some(d) = death {
                end = d;
            }
            let transplant = t_tx.map(day).filter(|d| *d < end);
            let doses = (0..sim.doses)
                .filter(|k| i64::from(*k) * i64::from(sim.dose_interval_days) < end)
                .count() as u32;
            out.push(Subject {
                site: si,
                subject_id: format!("{}-{:03}", sim.sites[si].id, k + 1),
                arm: arm.code.clone(),
                experimental,
                rand_date,
                consent_offset,
                sex,
                age,
                birth_date,
                initials,
                severity,
                end_offset: end,
                death,
                transplant,
                withdrawal,
                doses,
                extra,
            });
        }
    }
    Ok(out)
}

/// The values of the extra subject columns of one subject, and the sum of their log hazard
/// ratios.
fn subject_columns(
    sim: &Simulation,
    consent: NaiveDate,
    rng: &mut ChaCha8Rng,
) -> (Vec<String>, f64) {
    let mut values = Vec::with_capacity(sim.subject_columns.len());
    let mut log_hr = 0.0;
    for c in &sim.subject_columns {
        let blank = c.missing_rate > 0.0 && rng.random::<f64>() < c.missing_rate;
        let v = if !c.values.is_empty() {
            let w: Vec<f64> = if c.weights.len() == c.values.len() {
                c.weights.clone()
            } else {
                vec![1.0; c.values.len()]
            };
            let mut x = rng.random::<f64>() * w.iter().sum::<f64>();
            let mut k = c.values.len() - 1;
            for (i, wi) in w.iter().enumerate() {
                if x < *wi {
                    k = i;
                    break;
                }
                x -= wi;
            }
            if !blank {
                log_hr += c.log_hr.get(&c.values[k]).copied().unwrap_or(0.0);
            }
            c.values[k].clone()
        } else if let Some(m) = &c.normal {
            let x = (m.mean + m.sd * normal(rng)).clamp(m.min, m.max);
            format!("{:.*}", c.decimals as usize, x)
        } else if let Some(d) = c.days_before_consent {
            let back = rng.random_range(d.min..=d.max);
            (consent - Days::new(u64::from(back))).to_string()
        } else {
            String::new()
        };
        values.push(if blank { String::new() } else { v });
    }
    (values, log_hr)
}

/// Study day (CDISC, no day 0) to an offset in days from the reference date.
fn day_to_offset(day: i32) -> i64 {
    if day >= 1 {
        i64::from(day) - 1
    } else {
        i64::from(day)
    }
}

/// A day outside every window, near the given window (for out-of-window visits).
fn outside_day(w: &Window, windows: &[Window], rng: &mut ChaCha8Rng) -> Option<i32> {
    let inside = |d: i32| d == 0 || windows.iter().any(|x| d >= x.low && d <= x.high);
    let after: Vec<i32> = (w.high + 1..=w.high + 40).filter(|d| !inside(*d)).collect();
    let before: Vec<i32> = (w.low - 40..w.low)
        .filter(|d| !inside(*d) && *d > 1)
        .collect();
    let pool = if after.is_empty() { before } else { after };
    if pool.is_empty() {
        None
    } else {
        Some(pool[rng.random_range(0..pool.len())])
    }
}

struct TestModel<'a> {
    code: &'a str,
    name: &'a str,
    std_unit: &'a str,
    decimals: u32,
    lab: &'a SimLab,
    normal: Option<crate::spec::NormalRange>,
    /// The unit registry with the test's declared conversions.
    registry: Registry,
}

fn make_labs(
    lp: &LoadedPipeline,
    sim: &Simulation,
    subjects: &[Subject],
    rng: &mut ChaCha8Rng,
) -> Result<Vec<LabRow>, SimulateError> {
    let p = &lp.pipeline;
    let windows = &p.visits.windows;
    let baseline_name = windows
        .get(p.visits.baseline_index())
        .map(|w| w.name.clone())
        .unwrap_or_default();
    let tests: Vec<TestModel> = p
        .labs
        .iter()
        .filter_map(|t| {
            sim.labs.get(&t.code).map(|lab| TestModel {
                code: &t.code,
                name: &t.name,
                std_unit: &t.unit,
                decimals: t.decimals.unwrap_or(lab.decimals),
                lab,
                normal: t.normal,
                registry: t.registry_or_builtin(),
            })
        })
        .collect();
    // Conversion from the standard unit to each site's unit, per test.
    let mut site_conv: Vec<BTreeMap<&str, (String, Conversion, u32)>> = Vec::new();
    for (si, site) in sim.sites.iter().enumerate() {
        let mut m = BTreeMap::new();
        for t in &tests {
            if !t.lab.categories.is_empty() {
                m.insert(t.code, (String::new(), Conversion::Identity, 0));
                continue;
            }
            let unit = site
                .units
                .get(t.code)
                .cloned()
                .unwrap_or_else(|| t.std_unit.to_string());
            let conv = t
                .registry
                .conversion(t.code, t.std_unit, &unit)
                .map_err(|e| SimulateError::Model {
                    path: lp.path.clone(),
                    key: format!("simulation.sites[{si}].units.{}", t.code),
                    message: e.to_string(),
                })?;
            let dec = match conv {
                Conversion::Linear { factor } if factor < 1.0 => {
                    t.decimals + (-factor.log10()).ceil() as u32
                }
                // A log10 standard reported on the linear scale (copies/mL): whole numbers.
                Conversion::FromLog10 { .. } => 0,
                _ => t.decimals,
            };
            m.insert(t.code, (unit, conv, dec));
        }
        site_conv.push(m);
    }
    let mess = &sim.messiness;
    let mut rows = Vec::new();
    for s in subjects {
        let site: &SimSite = &sim.sites[s.site];
        // Subject effects per test.
        let b: Vec<f64> = tests
            .iter()
            .map(|t| {
                let l = t.lab;
                let lam = l.severity_loading;
                let rest = (l.correlation - lam * lam).max(0.0).sqrt();
                l.sd * (lam * s.severity + rest * normal(rng))
            })
            .collect();
        // Visits: (label, study day, window used for the mean).
        let mut visits: Vec<(String, i32, Option<&Window>)> = Vec::new();
        for (wi, w) in windows.iter().enumerate() {
            let is_base = w.name == baseline_name;
            let mut day = if is_base {
                let lo = (-(s.consent_offset as i32) + 1).max(w.low);
                rng.random_range(lo.min(w.high)..=w.high)
            } else {
                let spread = f64::from(w.high - w.low) / 6.0;
                let d = (f64::from(w.target) + spread * normal(rng)).round() as i32;
                d.clamp(w.low, w.high)
            };
            if day == 0 {
                day = -1;
            }
            if !is_base
                && rng.random::<f64>() < mess.out_of_window_rate
                && let Some(d) = outside_day(w, windows, rng)
            {
                day = d;
            }
            if day_to_offset(day) >= s.end_offset {
                break;
            }
            visits.push((w.name.clone(), day, Some(w)));
            // An unscheduled visit between this window and the next.
            if let Some(next) = windows.get(wi + 1)
                && rng.random::<f64>() < mess.unscheduled_rate
            {
                let lo = day.max(1) + 1;
                let hi = next.target - 1;
                if lo < hi {
                    let d = rng.random_range(lo..=hi);
                    if day_to_offset(d) < s.end_offset {
                        visits.push(("UNSCHEDULED".to_string(), d, Some(w)));
                    }
                }
            }
        }
        let e_sd = |l: &SimLab| l.sd * (1.0 - l.correlation).max(0.0).sqrt();
        for (label, day, win) in visits {
            let date = s.rand_date + chrono::TimeDelta::days(day_to_offset(day));
            for (ti, t) in tests.iter().enumerate() {
                let l = t.lab;
                let wname = win.map(|w| w.name.as_str()).unwrap_or("");
                let change = l.control_change.get(wname).copied().unwrap_or(0.0);
                // Single-arm trials mark every subject experimental: the effect is the change.
                let effect = if s.experimental {
                    l.effect.get(wname).copied().unwrap_or(0.0)
                } else {
                    0.0
                };
                let y = l.mean + change + effect + b[ti] + e_sd(l) * normal(rng);
                let mut value = match l.scale {
                    SimScale::Linear => y,
                    SimScale::Log => y.exp(),
                };
                if l.zero_below.is_some_and(|z| value < z) {
                    value = 0.0;
                }
                let (unit, conv, dec) = &site_conv[s.site][t.code];
                let to_site = |v: f64| conv.apply(v).unwrap_or(v);
                let fmt = |v: f64| {
                    let txt = format!("{:.*}", *dec as usize, v);
                    if site.decimal_comma {
                        txt.replace('.', ",")
                    } else {
                        txt
                    }
                };
                let category = (!l.categories.is_empty()).then(|| {
                    let k = l.cuts.iter().filter(|c| y > **c).count();
                    l.categories[k.min(l.categories.len() - 1)].clone()
                });
                let mut result = if let Some(c) = &category {
                    c.clone()
                } else if l.lloq.is_some_and(|q| value < q) {
                    format!("<{}", fmt(to_site(l.lloq.unwrap_or(0.0))))
                } else if l.uloq.is_some_and(|q| value > q) {
                    format!(">{}", fmt(to_site(l.uloq.unwrap_or(0.0))))
                } else if rng.random::<f64>() < mess.implausible_rate {
                    fmt(to_site(value) * 1000.0)
                } else {
                    fmt(to_site(value))
                };
                let numeric = category.is_none() && !result.starts_with(['<', '>']);
                let u: f64 = rng.random();
                if u < mess.blank_rate {
                    result.clear();
                } else if u < mess.blank_rate + mess.not_done_rate {
                    result = "ND".to_string();
                }
                let mut unit_txt = unit.clone();
                let u: f64 = rng.random();
                if u < mess.unit_typo_rate {
                    if let Some(c) = unit_txt.chars().last() {
                        unit_txt.push(c);
                    }
                } else if u < mess.unit_typo_rate + mess.unit_spelling_rate {
                    unit_txt = spelling_variant(&unit_txt);
                }
                if category.is_some() {
                    unit_txt.clear();
                }
                let (lo, hi) = t
                    .normal
                    .filter(|_| category.is_none())
                    .map(|n| n.for_sex(Some(s.sex)))
                    .unwrap_or((None, None));
                let rng_txt = |v: Option<f64>| v.map(|v| fmt(to_site(v))).unwrap_or_default();
                let row = LabRow {
                    site: s.site,
                    subject_id: s.subject_id.clone(),
                    visit: label.clone(),
                    date,
                    code: t.code.to_string(),
                    name: t.name.to_string(),
                    result: result.clone(),
                    unit: unit_txt,
                    ref_low: rng_txt(lo),
                    ref_high: rng_txt(hi),
                };
                let numeric = numeric && !result.is_empty() && result != "ND";
                let u: f64 = rng.random();
                if numeric && u < mess.duplicate_rate {
                    rows.push(row.clone_row());
                } else if numeric && u < mess.duplicate_rate + mess.conflict_rate {
                    let mut other = row.clone_row();
                    other.result = fmt(to_site(value) * 1.1 + 10f64.powi(-(*dec as i32)));
                    rows.push(other);
                }
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

impl LabRow {
    fn clone_row(&self) -> LabRow {
        LabRow {
            site: self.site,
            subject_id: self.subject_id.clone(),
            visit: self.visit.clone(),
            date: self.date,
            code: self.code.clone(),
            name: self.name.clone(),
            result: self.result.clone(),
            unit: self.unit.clone(),
            ref_low: self.ref_low.clone(),
            ref_high: self.ref_high.clone(),
        }
    }
}

/// A harmless spelling variant of a unit that the registry still recognizes.
fn spelling_variant(unit: &str) -> String {
    if let Some(rest) = unit.strip_prefix('u') {
        // The micro sign, as Latin-1 exports write it.
        format!("\u{00B5}{rest}")
    } else {
        unit.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_day_has_no_zero() {
        assert_eq!(day_to_offset(1), 0);
        assert_eq!(day_to_offset(-1), -1);
        assert_eq!(day_to_offset(85), 84);
    }

    #[test]
    fn csv_text_quotes_delimiters() {
        let mut t = CsvText::new(';', true);
        t.row(&["a;b", "c\"d", "e"]);
        assert_eq!(t.finish(), "\"a;b\";\"c\"\"d\";e\r\n");
    }

    #[test]
    fn spelling_variants_stay_known() {
        let r = Registry::builtin();
        for u in ["umol/L", "mg/dL", "g/L", "10^9/L", "U/L", "mmol/L"] {
            let v = spelling_variant(u);
            assert_ne!(v, u);
            assert_eq!(r.canonical(&v), r.canonical(u), "{u} -> {v}");
        }
    }
}
