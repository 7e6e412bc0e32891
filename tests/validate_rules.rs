//! Every validation rule fires on its own invalid-input fixture (one defect per file under
//! `tests/fixtures/validate/`), with the exact finding asserted; row accounting holds; and the
//! exit codes of `trialpipe validate` are the documented ones.

use std::path::{Path, PathBuf};
use std::process::Command;

use trialpipe::ingest;
use trialpipe::spec::LoadedPipeline;
use trialpipe::validate::{self, Finding, RULES};

const FIX: &str = "tests/fixtures/validate";

fn abs(p: &str) -> String {
    std::fs::canonicalize(p)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A pipeline in a temp dir whose inputs are the fixture's files (or the clean defaults).
fn pipeline_for(fixture: &str, extra: &str) -> PathBuf {
    let pick = |suffix: &str, default: &str| {
        let p = format!("{FIX}/{fixture}{suffix}");
        if Path::new(&p).exists() {
            abs(&p)
        } else {
            abs(default)
        }
    };
    let labs = pick(".csv", &format!("{FIX}/clean.csv"));
    let subjects = pick(".subjects.csv", "tests/fixtures/data/subjects.csv");
    let events = pick(".events.csv", "tests/fixtures/data/events.csv");
    let base = std::fs::read_to_string("tests/fixtures/pipelines/minimal.toml").unwrap();
    let text = base
        .replace("../data/subjects.csv", &subjects)
        .replace("../data/labs.csv", &labs)
        .replace("../data/events.csv", &events)
        + extra;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("validate_{fixture}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn findings(fixture: &str) -> (Vec<Finding>, validate::ValidationOutput) {
    let lp = LoadedPipeline::load(&pipeline_for(fixture, "")).unwrap();
    let data = ingest::ingest(&lp).unwrap();
    let v = validate::validate(&lp, &data);
    // Row accounting: read = accepted + quarantined for every file.
    for f in &v.summary.files {
        assert_eq!(
            f.rows_read,
            f.rows_accepted + f.rows_quarantined,
            "{fixture}: {f:?}"
        );
    }
    (v.findings.clone(), v)
}

/// (fixture, rule, source line, message): the fixture yields exactly this one finding.
const CASES: &[(&str, &str, u64, &str)] = &[
    (
        "field_count",
        "field_count",
        2,
        "the row has a different number of fields than the header",
    ),
    (
        "unknown_test",
        "unknown_test",
        2,
        "test code `XYZ` is not in the lab panel",
    ),
    (
        "unknown_unit",
        "unknown_unit",
        2,
        "unit `g/LL` of ALB is not in the unit registry",
    ),
    (
        "no_unit_path",
        "no_unit_path",
        2,
        "no conversion for ALB from `U/L` to `g/L`",
    ),
    (
        "non_numeric",
        "non_numeric",
        2,
        "result `positive` of numeric test ALB is not a number",
    ),
    (
        "bad_date",
        "bad_date",
        2,
        "collection date `2020-13-45` is not a date (or study day) in the expected form",
    ),
    (
        "unexpected_unit",
        "unexpected_unit",
        2,
        "unit `mg/dL` of ALB is not one of its declared source units g/L, g/dL",
    ),
    (
        "unknown_subject",
        "unknown_subject",
        2,
        "subject 01-999 is not in the subjects file",
    ),
    (
        "implausible",
        "implausible",
        2,
        "ALB 400 g/L is outside the plausible range 5..70 g/L",
    ),
    (
        "before_consent",
        "before_consent",
        2,
        "collected 2019-12-20, before informed consent on 2020-01-01",
    ),
    (
        "after_death",
        "after_death",
        2,
        "collected 2020-10-01, after death on 2020-09-01",
    ),
    (
        "out_of_window",
        "out_of_window",
        2,
        "study day 130 (visit `UNSCHEDULED`) is in no window",
    ),
    (
        "abnormal",
        "abnormal",
        2,
        "ALB 30 g/L is outside the normal range 35..50",
    ),
    ("blank_result", "blank_result", 2, "blank result"),
    ("not_done", "not_done", 2, "result not done"),
    ("censored", "censored", 2, "censored result `<10`"),
    (
        "no_study_day",
        "no_study_day",
        2,
        "no study day: the subject has no reference date",
    ),
    (
        "subject_duplicate",
        "subject_duplicate",
        4,
        "subject 01-001 already appears on line 2",
    ),
    (
        "subject_no_arm",
        "subject_no_arm",
        3,
        "subject 01-002 has no arm",
    ),
    (
        "subject_unknown_arm",
        "subject_unknown_arm",
        3,
        "arm `XYZ` of subject 01-002 is not one of TRT, CTL",
    ),
    (
        "subject_bad_field",
        "subject_bad_field",
        3,
        "age `sixty-one` of subject 01-002 does not parse",
    ),
    (
        "event_unknown_subject",
        "event_unknown_subject",
        4,
        "event DEATH for subject 01-999, who is not in the subjects file",
    ),
    (
        "event_bad_date",
        "event_bad_date",
        4,
        "event date `2020-02-30` is not a date",
    ),
    (
        "event_unknown_type",
        "event_unknown_type",
        4,
        "event `HOSPITALISATION` is not one of DEATH, TRANSPLANT, LAST_CONTACT, WITHDRAWAL",
    ),
];

#[test]
fn clean_fixture_has_no_findings() {
    let (f, v) = findings("clean");
    assert!(f.is_empty(), "{f:#?}");
    assert_eq!(v.summary.verdict, validate::Verdict::Clean);
}

#[test]
fn each_rule_fires_on_its_fixture() {
    let mut failures = Vec::new();
    for (fixture, rule, line, message) in CASES {
        let (f, _) = findings(fixture);
        let got: Vec<(&str, u64, String)> = f
            .iter()
            .map(|x| (x.rule, x.line, x.message.to_string()))
            .collect();
        if got != vec![(*rule, *line, message.to_string())] {
            failures.push(format!(
                "{fixture}: expected [({rule}, {line}, {message})], got {got:?}"
            ));
        }
        let r = validate::rule_by_id(rule).unwrap();
        if let Some(x) = f.first() {
            assert_eq!(x.severity, r.severity, "{fixture}: default severity");
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

const AGE_CRITERION: &str = "\n[[eligibility]]\nid = \"AGE\"\nkind = \"inclusion\"\ndescription = \"Aged 20 to 60\"\nwhen = \"age >= 20 and age <= 60\"\n";

fn findings_with(fixture: &str, extra: &str) -> Vec<Finding> {
    let lp = LoadedPipeline::load(&pipeline_for(fixture, extra)).unwrap();
    let v = validate::validate(&lp, &ingest::ingest(&lp).unwrap());
    v.findings
}

#[test]
fn eligibility_rules_fire_on_their_fixtures() {
    let got = |f: Vec<Finding>| {
        f.into_iter()
            .map(|x| (x.rule, x.line, x.message.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        got(findings_with("ineligible", AGE_CRITERION)),
        vec![(
            "ineligible",
            3,
            "subject 01-002 does not meet: AGE".to_string()
        )]
    );
    assert_eq!(
        got(findings_with("eligibility_unknown", AGE_CRITERION)),
        vec![(
            "eligibility_unknown",
            3,
            "the data cannot show whether subject 01-002 meets: AGE".to_string()
        )]
    );
    let f = got(findings_with(
        "criterion_error",
        &AGE_CRITERION.replace("age >= 20 and age <= 60", "cirrhosis_years > 5"),
    ));
    assert_eq!(f.len(), 4, "{f:#?}");
    // Sorted by file, line, rule: the error, then the unknown verdict it causes, per subject.
    assert_eq!(f[0].0, "criterion_error");
    assert_eq!(f[1].0, "eligibility_unknown");
    assert!(
        f[0].2.starts_with(
            "criterion AGE cannot be evaluated: the subjects file has no column `cirrhosis_years`"
        ),
        "{}",
        f[0].2
    );
}

const HBEAG: &str = "\n[[labs]]\ncode = \"HBEAG\"\nname = \"HBeAg\"\nunit = \"1\"\nresult = \"qualitative\"\nvalues = [\"NEGATIVE\", \"POSITIVE\"]\n";

#[test]
fn qualitative_tests_keep_categories_and_reject_others() {
    let f = findings_with("unexpected_value", HBEAG);
    let got: Vec<(&str, u64, String)> = f
        .iter()
        .map(|x| (x.rule, x.line, x.message.to_string()))
        .collect();
    assert_eq!(
        got,
        vec![(
            "unexpected_value",
            2,
            "result `weak` of qualitative test HBEAG is not one of its declared values".to_string()
        )]
    );
    let lp = LoadedPipeline::load(&pipeline_for("qualitative_ok", HBEAG)).unwrap();
    let data = ingest::ingest(&lp).unwrap();
    let v = validate::validate(&lp, &data);
    assert!(v.findings.is_empty(), "{:#?}", v.findings);
    assert!(v.placement.iter().all(|p| p.selected), "{:?}", v.placement);
    let texts: Vec<_> = data.labs.iter().map(|r| r.result.clone()).collect();
    assert_eq!(
        texts,
        vec![
            ingest::ParsedResult::Text("NEGATIVE".into()),
            ingest::ParsedResult::Text("POSITIVE".into())
        ]
    );
}

#[test]
fn duplicates_quarantine_the_right_rows() {
    let (f, v) = findings("duplicate_exact");
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].rule, f[0].line), ("duplicate_exact", 3));
    assert!(
        f[0].message.to_string().starts_with("exact copy of "),
        "{}",
        f[0].message
    );
    assert!(
        f[0].message.to_string().ends_with("duplicate_exact.csv:2"),
        "{}",
        f[0].message
    );
    assert_eq!(v.labs[0].quarantine, Vec::<&str>::new());
    assert_eq!(v.labs[1].quarantine, vec!["duplicate_exact"]);

    let (f, v) = findings("duplicate_conflict");
    assert_eq!(
        f.iter().map(|x| (x.rule, x.line)).collect::<Vec<_>>(),
        vec![("duplicate_conflict", 2), ("duplicate_conflict", 3)]
    );
    assert!(
        f[0].message
            .to_string()
            .starts_with("ALB on 2020-04-03 has conflicting results: "),
        "{}",
        f[0].message
    );
    assert!(
        v.labs
            .iter()
            .all(|d| d.quarantine == vec!["duplicate_conflict"])
    );
}

#[test]
fn window_rule_keeps_the_closest_record() {
    let (f, v) = findings("multiple_in_window");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!((f[0].rule, f[0].line), ("multiple_in_window", 3));
    assert!(
        f[0].message
            .to_string()
            .starts_with("window WEEK 12 also holds day 85 ("),
        "{}",
        f[0].message
    );
    assert!(v.placement[0].selected && !v.placement[1].selected);
    assert_eq!(v.placement[1].window, Some(1));
}

#[test]
fn every_rule_has_a_fixture() {
    let covered: Vec<&str> = CASES
        .iter()
        .map(|c| c.1)
        .chain([
            "duplicate_exact",
            "duplicate_conflict",
            "multiple_in_window",
            "unexpected_value",
            "ineligible",
            "eligibility_unknown",
            "criterion_error",
            "assessment_value",
            "assessment_conflict",
            "assessment_unknown_subject",
        ])
        .collect();
    for r in RULES {
        assert!(covered.contains(&r.id), "rule {} has no fixture", r.id);
    }
}

#[test]
fn assessment_rows_that_cannot_be_used_are_findings_and_quarantined() {
    for (fixture, rule, lines, message, subjects) in [
        (
            "assessment_value",
            "assessment_value",
            vec![3],
            "column `ascites`: `tense` is not a declared grade (`none`, `absent`, `slight`, `mild`, `moderate`, `severe`, `moderate-severe`) or blank",
            vec!["01-002"],
        ),
        (
            "assessment_conflict",
            "assessment_conflict",
            vec![2, 3],
            "subject 01-001 on 2020-01-10 is assessed differently on lines 2, 3",
            vec!["01-001", "01-001"],
        ),
        (
            "assessment_unknown_subject",
            "assessment_unknown_subject",
            vec![3],
            "subject 09-999 is not in the subjects file",
            vec!["09-999"],
        ),
    ] {
        let file = abs(&format!("{FIX}/{fixture}.assessments.csv"));
        let extra = format!("\n[inputs.assessments]\npath = \"{file}\"\n");
        let lp = LoadedPipeline::load(&pipeline_for(fixture, &extra)).unwrap();
        let data = ingest::ingest(&lp).unwrap();
        let v = validate::validate(&lp, &data);
        let got: Vec<(&str, u64, String, Option<&str>)> = v
            .findings
            .iter()
            .map(|f| {
                (
                    f.rule,
                    f.line,
                    f.message.to_string(),
                    f.subject_id.as_deref(),
                )
            })
            .collect();
        let want: Vec<(&str, u64, String, Option<&str>)> = lines
            .iter()
            .zip(&subjects)
            .map(|(&l, &s)| (rule, l, message.to_string(), Some(s)))
            .collect();
        assert_eq!(got, want, "{fixture}");
        let acc = v
            .summary
            .files
            .iter()
            .find(|f| f.kind == "assessments")
            .unwrap();
        assert_eq!(
            (acc.rows_read, acc.rows_quarantined, acc.rows_accepted),
            (2, lines.len() as u64, 2 - lines.len() as u64),
            "{fixture}"
        );
        assert!(data.assessments.index.len() == 2 - lines.len(), "{fixture}");
    }
}

#[test]
fn rules_can_be_turned_off_or_reclassified() {
    let lp = LoadedPipeline::load(&pipeline_for(
        "implausible",
        "\n[validation.rules.implausible]\nseverity = \"warning\"\n",
    ))
    .unwrap();
    let v = validate::validate(&lp, &ingest::ingest(&lp).unwrap());
    assert_eq!(v.findings.len(), 1);
    assert_eq!(v.findings[0].severity, trialpipe::spec::Severity::Warning);

    let lp = LoadedPipeline::load(&pipeline_for(
        "abnormal",
        "\n[validation.rules.abnormal]\nenabled = false\n",
    ))
    .unwrap();
    let v = validate::validate(&lp, &ingest::ingest(&lp).unwrap());
    assert!(v.findings.is_empty(), "{:#?}", v.findings);
}

fn validate_exit(pipeline: &Path) -> (i32, String) {
    let out_dir = pipeline.parent().unwrap().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .arg("--quiet")
        .arg("validate")
        .arg(pipeline)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run trialpipe");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes() {
    // 0: clean.
    assert_eq!(validate_exit(&pipeline_for("clean", "")).0, 0);
    // 1: warnings only.
    assert_eq!(validate_exit(&pipeline_for("out_of_window", "")).0, 1);
    // 1: notes alone do not raise the exit code.
    assert_eq!(validate_exit(&pipeline_for("abnormal", "")).0, 0);
    // 1: an error finding under the threshold (1 of 1 rows = 100% > no threshold set).
    assert_eq!(validate_exit(&pipeline_for("implausible", "")).0, 1);
    // 3: error findings over the threshold.
    let (code, stderr) = validate_exit(&pipeline_for(
        "implausible",
        "\n[validation]\nmax_error_percent = 50\n",
    ));
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("lab rows with errors: 1 (100.00%, threshold 50%) -> ErrorsOverThreshold"),
        "{stderr}"
    );
    // 4: unusable input (a lab file without its result column).
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("validate_nocolumn");
    std::fs::create_dir_all(&dir).unwrap();
    let labs = dir.join("labs.csv");
    std::fs::write(
        &labs,
        "study_id,site_id,subject_id,visit,collection_date,test_code,unit\n",
    )
    .unwrap();
    let p = pipeline_for("clean", "");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace(&abs(&format!("{FIX}/clean.csv")), &labs.to_string_lossy());
    let p2 = dir.join("pipeline.toml");
    std::fs::write(&p2, text).unwrap();
    let (code, stderr) = validate_exit(&p2);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:1: required column `result` is missing (header has: study_id, site_id, subject_id, visit, collection_date, test_code, unit)",
            labs.display()
        )),
        "{stderr}"
    );
}
