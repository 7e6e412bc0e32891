//! `trialpipe check` on broken pipeline files: one defect per file, the exact message asserted
//! (file, line, column, key path), and exit code 4 (invalid input).

use std::process::Command;

fn check(fixture: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .args(["check", &format!("tests/fixtures/pipelines/{fixture}.toml")])
        .output()
        .expect("run trialpipe");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fixture fails with exit 4 and stderr holds exactly these problem lines, then the error.
fn assert_problems(fixture: &str, lines: &[&str]) {
    let (code, stdout, stderr) = check(fixture);
    assert_eq!(code, 4, "{fixture}: exit code; stderr:\n{stderr}");
    assert!(
        stdout.is_empty(),
        "{fixture}: stdout should be empty, got {stdout}"
    );
    let got: Vec<&str> = stderr.lines().collect();
    let mut want: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if lines.len() == 1 && !lines[0].starts_with("trialpipe: error: ") && is_parse_error(fixture) {
        want = vec![format!("trialpipe: error: {}", lines[0])];
    } else {
        want.push(format!(
            "trialpipe: error: {} problem(s) in the pipeline file",
            lines.len()
        ));
    }
    assert_eq!(got, want, "{fixture}");
}

/// Syntax and type errors stop parsing, so they come as the error itself.
fn is_parse_error(fixture: &str) -> bool {
    matches!(
        fixture,
        "unknown_key" | "wrong_type" | "missing_field" | "syntax_error" | "bad_enum"
    )
}

const P: &str = "tests/fixtures/pipelines";

#[test]
fn minimal_pipeline_is_ok() {
    let (code, stdout, stderr) = check("minimal");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!(
            "{P}/minimal.toml: ok (2 arms, 1 lab tests, 2 visit windows, 1 analyses, 3 input files)"
        )
    );
}

#[test]
fn unknown_key_names_key_and_line() {
    assert_problems(
        "unknown_key",
        &[&format!(
            "{P}/unknown_key.toml:5:1: study.sponsor: unknown field `sponsor`, expected one of `id`, `title`, `reference_date`"
        )],
    );
}

#[test]
fn wrong_type_names_key_and_line() {
    assert_problems(
        "wrong_type",
        &[&format!(
            "{P}/wrong_type.toml:27:32: visits.windows[1].number: invalid type: string \"twelve\", expected f64"
        )],
    );
}

#[test]
fn missing_field_names_key_and_line() {
    assert_problems(
        "missing_field",
        &[&format!(
            "{P}/missing_field.toml:35:13: labs[0].plausible: missing field `high`"
        )],
    );
}

#[test]
fn syntax_error_names_line() {
    assert_problems(
        "syntax_error",
        &[&format!(
            "{P}/syntax_error.toml:24:8: unclosed table, expected `]`"
        )],
    );
}

#[test]
fn bad_enum_lists_choices() {
    assert_problems(
        "bad_enum",
        &[&format!(
            "{P}/bad_enum.toml:13:8: arms[1].role: unknown variant `placebo`, expected `experimental` or `control`"
        )],
    );
}

#[test]
fn overlapping_windows() {
    assert_problems(
        "overlapping_windows",
        &[&format!(
            "{P}/overlapping_windows.toml:27:3: visits.windows[1]: window `WEEK 12` (-5..113) overlaps window `BASELINE` (-28..1); a record could fall in both"
        )],
    );
}

#[test]
fn day_zero_does_not_exist() {
    assert_problems(
        "day_zero",
        &[&format!(
            "{P}/day_zero.toml:26:60: visits.windows[0].high: window `BASELINE`: study day 0 does not exist (CDISC: day 1 is the reference date, the day before is -1)"
        )],
    );
}

#[test]
fn target_outside_window() {
    assert_problems(
        "target_outside",
        &[&format!(
            "{P}/target_outside.toml:27:36: visits.windows[1].target: window `WEEK 12`: target day 200 is outside 57..113"
        )],
    );
}

#[test]
fn unknown_unit() {
    assert_problems(
        "unknown_unit",
        &[&format!(
            "{P}/unknown_unit.toml:33:1: labs[0].unit: unit `furlong/L` of ALB is not in the unit registry (docs/units.md lists the known spellings)"
        )],
    );
}

#[test]
fn unit_with_no_conversion_path() {
    assert_problems(
        "no_conversion",
        &[&format!(
            "{P}/no_conversion.toml:34:24: labs[0].source_units[1]: no conversion for ALB from `U/L` to `g/L`; declare a conversion in labs[0].conversions or remove the unit"
        )],
    );
}

#[test]
fn unknown_test_code_in_analysis() {
    assert_problems(
        "unknown_test_code",
        &[&format!(
            "{P}/unknown_test_code.toml:41:18: analyses[0].params[1]: unknown test code `ASTX` (known: ALB)"
        )],
    );
}

#[test]
fn missing_input_file() {
    assert_problems(
        "missing_file",
        &[&format!(
            "{P}/missing_file.toml:19:1: inputs.labs[0].path: no file matches `../data/labs_site*.csv` (looked in tests/fixtures/data/labs_site*.csv)"
        )],
    );
}

#[test]
fn two_control_arms() {
    assert_problems(
        "two_controls",
        &[&format!(
            "{P}/two_controls.toml:14:1: arms[1].role: only one arm can be the control"
        )],
    );
}

#[test]
fn unknown_validation_rule() {
    let (code, _, stderr) = check("unknown_rule");
    assert_eq!(code, 4);
    assert!(
        stderr.starts_with(&format!(
            "{P}/unknown_rule.toml:38:19: validation.rules.no_such_rule: unknown rule `no_such_rule`; known rules: field_count, unknown_test,"
        )),
        "{stderr}"
    );
}

#[test]
fn every_shipped_pipeline_checks_ok() {
    for entry in std::fs::read_dir("pipelines").expect("pipelines/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
                .arg("check")
                .arg(&path)
                .output()
                .expect("run trialpipe");
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn score_inputs_missing_from_the_panel() {
    let f = format!("{P}/score_inputs.toml");
    assert_problems(
        "score_inputs",
        &[
            &format!("{f}:44:11: derive.scores[0]: score APRI needs test AST in the lab panel"),
            &format!("{f}:44:11: derive.scores[0]: score APRI needs test PLAT in the lab panel"),
            &format!("{f}:44:19: derive.scores[1]: score HYSLAW needs test BILI in the lab panel"),
            &format!(
                "{f}:44:19: derive.scores[1]: score HYSLAW needs test ALT or AST in the lab panel"
            ),
            &format!("{f}:45:1: derive.hyslaw_alp: below_2uln needs test ALP in the lab panel"),
            &format!("{f}:44:29: derive.scores[2]: score CPS needs test BILI in the lab panel"),
            &format!("{f}:44:29: derive.scores[2]: score CPS needs test INR in the lab panel"),
            &format!(
                "{f}:44:29: derive.scores[2]: score CPS needs ascites and encephalopathy grades ([inputs.assessments])"
            ),
            &format!(
                "{f}:44:36: derive.scores[3]: unknown score `CHILD`; known: MELD, MELDNA, ALBI, ALBIGR, APRI, FIB4, CPS, CPSCL, HYSLAW"
            ),
        ],
    );
}

#[test]
fn assessment_columns_and_spellings() {
    let f = format!("{P}/assessment_spellings.toml");
    assert_problems(
        "assessment_spellings",
        &[
            &format!(
                "{f}:26:13: inputs.assessments.columns.patient: unknown column `patient`; known: subject_id, date, ascites, encephalopathy"
            ),
            &format!(
                "{f}:27:58: inputs.assessments.encephalopathy.grade_3_4: `2` is also a spelling of encephalopathy grade grade_1_2"
            ),
        ],
    );
}

/// The keys the seed pipelines added: `flag()`/`basetext()` in responses, `by` and `benchmark`
/// in `[analyses.survival]`/`[analyses.responders]`, qualitative and subject-column simulation models, `tte_endpoint`. Each misuse is
/// reported with its key path.
#[test]
fn seed_pipeline_keys_are_checked() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("check_seed_keys");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = std::fs::canonicalize("tests/fixtures/data").unwrap();
    let base = std::fs::read_to_string(format!("{P}/minimal.toml"))
        .unwrap()
        .replace("../data", &data.to_string_lossy());
    let text = format!(
        r#"{base}
[[analyses]]
id = "km"
method = "survival"
[analyses.survival]
by = "remission"

[[analyses]]
id = "resp"
method = "responders"
[analyses.responders]
benchmark = 1.5

[[labs]]
code = "HBEAG"
name = "HBeAg"
unit = "1"
result = "qualitative"
values = ["POSITIVE", "NEGATIVE"]

[[responses]]
id = "A"
description = "uses a later rule"
when = "flag(B)"

[[responses]]
id = "B"
description = "baseline category"
when = "basetext(HBEAG) == \"POSITIVE\""

[simulation]
subjects = 10
seed = 1
start_date = "2020-01-01"
accrual_days = 10
followup_months = 12
age = {{ mean = 50, sd = 5, min = 18, max = 80 }}
male_fraction = 0.5

[[simulation.sites]]
id = "01"

[simulation.survival]
control_median_months = 12
hazard_ratio = 1
tte_endpoint = "dfs"

[[simulation.subject_columns]]
name = "age"
values = ["A"]
normal = {{ mean = 1, sd = 1, min = 0, max = 2 }}

[[simulation.subject_columns]]
name = "stage"
values = ["A", "B"]
weights = [1]
log_hr = {{ C = 1 }}

[simulation.labs.ALB]
mean = 30
sd = 5
correlation = 0.5
categories = ["LOW", "HIGH"]
cuts = [30]

[simulation.labs.HBEAG]
mean = 0
sd = 1
correlation = 0.5
"#
    );
    let path = dir.join("seed_keys.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = [
        "analyses[1].survival.by: `remission` is not one of inputs.subjects.strata ()",
        "analyses[2].responders.benchmark: benchmark rate 1.5 must be between 0 and 1",
        "responses[0].when: flag(B): `B` is not a rule declared before this one",
        "simulation.survival.tte_endpoint: endpoint `dfs` must be 1-8 upper-case letters or digits (PARAMCD)",
        "simulation.labs.ALB.categories: ALB is a numeric test; `categories` and `cuts` are for qualitative tests",
        "simulation.labs.HBEAG.categories: qualitative test HBEAG needs `categories` and one fewer `cuts` (0 categories, 0 cuts)",
        "simulation.subject_columns[0].name: `age` is empty or a column the simulator already writes",
        "simulation.subject_columns[0]: give exactly one of `values`, `normal`, `days_before_consent`",
        "simulation.subject_columns[1].weights: one non-negative weight per value, not all zero",
        "simulation.subject_columns[1].log_hr: `C` is not one of the column's `values`",
    ];
    for w in want {
        assert!(
            stderr.lines().any(|l| l.ends_with(w)),
            "missing `{w}` in:\n{stderr}"
        );
    }
    assert!(
        stderr.ends_with(&format!(
            "trialpipe: error: {} problem(s) in the pipeline file\n",
            want.len()
        )),
        "{stderr}"
    );
}
