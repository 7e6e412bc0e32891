//! MMRM speed benchmark helper, used by `benches/mmrm.sh` (`make bench-mmrm`).
//!
//! ```sh
//! cargo run --release --example mmrm_bench -- generate --subjects 10000 --seed 20261123 --out data.csv
//! cargo run --release --example mmrm_bench -- fit data.csv
//! ```
//!
//! `generate` writes a synthetic, seeded trial in long format (`USUBJID,ARM,AVISIT,AVISITN,BASE,CHG`,
//! one row per observed post-baseline visit, VIS1 to VIS3, with monotone dropout and some
//! intermittent missing visits). The same seed and size always give the same file.
//!
//! `fit` reads such a file (timed as `read_seconds`: parsing and coding the subject
//! identifiers) and fits (timed as `fit_seconds`: `fit_mmrm` from the arrays to the result) the
//! model the analyze stage fits for an MMRM analysis, `CHG ~ BASE + AVISIT + ARM + AVISIT:ARM`
//! with unstructured covariance, REML and Satterthwaite degrees of freedom, through
//! `trialpipe::stats::mmrm::fit_mmrm`, and prints one JSON object: the two wall times, sizes,
//! the threads used, `-2 log L`, the coefficients with standard errors, the visit covariance
//! matrix and the arm differences per visit.

use std::error::Error;
use std::io::Write;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde_json::json;
use trialpipe::stats::mmrm::{MmrmData, MmrmSpec, Term, encode_ids, fit_mmrm};
use trialpipe::stats::{Covariate, Factor};

const VISITS: [&str; 3] = ["VIS1", "VIS2", "VIS3"];
const ARMS: [&str; 2] = ["PBO", "TRT"];

fn usage() -> Box<dyn Error> {
    "usage: mmrm_bench generate --subjects N --seed S --out FILE.csv | mmrm_bench fit FILE.csv"
        .into()
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("generate") => {
            let mut subjects = None;
            let mut seed = None;
            let mut out = None;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                let v = it.next().ok_or_else(usage)?;
                match a.as_str() {
                    "--subjects" => subjects = Some(v.parse::<usize>()?),
                    "--seed" => seed = Some(v.parse::<u64>()?),
                    "--out" => out = Some(v.clone()),
                    _ => return Err(usage()),
                }
            }
            match (subjects, seed, out) {
                (Some(n), Some(s), Some(o)) => generate(n, s, &o),
                _ => Err(usage()),
            }
        }
        Some("fit") if args.len() == 2 => fit(&args[1]),
        _ => Err(usage()),
    }
}

/// Writes `n` subjects: arms 1:1 in random order, `BASE ~ N(50, 10²)`, post-baseline changes with
/// an unstructured visit covariance (SD 5, 6, 7; correlations 0.6, 0.4, 0.5), a baseline slope of
/// -0.3, visit effects and a treatment effect growing over the visits; each visit is missed with
/// probability 0.03 and a subject drops out before visit 2 or 3 with probability 0.08 each.
fn generate(n: usize, seed: u64, path: &str) -> Result<(), Box<dyn Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sd = [5.0, 6.0, 7.0];
    let corr = [[1.0, 0.6, 0.4], [0.6, 1.0, 0.5], [0.4, 0.5, 1.0]];
    // Cholesky factor of the covariance.
    let mut cov = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            cov[i][j] = corr[i][j] * sd[i] * sd[j];
        }
    }
    let mut l = [[0.0_f64; 3]; 3];
    for j in 0..3 {
        let d = cov[j][j] - (0..j).map(|k| l[j][k] * l[j][k]).sum::<f64>();
        l[j][j] = d.sqrt();
        for i in (j + 1)..3 {
            let s = cov[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            l[i][j] = s / l[j][j];
        }
    }
    let visit_effect = [-2.0, -3.5, -4.0];
    let trt_effect = [-1.0, -2.0, -3.0];
    let width = n.to_string().len().max(5);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(w, "USUBJID,ARM,AVISIT,AVISITN,BASE,CHG")?;
    for s in 0..n {
        let arm = usize::from(rng.random::<bool>());
        let base = 50.0 + 10.0 * rng.sample::<f64, _>(StandardNormal);
        let z: [f64; 3] = std::array::from_fn(|_| rng.sample::<f64, _>(StandardNormal));
        let mut dropped = false;
        for v in 0..3 {
            if v > 0 && rng.random::<f64>() < 0.08 {
                dropped = true;
            }
            let missed = rng.random::<f64>() < 0.03;
            if dropped || missed {
                continue;
            }
            let e: f64 = (0..=v).map(|k| l[v][k] * z[k]).sum();
            let chg = visit_effect[v] - 0.3 * (base - 50.0) + arm as f64 * trt_effect[v] + e;
            writeln!(
                w,
                "S{s:0width$},{},{},{},{base:.4},{chg:.4}",
                ARMS[arm],
                VISITS[v],
                v + 1
            )?;
        }
    }
    w.flush()?;
    Ok(())
}

fn fit(path: &str) -> Result<(), Box<dyn Error>> {
    let t0 = Instant::now();
    let mut rdr = csv::Reader::from_path(path)?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{path}: no column {name}"))
    };
    let (c_id, c_arm, c_visit, c_base, c_chg) = (
        col("USUBJID")?,
        col("ARM")?,
        col("AVISIT")?,
        col("BASE")?,
        col("CHG")?,
    );
    let mut ids: Vec<String> = Vec::new();
    let mut arm = Vec::new();
    let mut visit = Vec::new();
    let mut base = Vec::new();
    let mut chg = Vec::new();
    let mut rec = csv::ByteRecord::new();
    let level = |field: &[u8], levels: &[&str], what: &str| {
        levels
            .iter()
            .position(|l| l.as_bytes() == field)
            .ok_or_else(|| format!("{path}: unknown {what} {}", String::from_utf8_lossy(field)))
    };
    let number = |field: &[u8]| -> Result<f64, Box<dyn Error>> {
        let s = std::str::from_utf8(field)?;
        Ok(if s == "NA" || s.is_empty() {
            f64::NAN
        } else {
            s.parse()?
        })
    };
    while rdr.read_byte_record(&mut rec)? {
        ids.push(String::from_utf8(rec[c_id].to_vec())?);
        arm.push(level(&rec[c_arm], &ARMS, "arm")?);
        visit.push(level(&rec[c_visit], &VISITS, "visit")?);
        base.push(number(&rec[c_base])?);
        chg.push(number(&rec[c_chg])?);
    }
    let subject = encode_ids(&ids);
    let read_seconds = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let factors = [
        Factor {
            name: "AVISIT",
            levels: &VISITS,
            codes: &visit,
        },
        Factor {
            name: "ARM",
            levels: &ARMS,
            codes: &arm,
        },
    ];
    let covariates = [Covariate {
        name: "BASE",
        values: &base,
    }];
    let data = MmrmData {
        response: &chg,
        subject: &subject,
        factors: &factors,
        covariates: &covariates,
    };
    let spec = MmrmSpec::new(
        vec![
            Term::covariate("BASE"),
            Term::factor("AVISIT"),
            Term::factor("ARM"),
            Term::interaction("AVISIT", "ARM"),
        ],
        "AVISIT",
    )
    .with_arm("ARM");
    let f = fit_mmrm(&data, &spec)?;
    let fit_seconds = t1.elapsed().as_secs_f64();

    let coefficients: Vec<_> = f
        .fixed_effects
        .iter()
        .map(|c| json!({"name": c.name, "estimate": c.estimate, "se": c.se, "df": c.df}))
        .collect();
    let differences: Vec<_> = f
        .arm_differences
        .iter()
        .map(|d| {
            json!({"visit": d.visit, "estimate": d.result.estimate, "se": d.result.se,
                   "df": d.result.df, "p_value": d.result.p_value})
        })
        .collect();
    let out = json!({
        "file": path,
        "model": "CHG ~ BASE + AVISIT + ARM + AVISIT:ARM, UN, REML, Satterthwaite",
        "rows": chg.len(),
        "subjects": f.n_subjects,
        "observations": f.n_obs,
        "patterns": f.n_patterns,
        "threads": rayon::current_num_threads(),
        "read_seconds": read_seconds,
        "fit_seconds": fit_seconds,
        "iterations": f.convergence.iterations,
        "evaluations": f.convergence.evaluations,
        "converged": f.convergence.converged,
        "m2_log_lik": f.m2_log_lik,
        "coefficients": coefficients,
        "covariance": f.covariance,
        "differences": differences,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
