//! Keyed pseudonymization of subject ids: with `[output] pseudonymize`, no site subject id
//! reaches any output (datasets, results, report, manifest, logs); the same key gives the same
//! pseudonyms, another key other ones; a missing key stops the run with exit 4 before anything
//! is written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

const KEY_VAR: &str = "TRIALPIPE_TEST_ID_KEY";

fn run(pipeline: &Path, out: &Path, key: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trialpipe"));
    c.args(["run", "--force"])
        .arg(pipeline)
        .arg("--out")
        .arg(out)
        .env_remove(KEY_VAR);
    if let Some(k) = key {
        c.env(KEY_VAR, k);
    }
    c.output().expect("run trialpipe")
}

/// A copy of the flagship whose `[output]` asks for pseudonyms keyed by `KEY_VAR`.
fn workspace(name: &str) -> PathBuf {
    common::flagship_copy(name, |text| {
        assert!(text.contains("\n[output]\n"));
        text.replace(
            "\n[output]\n",
            &format!("\n[output]\npseudonymize = {{ key_env = \"{KEY_VAR}\" }}\n"),
        )
    })
}

/// Every subject id of the raw subjects file.
fn site_ids() -> Vec<String> {
    let text = std::fs::read_to_string("sample_data/msc_cirrhosis/subjects.csv").unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "subject_id").unwrap();
    let ids: Vec<String> = lines
        .filter_map(|l| l.split(',').nth(col).map(str::to_string))
        .filter(|s| !s.is_empty())
        .collect();
    assert!(ids.len() >= 50, "{} ids", ids.len());
    ids
}

/// All text a reader of the outputs can see: Parquet values (decoded), and every other file.
fn visible_text(dir: &Path) -> String {
    let mut all = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                for c in trialpipe::store::read_parquet_text(&p).unwrap() {
                    for v in c.values.into_iter().flatten() {
                        all.push_str(&v);
                        all.push('\n');
                    }
                }
            } else {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
                all.push('\n');
            }
        }
    }
    all
}

fn adsl_subjids(out: &Path) -> Vec<String> {
    trialpipe::store::read_parquet_text(&out.join("adam/adsl.parquet"))
        .unwrap()
        .into_iter()
        .find(|c| c.name == "SUBJID")
        .unwrap()
        .values
        .into_iter()
        .flatten()
        .collect()
}

#[test]
fn no_site_subject_id_reaches_any_output_and_pseudonyms_follow_the_key() {
    let pipeline = workspace("privacy_pseudonyms");
    let root = pipeline.parent().unwrap().parent().unwrap().to_path_buf();
    let key = "a pseudonymization key of 32 b.";
    let first = run(&pipeline, &root.join("out1"), Some(key));
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out1 = std::fs::canonicalize(root.join("out1")).unwrap();
    let seen = visible_text(&out1) + &String::from_utf8_lossy(&first.stderr);
    let ids = site_ids();
    // Ids look like `01-007`: look for each between non-alphanumeric characters, so that
    // `MSC-LC-01-007` (a USUBJID built from it) counts too.
    for id in &ids {
        let hit = seen.match_indices(id.as_str()).any(|(i, _)| {
            let before = seen[..i].chars().next_back();
            let after = seen[i + id.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_alphanumeric())
        });
        assert!(!hit, "site subject id {id} appears in the outputs");
    }
    let p1 = adsl_subjids(&out1);
    assert!(!p1.is_empty());
    // Derived parameters that join other inputs by subject (Child-Pugh from the assessments
    // file) still find their rows under pseudonyms.
    let adlb = trialpipe::store::read_parquet_text(&out1.join("adam/adlb.parquet")).unwrap();
    let paramcd = adlb.iter().find(|c| c.name == "PARAMCD").unwrap();
    assert!(
        paramcd.values.iter().any(|v| v.as_deref() == Some("CPS")),
        "no Child-Pugh rows under pseudonyms"
    );
    assert!(
        p1.iter().all(|s| s.len() == 17
            && s.starts_with('P')
            && s[1..].chars().all(|c| c.is_ascii_hexdigit())),
        "{p1:?}"
    );
    assert!(!seen.contains(key), "the key itself must not be written");

    // Same key: same pseudonyms. Another key: none in common.
    let again = run(&pipeline, &root.join("out2"), Some(key));
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(adsl_subjids(&root.join("out2")), p1);
    let other = run(
        &pipeline,
        &root.join("out3"),
        Some("another key, also long enough"),
    );
    assert_eq!(other.status.code(), Some(1));
    let p3 = adsl_subjids(&root.join("out3"));
    assert_eq!(p3.len(), p1.len());
    assert!(p3.iter().all(|s| !p1.contains(s)));
}

#[test]
fn a_missing_or_short_key_stops_the_run_before_any_output() {
    let pipeline = workspace("privacy_no_key");
    let root = pipeline.parent().unwrap().parent().unwrap().to_path_buf();
    let out = root.join("out");
    let missing = run(&pipeline, &out, None);
    assert_eq!(missing.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains(&format!(
            "output.pseudonymize: environment variable {KEY_VAR} is not set; it must hold the pseudonymization key (at least 16 bytes)"
        )),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    assert!(!out.exists(), "nothing written without a key");
    let short = run(&pipeline, &out, Some("short"));
    assert_eq!(short.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&short.stderr).contains(&format!(
            "output.pseudonymize: the key in {KEY_VAR} has 5 bytes; at least 16 are required"
        )),
        "{}",
        String::from_utf8_lossy(&short.stderr)
    );
}

#[test]
fn an_assessments_conflict_is_reported_under_the_pseudonym() {
    let pipeline = workspace("privacy_assessments_conflict");
    let root = pipeline.parent().unwrap().parent().unwrap().to_path_buf();
    let file = root.join("sample_data/msc_cirrhosis/assessments.csv");
    let mut text = std::fs::read_to_string(&file).unwrap();
    // The first data row again with another ascites grade: a conflict for 01-001 on its date.
    let first = text.lines().nth(1).unwrap().to_string();
    assert!(first.contains(",01-001,"), "{first}");
    text.push_str(
        &first
            .replace(",none,", ",moderate,")
            .replace(",slight,", ",none,"),
    );
    text.push('\n');
    std::fs::write(&file, text).unwrap();
    let key = "a pseudonymization key of 32 b.";
    let out = root.join("out");
    let o = run(&pipeline, &out, Some(key));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let p = trialpipe::pseudonym::Pseudonymizer::new(key.as_bytes(), KEY_VAR).unwrap();
    let out = std::fs::canonicalize(&out).unwrap();
    let seen = visible_text(&out) + &stderr;
    assert!(!seen.contains("01-001"), "site id in the outputs");
    assert!(
        seen.contains(&format!(
            "subject {} on 2019-02-28 is assessed differently on lines 2, ",
            p.pseudonym("01-001")
        )),
        "no conflict finding under the pseudonym"
    );
}
