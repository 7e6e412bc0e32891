//! A single-arm pipeline (the seed-001 design): within-arm paired t and signed-rank on change,
//! and an MMRM without an arm term whose per-visit LS-means match nlme::gls + emmeans.

use std::path::Path;
use std::process::Command;

mod common;

#[test]
fn single_arm_analyses_and_mmrm_without_arm_term() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("single_arm");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    let base = std::fs::read_to_string("pipelines/msc_cirrhosis.toml").unwrap();
    let abs = std::fs::canonicalize("sample_data/msc_cirrhosis").unwrap();
    let saline = "[[arms]]\ncode = \"SALINE\"\nlabel = \"Saline + conventional treatment\"   # 3 infusions, 4 weeks apart\nrole = \"control\"\nratio = 1\n";
    assert!(base.contains(saline));
    let text = base
        .replace(saline, "")
        .replace("../sample_data/msc_cirrhosis", &abs.to_string_lossy());
    let pipeline = dir.join("pipelines/single.toml");
    std::fs::write(&pipeline, text).unwrap();
    let out = dir.join("out");
    common::run_expecting_warnings(&pipeline, &out);
    let csv = std::fs::read_to_string(out.join("results/comparisons.csv")).unwrap();
    let methods: std::collections::BTreeSet<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    for m in [
        "t_paired",
        "wilcoxon_signed_rank",
        "mmrm_lsmean",
        "km_median",
    ] {
        assert!(methods.contains(m), "{m} missing: {methods:?}");
    }
    for m in [
        "t_welch",
        "mmrm_difference",
        "log_rank",
        "ancova_difference",
    ] {
        assert!(!methods.contains(m), "{m} should not be there for one arm");
    }

    // MMRM LS-means per visit for ALB against nlme::gls + emmeans, on the same ADLB records.
    let adlb = trialpipe::store::read_parquet_text(&out.join("adam/adlb.parquet")).unwrap();
    let col = |n: &str| &adlb.iter().find(|c| c.name == n).unwrap().values;
    let (usubjid, param, visit, anl, base_v, chg, arm) = (
        col("USUBJID"),
        col("PARAMCD"),
        col("AVISIT"),
        col("ANL01FL"),
        col("BASE"),
        col("CHG"),
        col("ARMCD"),
    );
    let mut w = csv::Writer::from_path(dir.join("alb.csv")).unwrap();
    w.write_record(["USUBJID", "AVISIT", "BASE", "CHG"])
        .unwrap();
    for i in 0..usubjid.len() {
        if param[i].as_deref() == Some("ALB")
            && anl[i].as_deref() == Some("Y")
            && arm[i].as_deref() == Some("MSC")
            && chg[i].is_some()
            && base_v[i].is_some()
            && visit[i].as_deref().is_some_and(|v| v.starts_with("WEEK"))
        {
            let s = |v: &Option<String>| v.clone().unwrap_or_default();
            w.write_record([s(&usubjid[i]), s(&visit[i]), s(&base_v[i]), s(&chg[i])])
                .unwrap();
        }
    }
    w.flush().unwrap();
    let script = r#"
suppressPackageStartupMessages({ library(nlme); library(emmeans) })
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[1]); d$AVISIT <- factor(d$AVISIT, levels = c("WEEK 12", "WEEK 24", "WEEK 48"))
d$VN <- as.integer(d$AVISIT); d$SUBJ <- factor(d$USUBJID)
fit <- gls(CHG ~ BASE + AVISIT, data = d, correlation = corSymm(form = ~ VN | SUBJ),
  weights = varIdent(form = ~ 1 | AVISIT), method = "REML",
  control = glsControl(tolerance = 1e-12, msTol = 1e-12, opt = "optim", maxIter = 500, msMaxIter = 500))
s <- summary(emmeans(fit, ~ AVISIT, mode = "df.error"))
write.csv(data.frame(visit = s$AVISIT, est = format(s$emmean, digits = 17), se = format(s$SE, digits = 17)), a[2], row.names = FALSE)
"#;
    std::fs::write(dir.join("mmrm1.R"), script).unwrap();
    let r = Command::new("Rscript")
        .arg(dir.join("mmrm1.R"))
        .arg(dir.join("alb.csv"))
        .arg(dir.join("r.csv"))
        .output()
        .expect("Rscript not found: apt-get install r-base-core r-cran-nlme r-cran-emmeans");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let mut rd = csv::Reader::from_path(dir.join("r.csv")).unwrap();
    let mut compared = 0;
    for rec in rd.records() {
        let rec = rec.unwrap();
        let (v, est, se): (&str, f64, f64) = (
            &rec[0],
            rec[1].trim().parse().unwrap(),
            rec[2].trim().parse().unwrap(),
        );
        let ours = csv
            .lines()
            .find(|l| l.contains(",mmrm_lsmean,ALB,") && l.contains(&format!(",{v},")))
            .unwrap_or_else(|| panic!("no mmrm_lsmean row for ALB {v}"));
        let f: Vec<&str> = ours.split(',').collect();
        let (e2, se2): (f64, f64) = (f[7].parse().unwrap(), f[8].parse().unwrap());
        assert!(
            (e2 - est).abs() <= 1e-3 * se,
            "{v}: estimate {e2} vs nlme {est}"
        );
        assert!((se2 - se).abs() <= 1e-3 * se, "{v}: SE {se2} vs nlme {se}");
        compared += 1;
    }
    assert_eq!(compared, 3);
}
