//! MMRM options from the pipeline file reach the fit: covariance chain, Kenward-Roger df, the
//! BASE × AVISIT term and the LOCF sensitivity fit.

use std::path::Path;
use std::process::Command;

#[test]
fn mmrm_options_are_applied() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze_options");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    let base = std::fs::read_to_string("pipelines/msc_cirrhosis.toml").unwrap();
    let abs = std::fs::canonicalize("sample_data/msc_cirrhosis").unwrap();
    let text = base
        .replace("../sample_data/msc_cirrhosis", &abs.to_string_lossy())
        .replace(
            "[derive]\nscores",
            "[derive]\nmissing_visits = \"locf\"\nscores",
        )
        .replace(
            "covariance = [\"un\", \"toeph\", \"arh1\", \"csh\", \"cs\"]   # the first that converges is used\nestimation = \"reml\"\ndf = \"satterthwaite\"",
            "covariance = [\"cs\"]\nestimation = \"reml\"\ndf = \"kenward_roger\"\nbase_by_visit = true\nlocf_sensitivity = true",
        );
    assert!(text.contains("locf_sensitivity = true") && text.contains("missing_visits = \"locf\""));
    let pipeline = dir.join("pipelines/opts.toml");
    std::fs::write(&pipeline, text).unwrap();
    let out = dir.join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .args(["--quiet", "run"])
        .arg(&pipeline)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let csv = std::fs::read_to_string(out.join("results/comparisons.csv")).unwrap();
    let mmrm: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains(",mmrm_difference,"))
        .collect();
    let locf: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains(",mmrm_locf_difference,"))
        .collect();
    assert_eq!(mmrm.len(), 18, "6 parameters × 3 visits");
    assert_eq!(locf.len(), 18);
    for l in mmrm.iter().chain(&locf) {
        assert!(
            l.contains("BASE:AVISIT")
                && l.contains("CompoundSymmetry covariance, Reml, KenwardRoger df"),
            "{l}"
        );
    }
    assert!(locf.iter().all(|l| l.contains("(with LOCF rows)")));
    // LOCF rows exist in ADLB and carry DTYPE.
    let adlb = trialpipe::store::read_parquet_text(&out.join("adam/adlb.parquet")).unwrap();
    let dtype = adlb.iter().find(|c| c.name == "DTYPE").unwrap();
    assert!(dtype.values.iter().any(|v| v.as_deref() == Some("LOCF")));
}
