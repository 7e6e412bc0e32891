//! Ingest layouts and dialects: wide (date and study-day timing), SDTM LB and DM, `.xlsx`
//! workbooks, events `tte`, Latin-1, semicolon/decimal-comma/CRLF, UTF-8 BOM; and the CDISC
//! pilot study (CDISCPILOT01) read from its own SDTM DM and LB, checked against the pilot's
//! LBSTRESN.
//!
//! Fixtures are in tests/fixtures/ingest/ (tiny.xlsx is written by make_xlsx.py there). Pipeline
//! files are written into a temporary directory and name the fixtures by absolute path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;
use trialpipe::ingest::{
    Censoring, IngestOutput, LabRecord, Lineage, ParseStatus, ParsedResult, ingest,
};
use trialpipe::spec::LoadedPipeline;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ingest")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A pipeline with a three-test panel (ALT, BILI, ALB) and the given `[inputs]` tables, written
/// to `<tmp>/ingest_layouts/<name>.toml`.
fn pipeline_file(name: &str, inputs: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ingest_layouts");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"[study]
id = "T1"
title = "Ingest layouts"

[[arms]]
code = "TRT"
label = "Treatment"

[[arms]]
code = "CTL"
label = "Control"
role = "control"

{inputs}

[visits]
windows = [
  {{ name = "BASELINE", number = 0, target = 1, low = -28, high = 1 }},
  {{ name = "WEEK 12", number = 12, target = 85, low = 57, high = 113 }},
]

[[labs]]
code = "ALT"
name = "Alanine Aminotransferase"
unit = "U/L"
source_units = ["U/L"]
plausible = {{ low = 1, high = 10000 }}

[[labs]]
code = "BILI"
name = "Bilirubin"
unit = "umol/L"
source_units = ["umol/L", "mg/dL"]
plausible = {{ low = 0.5, high = 1000 }}

[[labs]]
code = "ALB"
name = "Albumin"
unit = "g/L"
source_units = ["g/L", "g/dL"]
plausible = {{ low = 5, high = 70 }}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn load(path: &Path) -> LoadedPipeline {
    LoadedPipeline::load(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Ingest a pipeline with the default subjects file and the given lab input table.
fn ingest_labs(name: &str, lab_input: &str) -> IngestOutput {
    let inputs = format!(
        "[inputs.subjects]\npath = '{}'\n\n[[inputs.labs]]\n{lab_input}\n",
        fixture("subjects.csv")
    );
    ingest(&load(&pipeline_file(name, &inputs))).unwrap_or_else(|e| panic!("{e}"))
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn lineage(file: &str, line: u64, sheet: Option<&str>) -> Lineage {
    Lineage {
        file: fixture(file).as_str().into(),
        line,
        sheet: sheet.map(Into::into),
    }
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let a = actual.unwrap_or_else(|| panic!("expected {expected}, got no value"));
    assert!(
        (a - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{a} != {expected}"
    );
}

// ------------------------------------------------------------------------------- wide layout

#[test]
fn wide_with_dates_gives_one_record_per_cell() {
    let out = ingest_labs(
        "wide_date",
        &format!(
            r#"path = '{}'
layout = "wide"
timing = "date"
tests = [
  {{ column = "ALT (U/L)", code = "ALT", unit = "U/L" }},
  {{ column = "Bilirubin mg/dL", code = "BILI", unit = "mg/dL" }},
  {{ column = "ALB_gdl", code = "ALB", unit = "g/dL" }},
]"#,
            fixture("wide_date.csv")
        ),
    );
    // 3 rows x 3 test columns: every cell is a record, the blank one too.
    assert_eq!(out.labs.len(), 9);
    let f = out.files.iter().find(|f| f.kind == "labs").unwrap();
    assert_eq!((f.rows_read, f.data_rows), (9, 3));

    let r = &out.labs[0];
    assert_eq!(r.lineage, lineage("wide_date.csv", 2, None));
    assert_eq!(r.source_column().as_deref(), Some("ALT (U/L)"));
    assert_eq!(
        (r.test_code.as_str(), r.test_name.as_str()),
        ("ALT", "Alanine Aminotransferase")
    );
    assert_eq!(
        (r.subject_id.as_str(), r.visit.as_str()),
        ("001", "BASELINE")
    );
    assert_eq!(r.collection_date, date(2024, 1, 1));
    assert_eq!(r.study_day, Some(1));
    assert_eq!(r.result, ParsedResult::Numeric(31.0));
    assert_eq!(r.unit_raw, "U/L");
    assert_close(r.std_value, 31.0);
    assert_eq!(r.status, ParseStatus::Ok);

    let bili = &out.labs[1];
    assert_eq!(bili.source_column().as_deref(), Some("Bilirubin mg/dL"));
    assert_eq!(bili.unit.as_deref(), Some("mg/dL"));
    assert_close(bili.std_value, 0.8 * 17.104);
    assert_eq!(bili.std_unit.as_deref(), Some("umol/L"));
    assert_close(out.labs[2].std_value, 41.0);

    // Row 2 (line 3): the ALT cell is blank → a missing-result record, kept.
    let blank = &out.labs[3];
    assert_eq!(blank.lineage, lineage("wide_date.csv", 3, None));
    assert_eq!(blank.source_column().as_deref(), Some("ALT (U/L)"));
    assert_eq!(blank.result, ParsedResult::Missing);
    assert_eq!(blank.status, ParseStatus::BlankResult);
    assert_eq!(blank.study_day, Some(85)); // 2024-03-25 is 84 days after 2024-01-01
    assert_eq!(blank.std_value, None);

    // Subject 002 (randomized 2024-01-15) sampled on 2024-01-10: day -5.
    let nd = &out.labs[7];
    assert_eq!(nd.lineage.line, 4);
    assert_eq!(nd.study_day, Some(-5));
    assert_eq!(nd.result, ParsedResult::NotDone);
    assert_eq!(nd.status, ParseStatus::NotDone);
}

#[test]
fn wide_with_study_days_rejects_day_zero() {
    let out = ingest_labs(
        "wide_study_day",
        &format!(
            r#"path = '{}'
layout = "wide"
timing = "study_day"
tests = [
  {{ column = "ALT", code = "ALT", unit = "U/L" }},
  {{ column = "BILI", code = "BILI", unit = "umol/L" }},
]"#,
            fixture("wide_study_day.csv")
        ),
    );
    assert_eq!(out.labs.len(), 10);
    let days: Vec<(u64, Option<i64>)> = out
        .labs
        .iter()
        .step_by(2)
        .map(|r| (r.lineage.line, r.study_day))
        .collect();
    // -3 and 85 as given, 0 (no day 0 in CDISC) and 84.5 are bad, 86.0 is day 86.
    assert_eq!(
        days,
        vec![
            (2, Some(-3)),
            (3, Some(85)),
            (4, None),
            (5, None),
            (6, Some(86))
        ]
    );
    for r in &out.labs {
        assert_eq!(r.collection_date, None, "study-day timing has no date");
    }
    assert_eq!(out.labs[0].status, ParseStatus::Ok);
    assert_close(out.labs[1].std_value, 12.0);
    // The blank BILI cell of line 3 is a missing result.
    assert_eq!(out.labs[3].result, ParsedResult::Missing);
    assert_eq!(out.labs[3].source_column().as_deref(), Some("BILI"));
    // A numeric result on a bad study day is a timing problem.
    assert_eq!(out.labs[4].status, ParseStatus::BadDate);
    assert_eq!(out.labs[4].result, ParsedResult::Numeric(25.0));
    assert_eq!(out.labs[6].status, ParseStatus::BadDate);
    assert_eq!(out.labs[8].status, ParseStatus::Ok);
}

#[test]
fn wide_missing_test_column_names_file_and_column() {
    let inputs = format!(
        "[inputs.subjects]\npath = '{}'\n\n[[inputs.labs]]\npath = '{}'\nlayout = \"wide\"\ntests = [{{ column = \"GGT\", code = \"ALT\", unit = \"U/L\" }}]\n",
        fixture("subjects.csv"),
        fixture("wide_date.csv")
    );
    let err = ingest(&load(&pipeline_file("wide_missing", &inputs))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1: required column `GGT` is missing (header has: study_id, site_id, subject_id, visit, collection_date, ALT (U/L), Bilirubin mg/dL, ALB_gdl)",
            fixture("wide_date.csv")
        )
    );
}

// ------------------------------------------------------------------------------- dialects

#[test]
fn latin1_micro_sign_is_decoded_and_recognized() {
    let out = ingest_labs("latin1", &format!("path = '{}'", fixture("latin1.csv")));
    assert_eq!(out.labs.len(), 2);
    let r = &out.labs[0];
    assert_eq!(r.lineage, lineage("latin1.csv", 2, None));
    assert_eq!(r.unit_raw, "\u{b5}mol/L");
    assert_eq!(r.unit.as_deref(), Some("umol/L"));
    assert_eq!(r.test_name, "Bilirubin total");
    assert_eq!(r.result, ParsedResult::Numeric(13.7));
    assert_close(r.std_value, 13.7);
    assert_eq!(r.study_day, Some(1));
    let c = &out.labs[1];
    assert_eq!(c.unit_raw, "\u{b5}mol/l");
    assert_eq!(c.unit.as_deref(), Some("umol/L"));
    assert_eq!(c.result, ParsedResult::Censored(Censoring::Below, 3.0));
    assert_eq!(c.status, ParseStatus::Censored);
    assert_eq!(c.std_value, None); // default policy: a censored result has no analysis value
    assert_close(c.std_limit(), 3.0);
    assert_eq!(c.study_day, Some(-1)); // the day before randomization
}

#[test]
fn latin1_declared_as_utf8_is_an_error_with_line_and_byte() {
    let out = ingest(&load(&pipeline_file(
        "latin1_as_utf8",
        &format!(
            "[inputs.subjects]\npath = '{}'\n\n[[inputs.labs]]\npath = '{}'\nencoding = \"utf8\"\n",
            fixture("subjects.csv"),
            fixture("latin1.csv")
        ),
    )));
    assert_eq!(
        out.unwrap_err().to_string(),
        format!(
            "{}:2:51: not valid UTF-8 (byte 0xB5); declare encoding = \"latin1\" or \"auto\"",
            fixture("latin1.csv")
        )
    );
}

#[test]
fn semicolons_decimal_commas_crlf_and_quoted_delimiters() {
    let out = ingest_labs(
        "semicolon",
        &format!("path = '{}'", fixture("semicolon_crlf.csv")),
    );
    assert_eq!(out.labs.len(), 4);
    let f = out.files.iter().find(|f| f.kind == "labs").unwrap();
    assert_eq!((f.rows_read, f.data_rows), (4, 4));

    let bili = &out.labs[0];
    assert_eq!(bili.lineage, lineage("semicolon_crlf.csv", 2, None));
    assert_eq!(bili.visit, "WEEK 12");
    assert_eq!(bili.test_name, "Bilirubin; total");
    assert_eq!(bili.result_raw, "1,2");
    assert_eq!(bili.result, ParsedResult::Numeric(1.2));
    assert_close(bili.std_value, 1.2 * 17.104);
    assert_eq!(bili.status, ParseStatus::Ok);

    let alb = &out.labs[1];
    assert_eq!(alb.test_name, "Albumin; \"serum\"");
    assert_eq!(alb.result, ParsedResult::Numeric(38.5));
    assert_eq!(alb.unit_raw, "g/L");
    assert_eq!(alb.study_day, Some(-1));

    // A quoted field spanning two lines: the record starts on line 4, the next one on line 6.
    let alt = &out.labs[2];
    assert_eq!(alt.lineage.line, 4);
    assert_eq!(alt.visit, "WEEK; 24");
    assert_eq!(alt.test_name, "Alanine;\r\naminotransferase");
    assert_eq!(alt.result, ParsedResult::Censored(Censoring::Below, 5.0));
    let last = &out.labs[3];
    assert_eq!(last.lineage, lineage("semicolon_crlf.csv", 6, None));
    assert_eq!(last.result, ParsedResult::Numeric(12.0));
    assert_eq!(last.study_day, Some(85)); // 2024-04-08, 84 days after 2024-01-15
}

#[test]
fn utf8_byte_order_mark_is_not_part_of_the_first_column() {
    let out = ingest_labs("bom", &format!("path = '{}'", fixture("bom.csv")));
    assert_eq!(out.labs.len(), 2);
    let alb = &out.labs[0];
    assert_eq!(alb.lineage, lineage("bom.csv", 2, None));
    assert_eq!(alb.subject_id, "001");
    assert_eq!(alb.result, ParsedResult::Numeric(4.2));
    assert_close(alb.std_value, 42.0);
    assert_eq!(alb.study_day, Some(1));
    let bili = &out.labs[1];
    assert_eq!(bili.unit_raw, "\u{b5}mol/L");
    assert_eq!(bili.unit.as_deref(), Some("umol/L"));
    assert_close(bili.std_value, 15.0);
    assert_eq!(bili.status, ParseStatus::Ok);
}

// ------------------------------------------------------------------------------- workbooks

fn xlsx_pipeline(name: &str, lab_sheet: &str) -> PathBuf {
    pipeline_file(
        name,
        &format!(
            "[inputs.subjects]\npath = '{x}'\n\n[[inputs.labs]]\npath = '{x}'\nsheet = \"{lab_sheet}\"\n",
            x = fixture("tiny.xlsx")
        ),
    )
}

#[test]
fn xlsx_numbers_dates_and_lineage() {
    let out = ingest(&load(&xlsx_pipeline("xlsx", "Labs"))).unwrap_or_else(|e| panic!("{e}"));
    // Subjects from the first sheet; dates stored as Excel dates.
    assert_eq!(out.subjects.len(), 2);
    let s = &out.subjects[1];
    assert_eq!(s.lineage, lineage("tiny.xlsx", 3, Some("Subjects")));
    assert_eq!(s.subject_id, "002");
    assert_eq!(s.randomization_date, date(2024, 1, 15));
    assert_eq!(s.age, Some(61.5));
    // The raw column text is kept for eligibility criteria only, and a number cell reads as
    // typed.
    assert!(s.columns.is_empty(), "{:?}", s.columns);
    let with_criteria = pipeline_file(
        "xlsx_criteria",
        &format!(
            "[inputs.subjects]\npath = '{x}'\n\n[[inputs.labs]]\npath = '{x}'\nsheet = \"Labs\"\n\n\
             [[eligibility]]\nid = \"AGE\"\nkind = \"inclusion\"\n\
             description = \"Aged 20 or more\"\nwhen = \"age >= 20\"\n",
            x = fixture("tiny.xlsx")
        ),
    );
    let s = &ingest(&load(&with_criteria)).unwrap().subjects[1];
    assert_eq!(s.columns.get("age").map(String::as_str), Some("61.5"));

    assert_eq!(out.labs.len(), 4);
    let lines: Vec<u64> = out.labs.iter().map(|r| r.lineage.line).collect();
    assert_eq!(
        lines,
        vec![3, 4, 6, 7],
        "spreadsheet rows, empty rows skipped"
    );
    let alt = &out.labs[0];
    assert_eq!(alt.lineage, lineage("tiny.xlsx", 3, Some("Labs")));
    assert_eq!(alt.result_raw, "12.5", "stored as 12.500000000000002");
    assert_eq!(alt.result, ParsedResult::Numeric(12.5));
    assert_eq!(alt.collection_date, date(2024, 1, 1));
    assert_eq!(alt.study_day, Some(1));
    let bili = &out.labs[1];
    assert_eq!(bili.result_raw, "0.3", "stored as 0.30000000000000004");
    assert_close(bili.std_value, 0.3 * 17.104);
    let alb = &out.labs[2];
    assert_eq!(alb.result_raw, "4");
    assert_close(alb.std_value, 40.0);
    assert_eq!(alb.collection_date, date(2024, 4, 8)); // a date-time cell, 12:00
    assert_eq!(alb.study_day, Some(85));
    let alt2 = &out.labs[3];
    assert_eq!(alt2.collection_date, date(2024, 4, 8)); // typed as text
    assert_eq!(alt2.result, ParsedResult::Censored(Censoring::Below, 5.0));

    let files: Vec<(&str, u64)> = out.files.iter().map(|f| (f.kind, f.rows_read)).collect();
    assert_eq!(files, vec![("subjects", 2), ("labs", 4)]);

    // Row accounting per input, although both sheets are one file: each entry counts its own
    // sheet's records only.
    let lp = load(&xlsx_pipeline("xlsx", "Labs"));
    let v = trialpipe::validate::validate(&lp, &out);
    let acc: Vec<(&str, u64, u64, u64)> = v
        .summary
        .files
        .iter()
        .map(|f| (f.kind, f.rows_read, f.rows_accepted, f.rows_quarantined))
        .collect();
    assert_eq!(acc.len(), 2);
    for (kind, read, accepted, quarantined) in acc {
        assert_eq!(read, accepted + quarantined, "{kind}");
    }
}

#[test]
fn xlsx_unknown_sheet_lists_the_sheets() {
    let err = ingest(&load(&xlsx_pipeline("xlsx_nosheet", "Results"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no sheet named `Results` (the workbook has: `Subjects`, `Labs`)",
            fixture("tiny.xlsx")
        )
    );
}

#[test]
fn xlsx_missing_column_names_file_sheet_and_header_row() {
    // The Subjects sheet read as a long lab layout: the header (row 1) lacks the lab columns.
    let err = ingest(&load(&xlsx_pipeline("xlsx_wrong_sheet", "Subjects"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}[Subjects]:1: required column `visit` is missing (header has: study_id, site_id, subject_id, arm, randomization_date, sex, age)",
            fixture("tiny.xlsx")
        )
    );
}

#[test]
fn sheet_on_a_text_file_is_an_error() {
    let inputs = format!(
        "[inputs.subjects]\npath = '{}'\nsheet = \"Subjects\"\n\n[[inputs.labs]]\npath = '{}'\n",
        fixture("subjects.csv"),
        fixture("bom.csv")
    );
    let err = ingest(&load(&pipeline_file("sheet_on_csv", &inputs))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: inputs.subjects.sheet = \"Subjects\" names a worksheet, but the file is not an .xlsx workbook",
            fixture("subjects.csv")
        )
    );
}

#[test]
fn number_text_is_what_a_user_would_type() {
    use trialpipe::ingest::number_text;
    assert_eq!(number_text(12.500000000000002), "12.5");
    assert_eq!(number_text(0.1 + 0.2), "0.3");
    assert_eq!(number_text(4.0), "4");
    assert_eq!(number_text(-0.0), "0");
    assert_eq!(number_text(1.0 / 3.0), "0.333333333333333");
    assert_eq!(number_text(123456.789), "123456.789");
    assert_eq!(number_text(1e-7), "0.0000001");
}

// ------------------------------------------------------------------------------- SDTM

fn sdtm_output() -> IngestOutput {
    let inputs = format!(
        "[inputs.subjects]\npath = '{}'\nlayout = \"sdtm_dm\"\n\n[[inputs.labs]]\npath = '{}'\nlayout = \"sdtm\"\n",
        fixture("dm.csv"),
        fixture("lb.csv")
    );
    ingest(&load(&pipeline_file("sdtm", &inputs))).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sdtm_dm_subjects() {
    let out = sdtm_output();
    assert_eq!(out.subjects.len(), 3);
    let s = &out.subjects[0];
    assert_eq!(s.lineage, lineage("dm.csv", 2, None));
    assert_eq!(
        (
            s.study_id.as_str(),
            s.site_id.as_str(),
            s.subject_id.as_str()
        ),
        ("X1", "10", "X1-001")
    );
    assert_eq!(s.arm.as_deref(), Some("TRT"));
    assert_eq!(s.randomization_date, date(2024, 2, 1));
    assert_eq!(s.reference_date, date(2024, 2, 1));
    assert_eq!(s.consent_date, date(2024, 1, 20));
    assert_eq!((s.sex.as_deref(), s.age), (Some("F"), Some(70.0)));
    // A screen failure has no arm and no reference date; a blank ARMCD is no arm.
    assert_eq!(out.subjects[1].arm, None);
    assert_eq!(out.subjects[1].reference_date, None);
    assert!(out.subjects[1].bad_fields.is_empty());
    assert_eq!(out.subjects[2].arm, None);
    assert_eq!(out.subjects[2].reference_date, date(2024, 2, 10)); // RFSTDTC with a time
}

#[test]
fn sdtm_lb_uses_the_original_result_and_lbdy() {
    let out = sdtm_output();
    assert_eq!(out.labs.len(), 4);
    let r = &out.labs[0];
    assert_eq!(r.lineage, lineage("lb.csv", 2, None));
    assert_eq!(r.site_id, "10", "from DM: LB has no SITEID");
    assert_eq!(
        (r.study_id.as_str(), r.subject_id.as_str()),
        ("X1", "X1-001")
    );
    assert_eq!(
        (r.test_code.as_str(), r.test_name.as_str()),
        ("BILI", "Bilirubin")
    );
    assert_eq!(r.visit, "SCREENING");
    assert_eq!(
        (r.result_raw.as_str(), r.unit_raw.as_str()),
        ("0.6", "mg/dL")
    );
    assert_close(r.std_value, 0.6 * 17.104);
    assert_close(r.std_ref_low, 0.2 * 17.104);
    assert_close(r.std_ref_high, 1.2 * 17.104);
    assert_eq!(r.collection_date, date(2024, 1, 25));
    assert_eq!(r.study_day, Some(-7));
    // LBDY blank: computed from LBDTC and RFSTDTC (2024-02-15 is day 15).
    assert_eq!(out.labs[1].study_day, Some(15));
    assert_eq!(out.labs[1].status, ParseStatus::Ok);
    // LBSTAT = NOT DONE with a blank result.
    assert_eq!(out.labs[2].result, ParsedResult::NotDone);
    assert_eq!(out.labs[2].status, ParseStatus::NotDone);
    // LBDY 0 is not a study day.
    let c = &out.labs[3];
    assert_eq!(c.study_day, None);
    assert_eq!(c.site_id, "11");
    assert_eq!(c.result, ParsedResult::Censored(Censoring::Below, 5.0));
    assert_close(c.std_ref_high, 34.0);
}

// ------------------------------------------------------------------------------- events tte

#[test]
fn tte_columns_become_one_record_per_endpoint() {
    let inputs = format!(
        r#"[inputs.subjects]
path = '{}'

[[inputs.labs]]
path = '{}'

[inputs.events]
path = '{}'
layout = "tte"
endpoints = [
  {{ paramcd = "OS", time_column = "os_days", status_column = "os_cnsr", event_value = "0" }},
  {{ paramcd = "PFS", time_column = "pfs_days", status_column = "pfs_status", event_value = "progressed" }},
]
"#,
        fixture("subjects.csv"),
        fixture("bom.csv"),
        fixture("tte.csv")
    );
    let out = ingest(&load(&pipeline_file("tte", &inputs))).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.events.is_empty());
    type Row<'a> = (u64, &'a str, &'a str, Option<f64>, Option<bool>);
    let got: Vec<Row<'_>> = out
        .tte
        .iter()
        .map(|t| {
            (
                t.lineage.line,
                t.subject_id.as_str(),
                t.paramcd.as_str(),
                t.time_days,
                t.event,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "001", "OS", Some(400.0), Some(true)),
            (2, "001", "PFS", Some(200.0), Some(true)),
            (3, "002", "OS", Some(365.5), Some(false)),
            (3, "002", "PFS", None, None),
        ]
    );
    assert_eq!(out.tte[2].time_raw, "365,5");
    assert_eq!(out.tte[2].status_raw, "1");
    assert_eq!(out.tte[0].study_id, "T1");
    let f = out.files.iter().find(|f| f.kind == "events").unwrap();
    // Records (subject × endpoint) are what validation accounts for; data rows are the lines.
    assert_eq!((f.rows_read, f.data_rows), (4, 2));
}

// ------------------------------------------------------------------------------- the binary

#[test]
fn binary_runs_a_workbook_pipeline_and_reports_a_bad_sheet() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ingest_layouts_run");
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .arg("run")
        .arg(xlsx_pipeline("xlsx_run", "Labs"))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run trialpipe");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "exit {:?}: {stderr}",
        o.status.code()
    );
    assert!(out.join("ingest/labs.parquet").is_file());
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let files: Vec<(String, u64)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["rows_read"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        files,
        vec![("subjects".to_string(), 2), ("labs".to_string(), 4)]
    );

    let o = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .arg("run")
        .arg(xlsx_pipeline("xlsx_run_bad", "Nope"))
        .arg("--out")
        .arg(out.join("bad"))
        .output()
        .expect("run trialpipe");
    assert_eq!(o.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: no sheet named `Nope` (the workbook has: `Subjects`, `Labs`)",
            fixture("tiny.xlsx")
        )),
        "{stderr}"
    );
}

#[test]
fn binary_checks_the_cdisc_pilot_pipeline() {
    let o = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .args(["check", "pipelines/cdiscpilot01.toml"])
        .output()
        .expect("run trialpipe");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "pipelines/cdiscpilot01.toml: ok (3 arms, 43 lab tests, 10 visit windows, 1 analyses, 2 input files)"
    );
}

// ------------------------------------------------------------------------------- CDISC pilot

/// How ingest's standardized value compares with the pilot's LBSTRESN for one LB row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Agreement {
    /// Both missing, or equal within 1e-6 relative.
    Exact,
    /// Within 3e-4 relative: the pilot's rounded factor (17.1, 88.4, 0.05551) against the
    /// registry's (17.104, 88.42, 1/18.016).
    FactorRounding,
    /// Anything else.
    Differs,
}

fn agreement(ours: Option<f64>, pilot: Option<f64>) -> Agreement {
    match (ours, pilot) {
        (None, None) => Agreement::Exact,
        (Some(a), Some(b)) => {
            let rel = (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE);
            if a == b || rel <= 1e-6 {
                Agreement::Exact
            } else if rel <= 3e-4 {
                Agreement::FactorRounding
            } else {
                Agreement::Differs
            }
        }
        _ => Agreement::Differs,
    }
}

#[test]
fn cdisc_pilot_lb_agrees_with_the_pilots_standardization() {
    let lp = load(Path::new("pipelines/cdiscpilot01.toml"));
    let out = ingest(&lp).unwrap_or_else(|e| panic!("{e}"));

    // DM: 306 subjects, of whom 254 were randomized (52 screen failures have no arm and no
    // RFSTDTC); LB: 59,580 rows, all for the 254.
    assert_eq!(out.subjects.len(), 306);
    let randomized: Vec<_> = out.subjects.iter().filter(|s| s.arm.is_some()).collect();
    assert_eq!(randomized.len(), 254);
    assert!(randomized.iter().all(|s| s.reference_date.is_some()));
    assert!(out.subjects.iter().all(|s| s.bad_fields.is_empty()));
    assert_eq!(out.labs.len(), 59_580);
    let subjects: std::collections::HashSet<&str> =
        out.labs.iter().map(|r| r.subject_id.as_str()).collect();
    assert_eq!(subjects.len(), 254);
    assert!(
        subjects
            .iter()
            .all(|s| randomized.iter().any(|r| r.subject_id == *s))
    );

    // Every unit converts; urine colour is a qualitative test (874 `N` results, kept as text);
    // the only non-OK rows are 6 censored results.
    let mut by_status: HashMap<&str, usize> = HashMap::new();
    for r in &out.labs {
        *by_status.entry(r.status.code()).or_default() += 1;
    }
    assert_eq!(by_status.get("ok"), Some(&59_574));
    assert_eq!(by_status.get("censored"), Some(&6));
    assert_eq!(by_status.len(), 2, "{by_status:?}");
    let colour: Vec<&trialpipe::ingest::LabRecord> =
        out.labs.iter().filter(|r| r.test_code == "COLOR").collect();
    assert_eq!(colour.len(), 874);
    assert!(
        colour
            .iter()
            .all(|r| r.result == ParsedResult::Text("N".into()) && r.has_value())
    );

    // The pilot's LBSTRESN and LBDY by physical line.
    let lb_path = lp.resolve("../../shared/reference/cdiscpilot01/lb.csv");
    let mut rd = csv::Reader::from_path(&lb_path).unwrap();
    let headers = rd.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (stresn, lbdy) = (col("LBSTRESN"), col("LBDY"));
    let mut pilot: HashMap<u64, (Option<f64>, i64)> = HashMap::new();
    for rec in rd.records() {
        let rec = rec.unwrap();
        let line = rec.position().unwrap().line();
        pilot.insert(
            line,
            (
                rec[stresn].parse().ok(),
                rec[lbdy].parse().expect("LBDY is an integer"),
            ),
        );
    }
    assert_eq!(pilot.len(), 59_580);

    let mut counts: HashMap<Agreement, usize> = HashMap::new();
    let mut by_test: HashMap<(&str, Agreement), usize> = HashMap::new();
    for r in &out.labs {
        let (stres, day) = pilot[&r.lineage.line];
        assert_eq!(r.study_day, Some(day), "{}", r.lineage);
        let a = agreement(r.std_value, stres);
        *counts.entry(a).or_default() += 1;
        *by_test.entry((r.test_code.as_str(), a)).or_default() += 1;
    }
    let total = out.labs.len() as f64;
    let exact = counts.get(&Agreement::Exact).copied().unwrap_or(0);
    let rounding = counts.get(&Agreement::FactorRounding).copied().unwrap_or(0);
    let differs = counts.get(&Agreement::Differs).copied().unwrap_or(0);
    eprintln!(
        "CDISC pilot LB: {exact} exact ({:.2}%), {rounding} within the pilot's factor rounding ({:.2}%), {differs} differ",
        100.0 * exact as f64 / total,
        100.0 * rounding as f64 / total
    );
    let mut rounded_tests: Vec<(&str, usize)> = by_test
        .iter()
        .filter(|((_, a), _)| *a == Agreement::FactorRounding)
        .map(|((t, _), n)| (*t, *n))
        .collect();
    rounded_tests.sort();
    eprintln!("within factor rounding, by test: {rounded_tests:?}");

    // Every row agrees at least within the rounding of the pilot's factors; the rows that are
    // not exact are exactly the three tests whose registry factor is more precise than the
    // pilot's (bilirubin 17.104 vs 17.1, creatinine 88.42 vs 88.4, glucose 1/18.016 vs 0.05551).
    assert_eq!(differs, 0);
    assert!(exact as f64 / total > 0.90, "{exact} exact of {total}");
    assert_eq!(
        rounded_tests.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec!["BILI", "CREAT", "GLUC"]
    );
}

/// Records of one test in a pilot run, for spot checks of the units.
fn first_of<'a>(labs: &'a [LabRecord], code: &str) -> &'a LabRecord {
    labs.iter().find(|r| r.test_code == code).unwrap()
}

#[test]
fn cdisc_pilot_spot_checks() {
    let out = ingest(&load(Path::new("pipelines/cdiscpilot01.toml"))).unwrap();
    // The first LB row: albumin 3.8 g/dL = 38 g/L, day -7, site from DM.
    let alb = &out.labs[0];
    assert_eq!(alb.lineage.line, 2);
    assert!(
        alb.lineage
            .file
            .ends_with("shared/reference/cdiscpilot01/lb.csv")
    );
    assert_eq!(
        (alb.subject_id.as_str(), alb.site_id.as_str()),
        ("01-701-1015", "701")
    );
    assert_close(alb.std_value, 38.0);
    assert_close(alb.std_ref_low, 33.0);
    assert_eq!(alb.study_day, Some(-7));
    assert_eq!(alb.visit, "SCREENING 1");
    let wbc = first_of(&out.labs, "WBC");
    assert_eq!(
        (wbc.unit_raw.as_str(), wbc.unit.as_deref()),
        ("THOU/uL", Some("10^3/uL"))
    );
    assert_eq!(wbc.std_unit.as_deref(), Some("GI/L"));
    let mch = first_of(&out.labs, "MCH");
    assert_close(mch.std_value, 27.0 * 0.06206);
    let hct = first_of(&out.labs, "HCT");
    assert_eq!(hct.std_unit.as_deref(), Some("1"));
    assert_close(hct.std_value, 0.42);
}

// ----------------------------------------------------------------- through validate as well

#[test]
fn study_day_timing_is_not_a_bad_date_and_tte_rows_are_accounted() {
    let inputs = format!(
        r#"[inputs.subjects]
path = '{}'

[[inputs.labs]]
path = '{}'
layout = "wide"
timing = "study_day"
tests = [
  {{ column = "ALT", code = "ALT", unit = "U/L" }},
  {{ column = "BILI", code = "BILI", unit = "umol/L" }},
]

[inputs.events]
path = '{}'
layout = "tte"
endpoints = [
  {{ paramcd = "OS", time_column = "os_days", status_column = "os_cnsr", event_value = "0" }},
  {{ paramcd = "PFS", time_column = "pfs_days", status_column = "pfs_status", event_value = "progressed" }},
]
"#,
        fixture("subjects.csv"),
        fixture("wide_study_day.csv"),
        fixture("tte.csv")
    );
    let lp = load(&pipeline_file("validate_wide_tte", &inputs));
    let data = ingest(&lp).unwrap_or_else(|e| panic!("{e}"));
    let v = trialpipe::validate::validate(&lp, &data);
    // Only the two records on bad study days (0 and 84.5) carry bad_date findings.
    let bad: Vec<u64> = v
        .findings
        .iter()
        .filter(|f| f.rule == "bad_date")
        .map(|f| f.line)
        .collect();
    let expected_bad: Vec<u64> = data
        .labs
        .iter()
        .filter(|r| r.status == ParseStatus::BadDate)
        .map(|r| r.lineage.line)
        .collect();
    assert_eq!(bad, expected_bad);
    assert!(
        data.labs
            .iter()
            .any(|r| r.status == ParseStatus::Ok && r.collection_date.is_none())
    );
    for (r, d) in data.labs.iter().zip(&v.labs) {
        if r.status == ParseStatus::Ok {
            assert!(
                d.accepted(),
                "line {} should be accepted: {:?}",
                r.lineage.line,
                d
            );
        }
    }
    // Every file balances, the tte file included.
    assert!(v.summary.files.iter().any(|f| f.file.ends_with("tte.csv")));
    for f in &v.summary.files {
        assert_eq!(f.rows_read, f.rows_accepted + f.rows_quarantined, "{f:?}");
    }
    // Error rows are counted per record: at most the number of lab records.
    assert!(v.summary.lab_rows_with_errors <= data.labs.len() as u64);
    assert_eq!(
        v.summary.lab_rows_with_errors,
        v.labs.iter().filter(|d| d.errors).count() as u64
    );
}
