//! Ingest: read the raw exports a pipeline file names into typed, standardized records.
//!
//! * CSV dialects: the delimiter is declared or detected from the header line (`,` `;` tab `|`),
//!   UTF-8 with or without a byte-order mark, Latin-1 (declared, or detected when the bytes are
//!   not UTF-8), CRLF, quoted fields.
//! * Excel workbooks: a path ending in `.xlsx` is read with calamine, from the sheet named by the
//!   input's `sheet` key (default: the first sheet). The first non-empty row is the header. Cells
//!   stored as numbers come out as the shortest text that reads back as the same number, rounded
//!   to the 15 significant digits Excel displays (`12.5`, not `12.500000000000002`); cells
//!   formatted as dates come out as ISO 8601 dates (`2024-03-01`, or `2024-03-01T08:30:00` when
//!   the cell holds a time of day).
//! * Every record keeps its lineage: source file and the physical line it starts on; for a
//!   workbook, the sheet and the 1-based spreadsheet row. Errors name places as `file:line`, or
//!   `file[sheet]:row` for a workbook.
//! * Results are parsed into a numeric value plus qualifiers: decimal comma, `<x`/`>x` (censored:
//!   the operator and the limit are kept; the value used for analysis follows the pipeline's
//!   [`CensoredPolicy`]), `ND`/`not done`, other text kept as a character result, blank as missing.
//! * Units are normalized and converted to the test's standard unit through the unit registry.
//! * Study day follows CDISC: day 1 is the reference date, the day before is −1, there is no day 0.
//!
//! Layouts:
//!
//! * Labs `long` (the default contract): one row per result.
//! * Labs `wide`: one row per subject and visit, one column per test (`tests = [{ column, code,
//!   unit }]`); each test cell becomes one record, blank cells included (as missing results), and
//!   the record names its column ([`LabRecord::source_column`]). Timing is a `collection_date`
//!   column (`timing = "date"`) or a `study_day` column (`timing = "study_day"`; integers, and 0
//!   is a bad value since there is no day 0).
//! * Labs `sdtm`: an SDTM LB domain. The original result (`LBORRES`, `LBORRESU`, `LBORNRLO`,
//!   `LBORNRHI`) is the raw result, converted to the panel's standard unit like any other; the
//!   sponsor's own standardization (`LBSTRESN`/`LBSTRESU`) is not used. `LBDY` is kept as the
//!   study day when present, otherwise it is computed from `LBDTC`. Subject key: `USUBJID`.
//!   `LBSTAT = NOT DONE` with a blank result is a not-done result.
//! * Subjects `sdtm_dm`: an SDTM DM domain; `USUBJID` is the subject id, `RFSTDTC` the
//!   randomization (reference) date, `RFICDTC` the consent date, `RFXSTDTC` the first dose date.
//!   `ARMCD` of `SCRNFAIL` or `NOTASSGN` (any case) or blank means no arm.
//! * Events `tte`: one row per subject with a time (days) and a status column per endpoint; each
//!   endpoint of each row becomes one [`TteRecord`].
//!
//! Ingest decides nothing about validity: each record carries a [`ParseStatus`] saying what
//! parsing found, and `validate` turns those into findings. Rows are never dropped here.
//! A file that cannot be read at all is an [`IngestError`] naming the file and why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rustc_hash::FxHashMap;
use serde::Serialize;
use ustr::Ustr;

use crate::inplace::Sink;
use crate::spec::{
    CensoredPolicy, Encoding, EventsLayout, LabInput, LabLayout, LoadedPipeline, ReferenceDate,
    SubjectsLayout, Timing,
};
use crate::store::{Column, ColumnData, Table};
use crate::units::{Conversion, Registry};

/// Intern a text upper-cased (without allocating when it already is).
fn upper_sym(s: &str) -> Ustr {
    if s.bytes().any(|b| b.is_ascii_lowercase() || !b.is_ascii()) {
        Ustr::from(&s.to_uppercase())
    } else {
        Ustr::from(s)
    }
}

/// `file:line`, or `file[sheet]:row` for a workbook.
fn at(path: &Path, sheet: Option<&str>, line: u64) -> String {
    match sheet {
        Some(s) => format!("{}[{s}]:{line}", path.display()),
        None => format!("{}:{line}", path.display()),
    }
}

/// The length of the ASCII run `b` starts with (all of `b` when it is ASCII).
fn ascii_prefix(b: &[u8]) -> usize {
    const HIGH: u128 = u128::from_ne_bytes([0x80; 16]);
    let mut k = 0;
    for chunk in b.chunks_exact(16) {
        let word = u128::from_ne_bytes(chunk.try_into().expect("16 bytes"));
        if word & HIGH != 0 {
            break;
        }
        k += 16;
    }
    k + b[k..]
        .iter()
        .position(|&c| c >= 0x80)
        .unwrap_or(b.len() - k)
}

/// `str::trim`, with a shortcut for the usual field, which starts and ends with an ASCII byte
/// that is not white space (then there is nothing to trim; no character is decoded).
fn trim(s: &str) -> &str {
    let plain = |b: u8| b.is_ascii() && !matches!(b, b'\t'..=b'\r' | b' ');
    match s.as_bytes() {
        [] => s,
        [first, .., last] | [first @ last] if plain(*first) && plain(*last) => s,
        _ => s.trim(),
    }
}

/// Why ingest could not read its inputs.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The assessments input cannot be read.
    #[error(transparent)]
    Assessments(#[from] crate::assessments::AssessmentError),
    /// A path or glob matched no file.
    #[error("{key}: no file matches `{pattern}`")]
    NoFiles {
        /// Pipeline key.
        key: String,
        /// The pattern.
        pattern: String,
    },
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Declared UTF-8 but the bytes are not.
    #[error(
        "{path}:{line}:{column}: not valid UTF-8 (byte 0x{byte:02X}); declare encoding = \"latin1\" or \"auto\""
    )]
    Encoding {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based byte column.
        column: usize,
        /// The offending byte.
        byte: u8,
    },
    /// A required column is missing from the header.
    #[error("{}: required column `{column}` is missing (header has: {header})", at(path, sheet.as_deref(), *line))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The worksheet, for a workbook.
        sheet: Option<String>,
        /// 1-based line (spreadsheet row) of the header.
        line: u64,
        /// Contract name (after the pipeline's column mapping).
        column: String,
        /// What the header holds.
        header: String,
    },
    /// The file is not CSV.
    #[error("{path}:{line}: malformed CSV: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The reader's message.
        message: String,
    },
    /// An `.xlsx` file could not be opened or its sheet not read.
    #[error("{}: cannot read workbook: {message}", match sheet { Some(s) => format!("{}[{s}]", path.display()), None => path.display().to_string() })]
    Workbook {
        /// The file.
        path: PathBuf,
        /// The worksheet, when the failure concerns one.
        sheet: Option<String>,
        /// The reader's message.
        message: String,
    },
    /// The workbook has no sheet of the name the pipeline gives.
    #[error("{path}: no sheet named `{sheet}` (the workbook has: {available})")]
    NoSheet {
        /// The file.
        path: PathBuf,
        /// The sheet asked for.
        sheet: String,
        /// The sheets the workbook has.
        available: String,
    },
    /// A `sheet` was given for a file that is not a workbook.
    #[error("{path}: {key} = \"{sheet}\" names a worksheet, but the file is not an .xlsx workbook")]
    SheetOnText {
        /// The file.
        path: PathBuf,
        /// Pipeline key.
        key: String,
        /// The sheet given.
        sheet: String,
    },
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// Source file (as resolved from the pipeline file).
    pub file: Ustr,
    /// 1-based physical line the record starts on; for a workbook, the 1-based spreadsheet row.
    pub line: u64,
    /// The worksheet, for a workbook (None for text files).
    pub sheet: Option<Ustr>,
}

impl std::fmt::Display for Lineage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&at(Path::new(&self.file), self.sheet.as_deref(), self.line))
    }
}

/// A subject's stratification factors: column name -> level.
pub type Strata = std::sync::Arc<BTreeMap<String, String>>;

/// One subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectRecord {
    /// Source.
    pub lineage: Lineage,
    /// STUDYID.
    pub study_id: String,
    /// SITEID.
    pub site_id: String,
    /// SUBJID (USUBJID for an SDTM DM input).
    pub subject_id: String,
    /// Arm code as randomized (blank, or a DM screen failure / not assigned code → None).
    pub arm: Option<String>,
    /// Randomization date (RFSTDTC for an SDTM DM input).
    pub randomization_date: Option<NaiveDate>,
    /// Informed consent date.
    pub consent_date: Option<NaiveDate>,
    /// First dose date.
    pub first_dose_date: Option<NaiveDate>,
    /// Doses received.
    pub doses_received: Option<i64>,
    /// `M`, `F` or as given.
    pub sex: Option<String>,
    /// Age in years.
    pub age: Option<f64>,
    /// Stratification factors named by the pipeline (shared, not copied, by the rows made from
    /// the subject: two ADTTE rows and the strata of the derived datasets).
    pub strata: Strata,
    /// Study day 1.
    pub reference_date: Option<NaiveDate>,
    /// Fields that did not parse (column → raw text).
    pub bad_fields: BTreeMap<String, String>,
    /// Raw text of every column except the private ones, for eligibility criteria: empty when
    /// the pipeline declares none (nothing else reads it, and a large trial's subjects file
    /// would otherwise be held twice).
    pub columns: BTreeMap<String, String>,
}

/// One event row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// Source.
    pub lineage: Lineage,
    /// STUDYID.
    pub study_id: String,
    /// SUBJID.
    pub subject_id: String,
    /// DEATH, TRANSPLANT, LAST_CONTACT, WITHDRAWAL or as given.
    pub event: String,
    /// Event date (None when it did not parse).
    pub event_date: Option<NaiveDate>,
    /// The raw date text.
    pub date_raw: String,
}

/// One time-to-event endpoint of one subject, from an events input with `layout = "tte"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TteRecord {
    /// Source (the subject's row).
    pub lineage: Lineage,
    /// STUDYID.
    pub study_id: String,
    /// SUBJID.
    pub subject_id: String,
    /// Parameter code of the endpoint (`OS`, `DFS`, ...).
    pub paramcd: String,
    /// Time in days from the reference date (None when blank or not a number).
    pub time_days: Option<f64>,
    /// True when the status is the endpoint's `event_value`, false for any other status
    /// (censored), None when the status is blank.
    pub event: Option<bool>,
    /// The time text exactly as read.
    pub time_raw: String,
    /// The status text exactly as read.
    pub status_raw: String,
}

/// Comparison operator of a censored result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Censoring {
    /// `<x`: below the limit of quantification.
    Below,
    /// `>x`: above the limit.
    Above,
}

/// A parsed result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ParsedResult {
    /// Blank.
    Missing,
    /// `ND`, `not done`.
    NotDone,
    /// A number.
    Numeric(f64),
    /// `<x` or `>x`.
    Censored(Censoring, f64),
    /// Anything else, kept as text (`positive`, `trace`, `12.3.4`).
    Text(Ustr),
}

/// What parsing found for a lab record. Everything but `Ok` becomes a finding in `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParseStatus {
    /// Parsed and standardized.
    Ok,
    /// The row has a different number of fields than the header.
    FieldCount,
    /// Blank result.
    BlankResult,
    /// Result not done.
    NotDone,
    /// Text result for a numeric test.
    TextResult,
    /// Censored result (kept; the analysis value follows the policy).
    Censored,
    /// Test code not in the panel.
    UnknownTest,
    /// Unit spelling not in the registry.
    UnknownUnit,
    /// Known unit with no conversion path to the standard unit.
    NoConversion,
    /// Collection date missing or not a date.
    BadDate,
    /// A qualitative result outside the test's declared values.
    UnexpectedValue,
}

impl ParseStatus {
    /// The code written to datasets.
    pub fn code(self) -> &'static str {
        match self {
            ParseStatus::Ok => "ok",
            ParseStatus::FieldCount => "field_count",
            ParseStatus::BlankResult => "blank_result",
            ParseStatus::NotDone => "not_done",
            ParseStatus::TextResult => "text_result",
            ParseStatus::Censored => "censored",
            ParseStatus::UnknownTest => "unknown_test",
            ParseStatus::UnknownUnit => "unknown_unit",
            ParseStatus::NoConversion => "no_conversion",
            ParseStatus::BadDate => "bad_date",
            ParseStatus::UnexpectedValue => "unexpected_value",
        }
    }
}

/// One lab result, raw and standardized.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabRecord {
    /// Source.
    pub lineage: Lineage,
    /// What only some records have (see [`LabExtra`]): None for most, which keeps a record of a
    /// long CSV export small.
    pub extra: Option<Box<LabExtra>>,
    /// STUDYID.
    pub study_id: Ustr,
    /// SITEID.
    pub site_id: Ustr,
    /// SUBJID (USUBJID for an SDTM input).
    pub subject_id: Ustr,
    /// Visit label as reported.
    pub visit: Ustr,
    /// Collection date.
    pub collection_date: Option<NaiveDate>,
    /// The collection date exactly as read (the study day, for `timing = "study_day"`).
    pub date_raw: Ustr,
    /// Study day (CDISC, no day 0); None without a date or reference date, or when a study-day
    /// column holds a bad value.
    pub study_day: Option<i64>,
    /// Test code as reported (upper-cased, trimmed).
    pub test_code: Ustr,
    /// Test name as reported (the panel's name for a wide input).
    pub test_name: Ustr,
    /// The result text exactly as reported.
    pub result_raw: Ustr,
    /// The parsed result, in the reported unit.
    pub result: ParsedResult,
    /// The unit text exactly as reported (the declared unit of the column for a wide input).
    pub unit_raw: Ustr,
    /// The canonical spelling of the reported unit.
    pub unit: Option<Ustr>,
    /// Result in the standard unit, for analysis (censored values follow the policy).
    pub std_value: Option<f64>,
    /// Standard unit of the test.
    pub std_unit: Option<Ustr>,
    /// Site's reference range converted to the standard unit.
    pub std_ref_low: Option<f64>,
    /// Site's reference range converted to the standard unit.
    pub std_ref_high: Option<f64>,
    /// What parsing found.
    pub status: ParseStatus,
}

/// The parts of a lab record that only some records have.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LabExtra {
    /// The column the result came from, for a wide input (one record per test column).
    pub source_column: Option<Ustr>,
    /// For a censored result, its limit converted to the standard unit.
    pub std_limit: Option<f64>,
    /// The source's own sequence number, for an SDTM LB input (`LBSEQ`; None when absent or
    /// not a positive whole number). Derive keeps it as LBSEQ when every record has one.
    pub source_seq: Option<i64>,
}

impl LabExtra {
    /// None when every part is absent.
    fn boxed(self) -> Option<Box<LabExtra>> {
        (self != LabExtra::default()).then(|| Box::new(self))
    }
}

impl LabRecord {
    /// The column the result came from, for a wide input (one record per test column).
    pub fn source_column(&self) -> Option<Ustr> {
        self.extra.as_ref().and_then(|e| e.source_column)
    }

    /// For a censored result, its limit converted to the standard unit.
    pub fn std_limit(&self) -> Option<f64> {
        self.extra.as_ref().and_then(|e| e.std_limit)
    }

    /// The source's own sequence number, for an SDTM LB input (`LBSEQ`; None when absent or
    /// not a positive whole number). Derive keeps it as LBSEQ when every record has one.
    pub fn source_seq(&self) -> Option<i64> {
        self.extra.as_ref().and_then(|e| e.source_seq)
    }

    /// Whether the record carries an analysable result: a standardized number, or the category
    /// of a qualitative test.
    pub fn has_value(&self) -> bool {
        self.std_value.is_some()
            || (self.status == ParseStatus::Ok && matches!(self.result, ParsedResult::Text(_)))
    }
}

/// Rows read from one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileAccount {
    /// The file.
    pub file: String,
    /// What it holds: `subjects`, `labs` or `events`.
    pub kind: &'static str,
    /// Records produced from the file, which validate accounts for (accepted + quarantined):
    /// the data rows, except for a wide lab file, where every test cell of a row is a record.
    pub rows_read: u64,
    /// Data rows read (header excluded): lines of a text file (a quoted field may span lines),
    /// rows of a worksheet (empty rows skipped).
    pub data_rows: u64,
}

/// Everything ingest read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestOutput {
    /// Subjects.
    pub subjects: Vec<SubjectRecord>,
    /// Lab results.
    pub labs: Vec<LabRecord>,
    /// Events.
    pub events: Vec<EventRecord>,
    /// Time-to-event endpoints, from an events input with `layout = "tte"`.
    pub tte: Vec<TteRecord>,
    /// Rows read per file.
    pub files: Vec<FileAccount>,
    /// The assessments input (Child-Pugh grades), empty without `[inputs.assessments]`.
    #[serde(skip)]
    pub assessments: crate::assessments::Assessments,
}

/// Read every input the pipeline names.
pub fn ingest(lp: &LoadedPipeline) -> Result<IngestOutput, IngestError> {
    ingest_observed(lp, &|_| {})
}

/// How far ingest has advanced through one lab file: `advanced` more of its `total` bytes of
/// text (rows, for a worksheet). Reported every [`PROGRESS_EVERY`] rows and once more when a
/// part of the file is done, from the thread reading that part (files, and the parts of a large
/// text, are read in parallel); the `advanced` of a file's reports add up to its `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileProgress<'a> {
    /// The file.
    pub file: &'a Path,
    /// Bytes (rows for a worksheet) read since this part's previous report.
    pub advanced: u64,
    /// Bytes (rows for a worksheet) in all.
    pub total: u64,
}

/// Rows between two [`FileProgress`] reports.
pub const PROGRESS_EVERY: u64 = 1 << 16;

/// A callback told how reading each lab file advances (for progress bars).
pub type OnFile<'a> = &'a (dyn Fn(FileProgress<'_>) + Sync);

/// [`ingest`], telling `on_file` how reading each lab file advances.
pub fn ingest_observed(
    lp: &LoadedPipeline,
    on_file: OnFile<'_>,
) -> Result<IngestOutput, IngestError> {
    let mut out = IngestOutput::default();
    let jobs = match lab_jobs(lp) {
        Ok(jobs) => jobs,
        Err(e) => {
            // A subjects file that cannot be read is reported first, as always.
            read_subjects(lp, &mut out)?;
            return Err(e);
        }
    };
    // The lab files are read from disk and decoded while the subjects and events are read:
    // the lab records need the subjects' reference dates, reading the files does not. Errors
    // are reported in the order subjects, labs, events.
    let mut events = IngestOutput::default();
    let ((subjects, events_read), opened) = rayon::join(
        || (read_subjects(lp, &mut out), read_events(lp, &mut events)),
        || {
            use rayon::prelude::*;
            jobs.par_iter().map(open_lab).collect::<Vec<_>>()
        },
    );
    subjects?;
    read_labs(lp, &mut out, on_file, &jobs, opened)?;
    events_read?;
    out.events = events.events;
    out.tte = events.tte;
    out.files.extend(events.files);
    out.assessments = crate::assessments::read(lp)?;
    let known: rustc_hash::FxHashSet<&str> =
        out.subjects.iter().map(|s| s.subject_id.as_str()).collect();
    out.assessments
        .flag_unknown_subjects(&|id| known.contains(id));
    if let Some(file) = &out.assessments.file {
        out.files.push(FileAccount {
            file: file.to_string_lossy().into_owned(),
            kind: "assessments",
            rows_read: out.assessments.rows_read,
            data_rows: out.assessments.rows_read,
        });
    }
    Ok(out)
}

/// The files a path or glob of the pipeline matches; none is an error.
fn expand(lp: &LoadedPipeline, key: &str, pattern: &str) -> Result<Vec<PathBuf>, IngestError> {
    let v = lp.expand(pattern).unwrap_or_default();
    if v.is_empty() {
        Err(IngestError::NoFiles {
            key: key.to_string(),
            pattern: pattern.to_string(),
        })
    } else {
        Ok(v)
    }
}

/// Where a source row is: file, worksheet (workbooks) and line, as [`Lineage`] names it.
pub type RowKey = (Ustr, Option<Ustr>, u64);

/// The full source rows behind some records, for the quarantine: for each wanted (file, sheet,
/// line), a JSON object of every column of the file's header (a column past the header is
/// named `#n`, its 1-based position) with its text as read (trimmed), keys in header order
/// (a JSON object's order is kept by every reader that matters here: `json.loads`,
/// `jsonlite`, DuckDB's `json` functions). Subjects' private columns are left out, and
/// `map_id` is applied to the subject-id column (pseudonymization: the raw files hold the
/// site's ids). Only files with a wanted row are read again, each up to its last wanted row.
pub fn raw_rows(
    lp: &LoadedPipeline,
    wanted: &[RowKey],
    map_id: &(dyn Fn(&str) -> String + Sync),
) -> Result<FxHashMap<RowKey, String>, IngestError> {
    let mut out: FxHashMap<RowKey, String> = FxHashMap::default();
    let mut last_line: FxHashMap<Ustr, u64> = FxHashMap::default();
    let want: rustc_hash::FxHashSet<RowKey> = wanted.iter().copied().collect();
    for &(file, _, line) in wanted {
        let l = last_line.entry(file).or_insert(0);
        *l = (*l).max(line);
    }
    if want.is_empty() {
        return Ok(out);
    }
    let p = &lp.pipeline;
    /// How to read one input file again.
    struct Source<'a> {
        key: String,
        path: PathBuf,
        encoding: Encoding,
        delimiter: Option<char>,
        sheet: Option<&'a str>,
        columns: &'a BTreeMap<String, String>,
        private: &'a [String],
        last: u64,
    }
    let s = &p.inputs.subjects;
    let mut inputs = vec![(
        "inputs.subjects.path".to_string(),
        s.path.as_str(),
        s.encoding,
        s.delimiter,
        s.sheet.as_deref(),
        &s.columns,
        s.private_columns.as_slice(),
    )];
    for (i, l) in p.inputs.labs.iter().enumerate() {
        inputs.push((
            format!("inputs.labs[{i}].path"),
            &l.path,
            l.encoding,
            l.delimiter,
            l.sheet.as_deref(),
            &l.columns,
            &[],
        ));
    }
    if let Some(e) = &p.inputs.events {
        inputs.push((
            "inputs.events.path".into(),
            &e.path,
            e.encoding,
            e.delimiter,
            None,
            &e.columns,
            &[],
        ));
    }
    if let Some(a) = &p.inputs.assessments {
        inputs.push((
            "inputs.assessments.path".into(),
            &a.path,
            a.encoding,
            a.delimiter,
            None,
            &a.columns,
            &[],
        ));
    }
    // Files with a wanted row, in input order; merged in that order (the first input naming a
    // row wins).
    let mut jobs = Vec::new();
    for (key, pattern, encoding, delimiter, sheet, columns, private) in inputs {
        for path in expand(lp, &key, pattern)? {
            let file = Ustr::from(&path.to_string_lossy());
            if let Some(&last) = last_line.get(&file) {
                jobs.push(Source {
                    key: key.clone(),
                    path,
                    encoding,
                    delimiter,
                    sheet,
                    columns,
                    private,
                    last,
                });
            }
        }
    }
    // The wanted lines of a file, ascending.
    let lines_of = |file: Ustr| {
        let mut lines: Vec<u64> = want
            .iter()
            .filter(|k| k.0 == file && k.1.is_none())
            .map(|k| k.2)
            .collect();
        lines.sort_unstable();
        lines
    };
    let scan = |src: &Source<'_>| {
        let file = Ustr::from(&src.path.to_string_lossy());
        // A text in which every record is one physical line (no quotes, carriage returns only
        // before line feeds): jump from wanted line to wanted line instead of parsing every
        // record; Latin-1 lines are decoded one by one.
        let plain_rows = |text: &[u8], delimiter: char, latin1: bool, json: &RowJson<'_>| {
            let mut found = Vec::new();
            plain_lines(text, &lines_of(file), |n, line| {
                let decoded;
                let line = if latin1 {
                    decoded = latin1_string(line);
                    decoded.as_str()
                } else {
                    std::str::from_utf8(line).expect("a line of decoded text")
                };
                let cells: Vec<&str> = line.split(delimiter).map(str::trim).collect();
                found.push(((file, None, n), json.of(&cells)));
            });
            found
        };
        // A plain Latin-1 text is not decoded whole: only its header and the wanted lines are,
        // which is what the plain reader below gives for them from the whole decoded text.
        let mut read = None;
        if !is_xlsx(&src.path) && src.sheet.is_none() {
            let raw = read_raw(&src.path)?;
            let bytes = raw.bytes();
            let delimiter = src
                .delimiter
                .map(|c| c as u8)
                .unwrap_or_else(|| detect_delimiter(bytes));
            if raw.is_latin1(src.encoding) && is_plain(bytes) && delimiter.is_ascii() {
                let delimiter = char::from(delimiter);
                // The header is the first line that is not blank.
                let header: Vec<String> = bytes
                    .split(|&b| b == b'\n')
                    .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                    .find(|l| !l.is_empty())
                    .map(|l| {
                        latin1_string(l)
                            .split(delimiter)
                            .map(|f| f.trim().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                let index = column_index(&header, src.columns);
                let json = RowJson::new(&header, &index, src.private, map_id);
                return Ok(plain_rows(bytes, delimiter, true, &json));
            }
            read = Some(raw);
        }
        let mut rd = Rows::open_read(
            &src.path,
            read,
            src.encoding,
            src.delimiter,
            src.sheet,
            &src.key,
            src.columns,
        )?;
        let json = RowJson::new(&rd.header, &rd.index, src.private, map_id);
        if let Some((text, delimiter)) = rd.plain_text() {
            return Ok(plain_rows(text, delimiter, false, &json));
        }
        let mut found = Vec::new();
        while let Some(row) = rd.next()? {
            let k = (row.file, row.sheet, row.line);
            if want.contains(&k) {
                let cells: Vec<&str> = (0..row.record.len()).map(|i| row.at(i)).collect();
                found.push((k, json.of(&cells)));
            }
            if row.line >= src.last {
                break;
            }
        }
        Ok::<_, IngestError>(found)
    };
    // One file at a time: the run reads them beside other work (validate's ordering of the
    // findings), and only one file's text is in memory at once.
    let results: Vec<Result<_, IngestError>> = jobs.iter().map(scan).collect();
    for r in results {
        for (k, json) in r? {
            out.entry(k).or_insert(json);
        }
    }
    Ok(out)
}

/// `each` with every physical line `wanted` (1-based, ascending) of a text in which every
/// record is one line ([`is_plain`]), without its line end: what the CSV reader gives for those
/// records, found by jumping from line to line instead of parsing every record.
fn plain_lines(text: &[u8], wanted: &[u64], mut each: impl FnMut(u64, &[u8])) {
    let mut wanted = wanted.iter().copied().peekable();
    // Line n runs from the end of line n - 1 to the next line end (or the end of the text).
    let ends = memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len()));
    let mut start = 0;
    for (n, end) in (1u64..).zip(ends) {
        let Some(&next) = wanted.peek() else { break };
        let line = &text[start..end];
        start = (end + 1).min(text.len());
        if n < next {
            continue;
        }
        wanted.next();
        each(n, line.strip_suffix(b"\r").unwrap_or(line));
    }
}

/// A source row as a JSON object for the quarantine ([`raw_rows`]): every column of the header
/// but the hidden (private) ones, the subject-id column mapped, names escaped once per file.
struct RowJson<'a> {
    names: Vec<Vec<u8>>,
    hidden: Vec<usize>,
    id_col: Option<usize>,
    map_id: &'a (dyn Fn(&str) -> String + Sync),
}

impl<'a> RowJson<'a> {
    fn new(
        header: &[String],
        index: &FxHashMap<String, usize>,
        private: &[String],
        map_id: &'a (dyn Fn(&str) -> String + Sync),
    ) -> RowJson<'a> {
        RowJson {
            names: header.iter().map(|h| Self::name(h)).collect(),
            hidden: private
                .iter()
                .filter_map(|c| index.get(c).copied())
                .collect(),
            id_col: ["subject_id", "USUBJID"]
                .iter()
                .find_map(|c| index.get(*c).copied()),
            map_id,
        }
    }

    fn name(name: &str) -> Vec<u8> {
        serde_json::to_vec(name).expect("a string serializes")
    }

    /// The row of `cells` (a column past the header is named `#n`, its 1-based position),
    /// written straight into its JSON text, without a string per field.
    fn of(&self, cells: &[&str]) -> String {
        let width = self.names.len().max(cells.len());
        let mut json = Vec::with_capacity(16 * width + 2);
        json.push(b'{');
        let mut first = true;
        for i in (0..width).filter(|i| !self.hidden.contains(i)) {
            if !first {
                json.extend_from_slice(b", ");
            }
            first = false;
            match self.names.get(i) {
                Some(name) => json.extend_from_slice(name),
                None => json.extend_from_slice(&Self::name(&format!("#{}", i + 1))),
            }
            json.extend_from_slice(b": ");
            let v = cells.get(i).copied().unwrap_or("");
            let written = if Some(i) == self.id_col {
                serde_json::to_writer(&mut json, &(self.map_id)(v))
            } else {
                serde_json::to_writer(&mut json, v)
            };
            written.expect("a string serializes");
        }
        json.push(b'}');
        String::from_utf8(json).expect("JSON text is UTF-8")
    }
}

/// Contract name → SDTM DM variable.
const DM_COLUMNS: &[(&str, &str)] = &[
    ("study_id", "STUDYID"),
    ("site_id", "SITEID"),
    ("subject_id", "USUBJID"),
    ("arm", "ARMCD"),
    ("randomization_date", "RFSTDTC"),
    ("consent_date", "RFICDTC"),
    ("first_dose_date", "RFXSTDTC"),
    ("sex", "SEX"),
    ("age", "AGE"),
];

/// DM arm codes that mean the subject was never randomized to an arm (compared ignoring case).
const DM_NO_ARM: &[&str] = &["SCRNFAIL", "NOTASSGN"];

fn read_subjects(lp: &LoadedPipeline, out: &mut IngestOutput) -> Result<(), IngestError> {
    let p = &lp.pipeline;
    let s = &p.inputs.subjects;
    let sdtm = s.layout == SubjectsLayout::SdtmDm;
    for path in expand(lp, "inputs.subjects.path", &s.path)? {
        let mut rd = Rows::open(
            &path,
            s.encoding,
            s.delimiter,
            s.sheet.as_deref(),
            "inputs.subjects.sheet",
            &s.columns,
        )?;
        if sdtm {
            rd.require(&[
                "STUDYID", "USUBJID", "SITEID", "ARMCD", "RFSTDTC", "SEX", "AGE",
            ])?;
            for (contract, var) in DM_COLUMNS {
                rd.alias(contract, var);
            }
        } else {
            rd.require(&[
                "study_id",
                "site_id",
                "subject_id",
                "arm",
                "randomization_date",
                "sex",
                "age",
            ])?;
        }
        // Bad fields are reported under the file's own variable name for SDTM.
        let shown = |col: &str| -> String {
            if sdtm {
                DM_COLUMNS
                    .iter()
                    .find(|(c, _)| *c == col)
                    .map_or(col, |(_, v)| v)
                    .to_string()
            } else {
                col.to_string()
            }
        };
        let mut n = 0;
        while let Some(row) = rd.next()? {
            n += 1;
            let mut bad = BTreeMap::new();
            let mut date = |col: &str| -> Option<NaiveDate> {
                let raw = row.get(col)?;
                if raw.is_empty() {
                    return None;
                }
                let d = parse_date(raw, s.date_format.as_deref());
                if d.is_none() {
                    bad.insert(shown(col), raw.to_string());
                }
                d
            };
            let randomization_date = date("randomization_date");
            let consent_date = date("consent_date");
            let first_dose_date = date("first_dose_date");
            let reference_date = match p.study.reference_date {
                ReferenceDate::Randomization => randomization_date,
                ReferenceDate::Consent => consent_date,
                ReferenceDate::FirstDose => first_dose_date,
            };
            let mut num = |col: &str| -> Option<f64> {
                let raw = row.get(col)?;
                if raw.is_empty() {
                    return None;
                }
                let v = parse_number(raw);
                if v.is_none() {
                    bad.insert(shown(col), raw.to_string());
                }
                v
            };
            let age = num("age");
            let doses_received = num("doses_received").map(|v| v as i64);
            let strata = Strata::new(
                s.strata
                    .iter()
                    .filter_map(|c| row.get(c).map(|v| (c.clone(), v.to_string())))
                    .collect(),
            );
            let arm = row
                .get("arm")
                .filter(|a| !a.is_empty())
                .filter(|a| !(sdtm && DM_NO_ARM.iter().any(|x| a.eq_ignore_ascii_case(x))))
                .map(str::to_string);
            out.subjects.push(SubjectRecord {
                lineage: row.lineage(),
                study_id: row.text("study_id"),
                site_id: row.text("site_id"),
                subject_id: row.text("subject_id"),
                arm,
                randomization_date,
                consent_date,
                first_dose_date,
                doses_received,
                sex: row
                    .get("sex")
                    .filter(|a| !a.is_empty())
                    .map(|v| v.to_uppercase()),
                age,
                strata,
                reference_date,
                bad_fields: bad,
                columns: if p.eligibility.is_empty() {
                    BTreeMap::new()
                } else {
                    row.all_columns(&s.private_columns)
                },
            });
        }
        out.files.push(FileAccount {
            file: path.to_string_lossy().into_owned(),
            kind: "subjects",
            rows_read: n,
            data_rows: n,
        });
    }
    Ok(())
}

/// What the lab layouts need to know about a subject.
#[derive(Clone, Copy)]
struct SubjectRef<'a> {
    reference: Option<NaiveDate>,
    study_id: &'a str,
    site_id: &'a str,
}

/// One result as a layout read it, before parsing and standardization.
struct RawLab {
    lineage: Lineage,
    source_column: Option<Ustr>,
    study_id: Ustr,
    site_id: Ustr,
    subject_id: Ustr,
    visit: Ustr,
    collection_date: Option<NaiveDate>,
    date_raw: Ustr,
    study_day: Option<i64>,
    /// Whether the layout's timing (date or study day) is usable.
    timing_ok: bool,
    test_code: Ustr,
    test_name: Ustr,
    result_raw: Ustr,
    unit_raw: Ustr,
    ref_low_raw: Option<Ustr>,
    ref_high_raw: Option<Ustr>,
    field_count_ok: bool,
    /// The source says the test was not done (SDTM `LBSTAT`).
    not_done: bool,
    /// The source's own sequence number (SDTM `LBSEQ`).
    source_seq: Option<i64>,
}

/// What standardization decided for one result (the rest of a record is the raw row's).
struct Standardized {
    result: ParsedResult,
    status: ParseStatus,
    std_value: Option<f64>,
    std_limit: Option<f64>,
    std_unit: Option<Ustr>,
    std_ref: (Option<f64>, Option<f64>),
}

/// Parses and standardizes lab results: the panel's standard units and conversions, the
/// censoring policy, and a cache of conversions by (test, unit spelling).
struct Standardizer<'p> {
    registry: &'static Registry,
    /// Qualitative tests and their allowed values (upper-case; empty: any text).
    qualitative: FxHashMap<&'p str, Vec<String>>,
    /// Per test: its standard unit (also interned) and the registry with its extra conversions.
    std_of: FxHashMap<&'p str, (&'p str, Ustr, Registry)>,
    policy: CensoredPolicy,
    cache: FxHashMap<(Ustr, Ustr), Result<Conversion, ParseStatus>>,
    /// Canonical spelling by unit text as reported.
    canon: FxHashMap<Ustr, Option<Ustr>>,
}

impl<'p> Standardizer<'p> {
    fn new(lp: &'p LoadedPipeline) -> Standardizer<'p> {
        let p = &lp.pipeline;
        let registry = Registry::builtin();
        let mut std_of = FxHashMap::default();
        for t in &p.labs {
            let reg = t.registry_or_builtin();
            std_of.insert(t.code.as_str(), (t.unit.as_str(), Ustr::from(&t.unit), reg));
        }
        let qualitative = p
            .labs
            .iter()
            .filter(|t| t.result == crate::spec::ResultKind::Qualitative)
            .map(|t| {
                (
                    t.code.as_str(),
                    t.values.iter().map(|v| v.trim().to_uppercase()).collect(),
                )
            })
            .collect();
        Standardizer {
            registry,
            qualitative,
            std_of,
            policy: p.ingest.censored,
            cache: FxHashMap::default(),
            canon: FxHashMap::default(),
        }
    }

    fn record(&mut self, raw: RawLab) -> LabRecord {
        let registry = self.registry;
        let unit = *self
            .canon
            .entry(raw.unit_raw)
            .or_insert_with(|| registry.canonical(&raw.unit_raw).map(Ustr::from));
        let s = self.standardize(&raw);
        LabRecord {
            lineage: raw.lineage,
            extra: LabExtra {
                source_column: raw.source_column,
                std_limit: s.std_limit,
                source_seq: raw.source_seq,
            }
            .boxed(),
            study_id: raw.study_id,
            site_id: raw.site_id,
            subject_id: raw.subject_id,
            visit: raw.visit,
            collection_date: raw.collection_date,
            date_raw: raw.date_raw,
            study_day: raw.study_day,
            test_code: raw.test_code,
            test_name: raw.test_name,
            result_raw: raw.result_raw,
            result: s.result,
            unit_raw: raw.unit_raw,
            unit,
            std_value: s.std_value,
            std_unit: s.std_unit,
            std_ref_low: s.std_ref.0,
            std_ref_high: s.std_ref.1,
            status: s.status,
        }
    }

    /// Parse the result and convert it to the test's standard unit.
    fn standardize(&mut self, raw: &RawLab) -> Standardized {
        let result = match parse_result(&raw.result_raw) {
            ParsedResult::Missing if raw.not_done => ParsedResult::NotDone,
            r => r,
        };
        let mut status = match (&result, raw.field_count_ok) {
            (_, false) => ParseStatus::FieldCount,
            (ParsedResult::Missing, _) => ParseStatus::BlankResult,
            (ParsedResult::NotDone, _) => ParseStatus::NotDone,
            (ParsedResult::Text(_), _) => ParseStatus::TextResult,
            (ParsedResult::Censored(..), _) => ParseStatus::Censored,
            (ParsedResult::Numeric(_), _) => ParseStatus::Ok,
        };
        let test_code = raw.test_code;
        if let Some(allowed) = self.qualitative.get(test_code.as_str()) {
            // A qualitative test: the result is a category, kept as text; no unit, no value.
            let (result, status) = match result {
                ParsedResult::Text(_) | ParsedResult::Numeric(_) | ParsedResult::Censored(..) => {
                    let t = raw.result_raw.trim().to_uppercase();
                    let ok = allowed.is_empty() || allowed.contains(&t);
                    let st = if !raw.field_count_ok {
                        ParseStatus::FieldCount
                    } else if !ok {
                        ParseStatus::UnexpectedValue
                    } else if !raw.timing_ok {
                        ParseStatus::BadDate
                    } else {
                        ParseStatus::Ok
                    };
                    (ParsedResult::Text(Ustr::from(&t)), st)
                }
                other => (other, status),
            };
            return Standardized {
                result,
                status,
                std_value: None,
                std_limit: None,
                std_unit: None,
                std_ref: (None, None),
            };
        }
        let mut std_value = None;
        let mut std_limit = None;
        let mut std_ref = (None, None);
        let std_of = self.std_of.get(test_code.as_str());
        let std_unit = std_of.map(|(_, u, _)| *u);
        match std_of {
            None => {
                if status == ParseStatus::Ok || status == ParseStatus::Censored {
                    status = ParseStatus::UnknownTest;
                }
            }
            Some((std_unit, _, reg)) => {
                let conv =
                    *self
                        .cache
                        .entry((test_code, raw.unit_raw))
                        .or_insert_with(|| match reg.canonical(&raw.unit_raw) {
                            None => Err(ParseStatus::UnknownUnit),
                            Some(_) => reg
                                .conversion(&test_code, &raw.unit_raw, std_unit)
                                .map_err(|_| ParseStatus::NoConversion),
                        });
                match conv {
                    Err(st) => {
                        if matches!(status, ParseStatus::Ok | ParseStatus::Censored) {
                            status = st;
                        }
                    }
                    Ok(c) => {
                        if let ParsedResult::Censored(_, lim) = result {
                            std_limit = c.apply(lim);
                        }
                        std_value = match result {
                            ParsedResult::Numeric(v) => c.apply(v),
                            ParsedResult::Censored(op, lim) => match (self.policy, op) {
                                (CensoredPolicy::Missing, _) => None,
                                (CensoredPolicy::Limit, _) => c.apply(lim),
                                // Half the limit is a convention below a quantification limit;
                                // above an upper limit the limit itself is the value used.
                                (CensoredPolicy::HalfLimit, Censoring::Below) => c.apply(lim / 2.0),
                                (CensoredPolicy::HalfLimit, Censoring::Above) => c.apply(lim),
                            },
                            _ => None,
                        };
                        let r = |v: &Option<Ustr>| {
                            v.as_deref().and_then(parse_number).and_then(|v| c.apply(v))
                        };
                        std_ref = (r(&raw.ref_low_raw), r(&raw.ref_high_raw));
                    }
                }
            }
        }
        if status == ParseStatus::Ok && !raw.timing_ok {
            status = ParseStatus::BadDate;
        }
        Standardized {
            result,
            status,
            std_value,
            std_limit,
            std_unit,
            std_ref,
        }
    }
}

/// One lab file to read: the index of its input, the input, the file.
type LabJob<'p> = (usize, &'p LabInput, PathBuf);

/// Every lab file, in the order of the pipeline's inputs and of the paths a glob matched.
fn lab_jobs(lp: &LoadedPipeline) -> Result<Vec<LabJob<'_>>, IngestError> {
    let mut jobs = Vec::new();
    for (i, input) in lp.pipeline.inputs.labs.iter().enumerate() {
        for path in expand(lp, &format!("inputs.labs[{i}].path"), &input.path)? {
            jobs.push((i, input, path));
        }
    }
    Ok(jobs)
}

/// Bytes of text in a part of a lab file read on its own ([`Rows::split`]): enough parts for
/// the threads to share a few large files evenly, few enough that each part's start (its own
/// caches and standardizer) costs nothing measurable.
const LAB_PART_BYTES: usize = 16 << 20;

/// A lab file read and decoded, ready for its records ([`Rows::open`]), in parts that can be
/// read in parallel, each with an upper bound of its data rows.
fn open_lab<'a>((i, input, path): &'a LabJob<'_>) -> Result<Vec<(Rows<'a>, usize)>, IngestError> {
    Rows::open(
        path,
        input.encoding,
        input.delimiter,
        input.sheet.as_deref(),
        &format!("inputs.labs[{i}].sheet"),
        &input.columns,
    )
    .map(|rows| rows.split(LAB_PART_BYTES))
}

/// The records of the lab files `jobs`, opened as `opened` (one per job, in order).
fn read_labs<'a>(
    lp: &LoadedPipeline,
    out: &mut IngestOutput,
    on_file: OnFile<'_>,
    jobs: &'a [LabJob<'a>],
    opened: Vec<Result<Vec<(Rows<'a>, usize)>, IngestError>>,
) -> Result<(), IngestError> {
    // The first row of a subject wins, as in validate.
    let mut reference: FxHashMap<&str, SubjectRef<'_>> = FxHashMap::default();
    for s in &out.subjects {
        reference
            .entry(s.subject_id.as_str())
            .or_insert(SubjectRef {
                reference: s.reference_date,
                study_id: &s.study_id,
                site_id: &s.site_id,
            });
    }
    // Files, and parts of large texts, are read in parallel, each straight into its own region
    // of one vector sized by its lines (`inplace`), so the records are in the order of the
    // pipeline's inputs, of the paths a glob matched and of the lines whatever the number of
    // threads, and the first failing part in that order gives the error reported.
    let read = |(job, rd): (usize, Result<Rows<'a>, IngestError>),
                labs: &mut Sink<'_, LabRecord>| {
        let mut rd = rd?;
        rd.on_progress = Some(on_file);
        let input = jobs[job].1;
        let ctx = LayoutCtx {
            input,
            reference: &reference,
            lp,
        };
        let mut std = Standardizer::new(lp);
        let data_rows = match input.layout {
            LabLayout::Long => read_long(&mut rd, &ctx, &mut std, labs)?,
            LabLayout::Wide => read_wide(&mut rd, &ctx, &mut std, labs)?,
            LabLayout::Sdtm => read_sdtm(&mut rd, &ctx, &mut std, labs)?,
        };
        rd.report(true);
        Ok::<_, IngestError>((job, labs.len() as u64, data_rows))
    };
    // A data row gives at most one record, or one per test column for a wide layout.
    let mut work = Vec::new();
    for (job, parts) in opened.into_iter().enumerate() {
        let input = jobs[job].1;
        let per_row = match input.layout {
            LabLayout::Wide => input.tests.len(),
            LabLayout::Long | LabLayout::Sdtm => 1,
        };
        match parts {
            Ok(parts) => work.extend(
                parts
                    .into_iter()
                    .map(|(rows, bound)| ((job, Ok(rows)), bound.saturating_mul(per_row))),
            ),
            Err(e) => work.push(((job, Err(e)), 0)),
        }
    }
    let (labs, parts) = crate::inplace::fill_in_order(work, read);
    // One account per file, its parts' counts added.
    let mut last_job = None;
    for part in parts {
        let (job, rows_read, data_rows) = part?;
        match out.files.last_mut() {
            Some(account) if last_job == Some(job) => {
                account.rows_read += rows_read;
                account.data_rows += data_rows;
            }
            _ => out.files.push(FileAccount {
                file: jobs[job].2.to_string_lossy().into_owned(),
                kind: "labs",
                rows_read,
                data_rows,
            }),
        }
        last_job = Some(job);
    }
    out.labs = labs;
    Ok(())
}

/// What every lab layout reader needs besides the rows.
struct LayoutCtx<'a> {
    input: &'a LabInput,
    reference: &'a FxHashMap<&'a str, SubjectRef<'a>>,
    lp: &'a LoadedPipeline,
}

impl LayoutCtx<'_> {
    fn date_format(&self) -> Option<&str> {
        self.input.date_format.as_deref()
    }

    fn subject(&self, id: &str) -> Option<SubjectRef<'_>> {
        self.reference.get(id).copied()
    }

    /// Study day of a date for a subject (None without either).
    fn day_of(&self, subject_id: &str, date: Option<NaiveDate>) -> Option<i64> {
        match (date, self.subject(subject_id).and_then(|s| s.reference)) {
            (Some(d), Some(r)) => Some(study_day(d, r)),
            _ => None,
        }
    }
}

/// The default contract: one row per result.
fn read_long(
    rd: &mut Rows<'_>,
    ctx: &LayoutCtx<'_>,
    std: &mut Standardizer<'_>,
    labs: &mut Sink<'_, LabRecord>,
) -> Result<u64, IngestError> {
    rd.require(&[
        "subject_id",
        "visit",
        "collection_date",
        "test_code",
        "result",
        "unit",
    ])?;
    // Column positions are looked up once per file, not once per row.
    let [
        subject,
        date,
        study,
        site,
        visit,
        test,
        name,
        result,
        unit,
        lo,
        hi,
    ] = [
        "subject_id",
        "collection_date",
        "study_id",
        "site_id",
        "visit",
        "test_code",
        "test_name",
        "result",
        "unit",
        "ref_low",
        "ref_high",
    ]
    .map(|c| rd.index.get(c).copied());
    // Per column, a cache in front of the global interner (ids, dates and visits come in runs;
    // codes, names, units and limits take few values). Results take more values, and repeat
    // too: their map keeps more of them.
    let [
        mut c_subject,
        mut c_date,
        mut c_study,
        mut c_site,
        mut c_name,
        mut c_unit,
        mut c_lo,
        mut c_hi,
    ] = std::array::from_fn(|_| SymCache::new(false));
    let (mut c_visit, mut c_test) = (SymCache::new(true), SymCache::new(true));
    let mut c_result = SymCache::with_max(false, 1 << 16);
    // The date and the subject's reference of the row before, which the next rows mostly share.
    let mut last_date: Option<(Ustr, Option<NaiveDate>)> = None;
    let mut last_ref: Option<(Ustr, Option<NaiveDate>)> = None;
    let mut n = 0;
    while let Some(row) = rd.next()? {
        n += 1;
        let subject_id = c_subject.get(row.field(subject).unwrap_or(""));
        let date_raw = c_date.get(row.field(date).unwrap_or(""));
        let collection_date = match last_date {
            Some((raw, d)) if raw == date_raw => d,
            _ => {
                let d = parse_date(&date_raw, ctx.date_format());
                last_date = Some((date_raw, d));
                d
            }
        };
        let reference = match last_ref {
            Some((id, r)) if id == subject_id => r,
            _ => {
                let r = ctx.subject(&subject_id).and_then(|s| s.reference);
                last_ref = Some((subject_id, r));
                r
            }
        };
        let field = |c: &mut SymCache, i| row.field(i).map(|v| c.get(v));
        labs.push(std.record(RawLab {
            lineage: row.lineage(),
            source_column: None,
            study_id: c_study.get(row.field(study).unwrap_or("")),
            site_id: c_site.get(row.field(site).unwrap_or("")),
            visit: c_visit.get(row.field(visit).unwrap_or("")),
            collection_date,
            date_raw,
            study_day: collection_date.zip(reference).map(|(d, r)| study_day(d, r)),
            timing_ok: collection_date.is_some(),
            subject_id,
            test_code: c_test.get(row.field(test).unwrap_or("")),
            test_name: c_name.get(row.field(name).unwrap_or("")),
            result_raw: c_result.get(row.field(result).unwrap_or("")),
            unit_raw: c_unit.get(row.field(unit).unwrap_or("")),
            ref_low_raw: field(&mut c_lo, lo),
            ref_high_raw: field(&mut c_hi, hi),
            field_count_ok: row.field_count_ok,
            not_done: false,
            source_seq: None,
        }));
    }
    Ok(n)
}

/// Interning of one column's fields as a file is read: the field of the row before is reused
/// when it repeats, then a map of the column's own values is asked (up to the cache's limit of
/// them), and only then the global interner, which hashes the text and takes a lock.
///
/// A field of at most 16 bytes (ids, dates, codes, units, limits, most results) is looked up by
/// a [`ShortKey`] made of two word loads, compared and hashed as integers; longer fields by
/// their text.
struct SymCache {
    /// Upper-case the values (codes and visit names).
    upper: bool,
    /// How many values each map keeps.
    max: usize,
    last_short: Option<(ShortKey, Ustr)>,
    short: FxHashMap<ShortKey, Ustr>,
    last_raw: String,
    last: Option<Ustr>,
    map: FxHashMap<Box<str>, Ustr>,
}

/// A text of at most 16 bytes as integers: its first and last 8 bytes (for 4 to 7 bytes, its
/// first and last 4; for fewer, every byte), which with the length determine it exactly.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ShortKey {
    head: u64,
    tail: u64,
    len: u8,
}

impl ShortKey {
    fn of(b: &[u8]) -> Option<ShortKey> {
        let n = b.len();
        let word8 = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
        let word4 = |s: &[u8]| u64::from(u32::from_le_bytes(s.try_into().expect("4 bytes")));
        let (head, tail) = match n {
            8..=16 => (word8(&b[..8]), word8(&b[n - 8..])),
            4..=7 => (word4(&b[..4]), word4(&b[n - 4..])),
            0..=3 => (
                b.iter()
                    .enumerate()
                    .fold(0, |w, (i, &c)| w | u64::from(c) << (8 * i)),
                0,
            ),
            _ => return None,
        };
        Some(ShortKey {
            head,
            tail,
            len: n as u8,
        })
    }
}

impl SymCache {
    /// Values kept in a column's own map: a column with more distinct values goes to the
    /// global interner for the rest.
    const MAX: usize = 4096;

    fn new(upper: bool) -> SymCache {
        SymCache::with_max(upper, Self::MAX)
    }

    /// A cache keeping up to `max` values of each length class.
    fn with_max(upper: bool, max: usize) -> SymCache {
        SymCache {
            upper,
            max,
            last_short: None,
            short: FxHashMap::default(),
            last_raw: String::new(),
            last: None,
            map: FxHashMap::default(),
        }
    }

    fn intern(&self, raw: &str) -> Ustr {
        if self.upper {
            upper_sym(raw)
        } else {
            Ustr::from(raw)
        }
    }

    /// The interned value of a field (trimmed already), upper-cased when the column asks.
    fn get(&mut self, raw: &str) -> Ustr {
        if let Some(k) = ShortKey::of(raw.as_bytes()) {
            if let Some((last, u)) = self.last_short
                && last == k
            {
                return u;
            }
            let u = match self.short.get(&k) {
                Some(&u) => u,
                None => {
                    let u = self.intern(raw);
                    if self.short.len() < self.max {
                        self.short.insert(k, u);
                    }
                    u
                }
            };
            self.last_short = Some((k, u));
            return u;
        }
        if let Some(u) = self.last
            && self.last_raw == raw
        {
            return u;
        }
        let u = match self.map.get(raw) {
            Some(&u) => u,
            None => {
                let u = self.intern(raw);
                if self.map.len() < self.max {
                    self.map.insert(raw.into(), u);
                }
                u
            }
        };
        self.last_raw.clear();
        self.last_raw.push_str(raw);
        self.last = Some(u);
        u
    }
}

/// One row per subject and visit, one column per test.
fn read_wide(
    rd: &mut Rows<'_>,
    ctx: &LayoutCtx<'_>,
    std: &mut Standardizer<'_>,
    labs: &mut Sink<'_, LabRecord>,
) -> Result<u64, IngestError> {
    let timing_column = match ctx.input.timing {
        Timing::Date => "collection_date",
        Timing::StudyDay => "study_day",
    };
    rd.require(&["subject_id", timing_column])?;
    let mut columns = Vec::with_capacity(ctx.input.tests.len());
    for t in &ctx.input.tests {
        let idx = rd.header_position(&t.column)?;
        let name = ctx
            .lp
            .pipeline
            .labs
            .iter()
            .find(|x| x.code.eq_ignore_ascii_case(&t.code))
            .map(|x| Ustr::from(&x.name))
            .unwrap_or_default();
        columns.push((idx, t, name));
    }
    let mut n = 0;
    while let Some(row) = rd.next()? {
        n += 1;
        let subject_id = row.sym("subject_id");
        let date_raw = row.sym(match ctx.input.timing {
            Timing::Date => "collection_date",
            Timing::StudyDay => "study_day",
        });
        let (collection_date, study_day, timing_ok) = match ctx.input.timing {
            Timing::Date => {
                let d = parse_date(&row.text("collection_date"), ctx.date_format());
                (d, ctx.day_of(&subject_id, d), d.is_some())
            }
            Timing::StudyDay => {
                let day = parse_study_day(&row.text("study_day"));
                (None, day, day.is_some())
            }
        };
        for (idx, t, name) in &columns {
            labs.push(std.record(RawLab {
                lineage: row.lineage(),
                source_column: Some(Ustr::from(&t.column)),
                study_id: row.sym("study_id"),
                site_id: row.sym("site_id"),
                subject_id,
                visit: row.upper("visit"),
                collection_date,
                date_raw,
                study_day,
                timing_ok,
                test_code: upper_sym(t.code.trim()),
                test_name: *name,
                result_raw: Ustr::from(row.at(*idx)),
                unit_raw: Ustr::from(&t.unit),
                ref_low_raw: None,
                ref_high_raw: None,
                field_count_ok: row.field_count_ok,
                not_done: false,
                source_seq: None,
            }));
        }
    }
    Ok(n)
}

/// An SDTM LB domain.
fn read_sdtm(
    rd: &mut Rows<'_>,
    ctx: &LayoutCtx<'_>,
    std: &mut Standardizer<'_>,
    labs: &mut Sink<'_, LabRecord>,
) -> Result<u64, IngestError> {
    rd.require(&["USUBJID", "LBTESTCD", "LBORRES", "LBORRESU"])?;
    if !rd.has("LBDY") {
        rd.require(&["LBDTC"])?;
    }
    let mut n = 0;
    while let Some(row) = rd.next()? {
        n += 1;
        let subject_id = row.sym("USUBJID");
        let subject = ctx.subject(&subject_id);
        let collection_date = parse_date(&row.text("LBDTC"), ctx.date_format());
        let lbdy = row.text("LBDY");
        let (study_day, timing_ok) = if lbdy.is_empty() {
            (
                ctx.day_of(&subject_id, collection_date),
                collection_date.is_some(),
            )
        } else {
            let d = parse_study_day(&lbdy);
            (d, d.is_some())
        };
        let or_subject = |col: &str, f: fn(SubjectRef<'_>) -> &str| -> Ustr {
            match row.get(col).filter(|v| !v.is_empty()) {
                Some(v) => Ustr::from(v),
                None => Ustr::from(subject.map(f).unwrap_or("")),
            }
        };
        labs.push(
            std.record(RawLab {
                lineage: row.lineage(),
                source_column: None,
                study_id: or_subject("STUDYID", |s| s.study_id),
                site_id: or_subject("SITEID", |s| s.site_id),
                visit: row.upper("VISIT"),
                collection_date,
                date_raw: row.sym("LBDTC"),
                study_day,
                timing_ok,
                subject_id,
                test_code: row.upper("LBTESTCD"),
                test_name: row.sym("LBTEST"),
                result_raw: row.sym("LBORRES"),
                unit_raw: row.sym("LBORRESU"),
                ref_low_raw: row.get("LBORNRLO").map(Ustr::from),
                ref_high_raw: row.get("LBORNRHI").map(Ustr::from),
                field_count_ok: row.field_count_ok,
                not_done: row
                    .get("LBSTAT")
                    .is_some_and(|s| s.eq_ignore_ascii_case("NOT DONE")),
                source_seq: row
                    .get("LBSEQ")
                    .and_then(parse_number)
                    .filter(|x| x.fract() == 0.0 && *x >= 1.0 && *x < 1e15)
                    .map(|x| x as i64),
            }),
        );
    }
    Ok(n)
}

fn read_events(lp: &LoadedPipeline, out: &mut IngestOutput) -> Result<(), IngestError> {
    let Some(e) = &lp.pipeline.inputs.events else {
        return Ok(());
    };
    for path in expand(lp, "inputs.events.path", &e.path)? {
        let mut rd = Rows::open(
            &path,
            e.encoding,
            e.delimiter,
            None,
            "inputs.events.sheet",
            &e.columns,
        )?;
        let mut n = 0;
        let mut records = 0;
        match e.layout {
            EventsLayout::Events => {
                rd.require(&["subject_id", "event", "event_date"])?;
                while let Some(row) = rd.next()? {
                    n += 1;
                    let date_raw = row.text("event_date");
                    out.events.push(EventRecord {
                        lineage: row.lineage(),
                        study_id: row.text("study_id"),
                        subject_id: row.text("subject_id"),
                        event: row.text("event").to_uppercase(),
                        event_date: parse_date(&date_raw, e.date_format.as_deref()),
                        date_raw,
                    });
                    records += 1;
                }
            }
            EventsLayout::Tte => {
                rd.require(&["subject_id"])?;
                for ep in &e.endpoints {
                    rd.require(&[ep.time_column.as_str(), ep.status_column.as_str()])?;
                }
                while let Some(row) = rd.next()? {
                    n += 1;
                    for ep in &e.endpoints {
                        let time_raw = row.text(&ep.time_column);
                        let status_raw = row.text(&ep.status_column);
                        out.tte.push(TteRecord {
                            lineage: row.lineage(),
                            study_id: row.text("study_id"),
                            subject_id: row.text("subject_id"),
                            paramcd: ep.paramcd.clone(),
                            time_days: parse_number(&time_raw),
                            event: tte_event(&status_raw, &ep.event_value),
                            time_raw,
                            status_raw,
                        });
                        records += 1;
                    }
                }
            }
        }
        out.files.push(FileAccount {
            file: path.to_string_lossy().into_owned(),
            kind: "events",
            // Records: one per row, or one per subject and endpoint for `tte`.
            rows_read: records,
            data_rows: n,
        });
    }
    Ok(())
}

/// Whether a status text is the endpoint's event value (compared as text ignoring case, or as
/// numbers: `1.0` is `1`). None when blank.
fn tte_event(status: &str, event_value: &str) -> Option<bool> {
    let s = status.trim();
    if s.is_empty() {
        return None;
    }
    let v = event_value.trim();
    let same_number = matches!((parse_number(s), parse_number(v)), (Some(a), Some(b)) if a == b);
    Some(s.eq_ignore_ascii_case(v) || same_number)
}

/// A study day as written in a study-day column: a whole number other than 0 (CDISC has no day
/// 0). `15.0` is accepted as 15; `15.5`, `0` and text are not.
pub fn parse_study_day(raw: &str) -> Option<i64> {
    let t = raw.trim();
    let day = match t.parse::<i64>() {
        Ok(d) => d,
        Err(_) => {
            let v = parse_number(t)?;
            if v.fract() != 0.0 || v.abs() > 1e9 {
                return None;
            }
            v as i64
        }
    };
    (day != 0).then_some(day)
}

/// Study day of `date` relative to `reference` (CDISC: no day 0).
pub fn study_day(date: NaiveDate, reference: NaiveDate) -> i64 {
    let d = (date - reference).num_days();
    if d >= 0 { d + 1 } else { d }
}

/// Parse a date: ISO 8601 date or datetime (the date part), or the declared format.
pub fn parse_date(raw: &str, format: Option<&str>) -> Option<NaiveDate> {
    let raw = trim(raw);
    if raw.is_empty() {
        return None;
    }
    if let Some(f) = format {
        return NaiveDate::parse_from_str(raw, f).ok().or_else(|| {
            chrono::NaiveDateTime::parse_from_str(raw, f)
                .ok()
                .map(|d| d.date())
        });
    }
    let date_part = raw.split(['T', ' ']).next().unwrap_or(raw);
    if date_part.len() != 10 {
        return None;
    }
    // Fast path for the common `YYYY-MM-DD` with all digits; chrono's parser gives the same
    // answer for these, and still decides everything else.
    let b = date_part.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b[4] == b'-'
        && b[7] == b'-'
        && let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10))
    {
        return NaiveDate::from_ymd_opt(y as i32, m, d);
    }
    NaiveDate::parse_from_str(date_part, "%Y-%m-%d").ok()
}

/// Parse a plain number, accepting a decimal comma (`12,5`). Thousands separators are not
/// accepted: `1.234,5` is not a number.
pub fn parse_number(raw: &str) -> Option<f64> {
    let t = trim(raw);
    if t.is_empty() {
        return None;
    }
    // One pass over the bytes finds the comma and rejects any byte a number cannot hold.
    let (mut comma, mut point) = (None, false);
    for (i, &c) in t.as_bytes().iter().enumerate() {
        match c {
            b'0'..=b'9' | b'-' | b'+' | b'e' | b'E' => {}
            b'.' => point = true,
            b',' if comma.is_none() => comma = Some(i),
            _ => return None,
        }
    }
    // A decimal comma becomes a point in a copy on the stack (a number is short; a longer text
    // with a comma is copied to the heap).
    let mut buf = [0u8; 64];
    let owned;
    let t = if let Some(k) = comma {
        if point {
            return None;
        }
        if t.len() <= buf.len() {
            let b = &mut buf[..t.len()];
            b.copy_from_slice(t.as_bytes());
            b[k] = b'.';
            std::str::from_utf8(b).expect("a comma replaced by a point in UTF-8 text")
        } else {
            owned = t.replace(',', ".");
            owned.as_str()
        }
    } else {
        t
    };
    if let Some(v) = simple_decimal(t.as_bytes()) {
        return Some(v);
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The value of a plain decimal (`-12.5`, `+3`, `0.004`: an optional sign, digits with at most
/// one point, nothing else) whose digits, read as an integer, are at most 2^53 and which has at
/// most 22 digits after the point. Both that integer and the power of ten are then exact
/// doubles, and their quotient, one correctly rounded division, is the correctly rounded value
/// of the text: Clinger's fast path (Clinger 1990, "How to read floating point numbers
/// accurately"), which the standard library's parser takes too, without its general set-up.
/// None for any other text, which the caller parses in full.
fn simple_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (negative, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let (mut m, mut n, mut after_point) = (0u64, 0usize, None::<usize>);
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                if n == 19 {
                    return None;
                }
                m = m * 10 + u64::from(c - b'0');
                n += 1;
                if let Some(k) = after_point.as_mut() {
                    *k += 1;
                }
            }
            b'.' if after_point.is_none() => after_point = Some(0),
            _ => return None,
        }
    }
    if n == 0 || m > 1 << 53 {
        return None;
    }
    let v = m as f64 / *POW10.get(after_point.unwrap_or(0))?;
    Some(if negative { -v } else { v })
}

/// Parse a result text into a value plus qualifiers.
pub fn parse_result(raw: &str) -> ParsedResult {
    let t = trim(raw);
    if t.is_empty() {
        return ParsedResult::Missing;
    }
    if ["nd", "not done", "n/d", "na", "n/a"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
    {
        return ParsedResult::NotDone;
    }
    if let Some(v) = parse_number(t) {
        return ParsedResult::Numeric(v);
    }
    for (prefix, op) in [
        ("<=", Censoring::Below),
        ("<", Censoring::Below),
        (">=", Censoring::Above),
        (">", Censoring::Above),
    ] {
        if let Some(rest) = t.strip_prefix(prefix)
            && let Some(v) = parse_number(rest)
        {
            return ParsedResult::Censored(op, v);
        }
    }
    ParsedResult::Text(Ustr::from(t))
}

/// A file's text as UTF-8 bytes: the file itself, mapped into memory, when it is UTF-8 already
/// (the usual case), or the decoded copy of a Latin-1 file. Outside tests only [`read_text`]
/// makes one, and what it makes is valid UTF-8 ([`Plain::line`] relies on that).
///
/// Mapping instead of reading saves the copy of every byte into freshly zeroed memory, about a
/// tenth of the page faults of a large `derive` (`docs/benchmarks.md`). The mapping is
/// read-only; as with any mapped file (polars maps its CSV inputs the same way), an input that
/// another process truncates while the run reads it ends the process with SIGBUS
/// (`docs/operations.md`: inputs must not be rewritten during a run).
enum Text {
    /// The mapped file and where its text starts (after a byte order mark).
    Mapped(memmap2::Mmap, usize),
    /// Text read or decoded into memory.
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        match self {
            Text::Mapped(m, start) => &m[*start..],
            Text::Owned(v) => v,
        }
    }
}

impl Text {
    /// The text (valid UTF-8 by construction).
    #[cfg(test)]
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_ref()).expect("Text holds UTF-8")
    }
}

/// Read a file as text in the declared encoding (BOM stripped; Latin-1 decoded).
fn read_text(path: &Path, encoding: Encoding) -> Result<Text, IngestError> {
    read_raw(path)?.decode(path, encoding)
}

/// A file's bytes, BOM stripped, not yet checked or decoded ([`RawFile::decode`] makes them a
/// [`Text`]).
struct RawFile {
    bytes: Text,
    /// Whether the bytes are UTF-8, once checked.
    utf8: std::cell::OnceCell<bool>,
}

impl RawFile {
    fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    fn is_utf8(&self) -> bool {
        *self
            .utf8
            .get_or_init(|| std::str::from_utf8(self.bytes()).is_ok())
    }

    /// Whether the bytes are to be read as Latin-1 in `encoding` (declared, or detected when
    /// they are not UTF-8).
    fn is_latin1(&self, encoding: Encoding) -> bool {
        match encoding {
            Encoding::Latin1 => true,
            Encoding::Auto => !self.is_utf8(),
            Encoding::Utf8 => false,
        }
    }

    /// The bytes as text in `encoding`: UTF-8 checked (an error names the line, column and
    /// byte of the first invalid sequence), Latin-1 decoded.
    fn decode(self, path: &Path, encoding: Encoding) -> Result<Text, IngestError> {
        if self.is_latin1(encoding) {
            return Ok(Text::Owned(latin1_to_utf8(self.bytes())));
        }
        // UTF-8 text is taken over as it is, without a copy.
        if self.is_utf8() {
            return Ok(self.bytes);
        }
        // Declared UTF-8, and not: where the first invalid sequence is.
        let body = self.bytes();
        let at = std::str::from_utf8(body)
            .expect_err("checked: not UTF-8")
            .valid_up_to();
        let before = &body[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
        Err(IngestError::Encoding {
            path: path.to_path_buf(),
            line,
            column,
            byte: body[at],
        })
    }
}

/// Latin-1 bytes as UTF-8: bytes below 0x80 are ASCII; each other byte is the code point of the
/// same value, two bytes in UTF-8. Runs of ASCII are copied whole, found 16 bytes at a time.
fn latin1_to_utf8(b: &[u8]) -> Vec<u8> {
    let high = b.iter().filter(|&&c| c >= 0x80).count();
    let mut out = Vec::with_capacity(b.len() + high);
    let mut rest = b;
    loop {
        let k = ascii_prefix(rest);
        out.extend_from_slice(&rest[..k]);
        let Some(&c) = rest.get(k) else { break };
        out.extend_from_slice(&[0xC0 | (c >> 6), 0x80 | (c & 0x3F)]);
        rest = &rest[k + 1..];
    }
    out
}

/// Latin-1 bytes as a UTF-8 string ([`latin1_to_utf8`]).
fn latin1_string(b: &[u8]) -> String {
    String::from_utf8(latin1_to_utf8(b)).expect("decoded Latin-1 is UTF-8")
}

/// Read a file's bytes (mapped when it is a regular, non-empty file), BOM stripped.
fn read_raw(path: &Path) -> Result<RawFile, IngestError> {
    let read_err = |source| IngestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    // SAFETY: the map is read-only (a shared mapping of the file, as `Mmap::map` makes it); the
    // bytes are only read, and are checked as UTF-8 before they are used as text. What this
    // cannot rule out is another process changing or truncating the file while it is mapped
    // (see `Text`: a truncation ends the process with SIGBUS). A regular, non-empty file is
    // mapped; anything else (an empty file, a pipe) is read.
    let mapped = if meta.len() > 0 && meta.is_file() {
        unsafe { memmap2::Mmap::map(&file) }.ok()
    } else {
        None
    };
    let bytes = match mapped {
        Some(m) => Text::Mapped(m, 0),
        None => {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut &file, &mut v).map_err(read_err)?;
            Text::Owned(v)
        }
    };
    Ok(RawFile {
        bytes: match bytes {
            b if !b.as_ref().starts_with(&[0xEF, 0xBB, 0xBF]) => b,
            Text::Mapped(m, _) => Text::Mapped(m, 3),
            Text::Owned(mut v) => {
                v.drain(..3);
                Text::Owned(v)
            }
        },
        utf8: std::cell::OnceCell::new(),
    })
}

/// Column positions by header name, and by contract name where the pipeline maps one to a
/// header name.
fn column_index(header: &[String], mapping: &BTreeMap<String, String>) -> FxHashMap<String, usize> {
    let mut index = FxHashMap::default();
    for (i, h) in header.iter().enumerate() {
        index.insert(h.clone(), i);
    }
    // Contract name → file column.
    for (contract, actual) in mapping {
        if let Some(i) = header.iter().position(|h| h == actual) {
            index.insert(contract.clone(), i);
        }
    }
    index
}

fn detect_delimiter(text: &[u8]) -> u8 {
    let header = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut best = (b',', 0);
    for d in [b',', b';', b'\t', b'|'] {
        let n = header.iter().filter(|&&b| b == d).count();
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

/// Whether a path names an Excel workbook (`.xlsx`, any case).
fn is_xlsx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
}

/// Where rows come from: a CSV reader over the decoded text, the lines of a plain text, or the
/// rows of a worksheet already turned into text with their 1-based spreadsheet row numbers.
enum Source {
    /// The CSV reader over the text.
    Csv(csv::Reader<std::io::Cursor<Text>>),
    /// A text in which every record is one physical line (no quote character anywhere, and every
    /// carriage return ends a line): lines and fields are split eight bytes at a time, without
    /// the CSV reader's state machine and its copy of every field. For such a text these are
    /// the records the CSV reader gives
    /// (`tests::plain_records_are_the_records_the_csv_reader_gives`).
    Plain(Plain),
    Cells(std::vec::IntoIter<(u64, csv::StringRecord)>),
}

/// The state of [`Source::Plain`].
struct Plain {
    /// The whole text, shared by the readers of its parts ([`Rows::split`]).
    text: std::sync::Arc<Text>,
    delimiter: u8,
    /// Where the next line starts.
    pos: usize,
    /// Where this reader's part of the text ends (after a line feed, or at the text's end).
    end: usize,
    /// Physical lines passed so far.
    lines: u64,
    /// The current record: its line (start, end) in `text` and its fields' bounds in the line.
    current: (usize, usize),
    bounds: Vec<(usize, usize)>,
}

impl Plain {
    /// Move to the next record (blank lines are skipped, as the CSV reader skips them); its
    /// 1-based line, or None at the end.
    fn advance(&mut self) -> Option<u64> {
        let text = &(*self.text).as_ref()[..self.end];
        let delimiter = self.delimiter;
        loop {
            if self.pos >= text.len() {
                return None;
            }
            // One pass over the line finds its field delimiters and its end, eight bytes at a
            // time (lines are short: a search call per field costs more).
            let start = self.pos;
            let rest = &text[start..];
            self.bounds.clear();
            let mut from = 0;
            let end = 'scan: {
                let mut at = 0;
                let mut chunks = rest.chunks_exact(8);
                for chunk in chunks.by_ref() {
                    let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                    let mut hits =
                        zero_bytes(word ^ spread(delimiter)) | zero_bytes(word ^ spread(b'\n'));
                    while hits != 0 {
                        let k = at + (hits.trailing_zeros() / 8) as usize;
                        if rest[k] == b'\n' {
                            break 'scan k;
                        }
                        self.bounds.push((from, k));
                        from = k + 1;
                        hits &= hits - 1;
                    }
                    at += 8;
                }
                for (k, &b) in chunks.remainder().iter().enumerate() {
                    let k = at + k;
                    if b == b'\n' {
                        break 'scan k;
                    }
                    if b == delimiter {
                        self.bounds.push((from, k));
                        from = k + 1;
                    }
                }
                rest.len()
            };
            self.pos = start + end + 1;
            self.lines += 1;
            // A carriage return here ends the line (a plain text has no other).
            let len = if end > 0 && rest[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            if len == 0 {
                continue;
            }
            self.bounds.push((from, len));
            self.current = (start, start + len);
            return Some(self.lines);
        }
    }

    /// The current record's line.
    fn line(&self) -> &str {
        let bytes = &(*self.text).as_ref()[self.current.0..self.current.1];
        // SAFETY: `Text` holds valid UTF-8 (checked or decoded by `read_text`), and a line is
        // cut at line ends, which are ASCII bytes and so never inside a character.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

/// A byte repeated in every byte of a word.
const fn spread(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit of every byte of `v` that is zero, and no other bit (exact, without the borrow
/// of the shorter `(v - 0x01..) & !v & 0x80..` form).
const fn zero_bytes(v: u64) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    !(((v & LOW7).wrapping_add(LOW7)) | v | LOW7)
}

/// The fields of one record: a CSV record, or a line of a plain text and its fields' bounds.
#[derive(Clone, Copy)]
enum Fields<'r> {
    Record(&'r csv::StringRecord),
    Line(&'r str, &'r [(usize, usize)]),
}

impl<'r> Fields<'r> {
    fn len(&self) -> usize {
        match self {
            Fields::Record(r) => r.len(),
            Fields::Line(_, b) => b.len(),
        }
    }
    /// Field `i` as read (untrimmed).
    fn get(&self, i: usize) -> Option<&'r str> {
        match self {
            Fields::Record(r) => r.get(i),
            // Fields are cut at the delimiter, an ASCII byte: always a character boundary.
            Fields::Line(line, b) => b.get(i).map(|&(s, e)| &line[s..e]),
        }
    }
}

/// Physical lines of a text (a last line without a line feed counts): at least as many as its
/// records, since a record is one line or more.
fn line_count(text: &[u8]) -> usize {
    // memchr counts with vector compares (its iterator's `count` does not stop at each match).
    let feeds = memchr::memchr_iter(b'\n', text).count();
    feeds + usize::from(text.last().is_some_and(|&b| b != b'\n'))
}

/// Whether every record of a text is one physical line: no quote character anywhere, and every
/// carriage return ends a line.
fn is_plain(text: &[u8]) -> bool {
    memchr::memchr(b'"', text).is_none()
        && memchr::memchr_iter(b'\r', text).all(|i| text.get(i + 1) == Some(&b'\n'))
}

/// A table reader (CSV or worksheet) that maps contract column names through the pipeline's
/// mapping.
struct Rows<'a> {
    path: &'a Path,
    /// The path as lineage names it.
    file: Ustr,
    sheet: Option<String>,
    header_line: u64,
    source: Source,
    index: FxHashMap<String, usize>,
    header: Vec<String>,
    record: csv::StringRecord,
    line: u64,
    /// Told how reading advances, when set.
    on_progress: Option<OnFile<'a>>,
    /// Size of the input for progress: bytes of text, or rows of a worksheet.
    size: u64,
    /// Records read so far.
    count: u64,
    /// How far progress has been reported (bytes of text, or rows of a worksheet).
    reported: u64,
}

struct Row<'r> {
    file: Ustr,
    sheet: Option<Ustr>,
    line: u64,
    index: &'r FxHashMap<String, usize>,
    record: Fields<'r>,
    field_count_ok: bool,
}

impl Row<'_> {
    /// The field at a column position found once per file (trimmed; None when the column is
    /// absent or the row is short).
    fn field(&self, i: Option<usize>) -> Option<&str> {
        i.and_then(|i| self.record.get(i)).map(trim)
    }
    fn get(&self, col: &str) -> Option<&str> {
        self.index
            .get(col)
            .and_then(|&i| self.record.get(i))
            .map(trim)
    }
    fn text(&self, col: &str) -> String {
        self.get(col).unwrap_or("").to_string()
    }
    /// The field, trimmed, interned (blank when the column is absent).
    fn sym(&self, col: &str) -> Ustr {
        Ustr::from(self.get(col).unwrap_or(""))
    }
    /// The field, trimmed and upper-cased, interned.
    fn upper(&self, col: &str) -> Ustr {
        upper_sym(self.get(col).unwrap_or(""))
    }
    /// The field at a header position (trimmed; empty when the row is short).
    fn at(&self, i: usize) -> &str {
        self.record.get(i).map_or("", trim)
    }
    /// Every column by its contract name (or header name), private columns left out.
    fn all_columns(&self, private: &[String]) -> BTreeMap<String, String> {
        let hidden: Vec<usize> = private
            .iter()
            .filter_map(|p| self.index.get(p).copied())
            .collect();
        self.index
            .iter()
            .filter(|(name, i)| !private.contains(name) && !hidden.contains(i))
            .filter_map(|(name, &i)| {
                self.record
                    .get(i)
                    .map(|v| (name.clone(), v.trim().to_string()))
            })
            .collect()
    }

    fn lineage(&self) -> Lineage {
        Lineage {
            file: self.file,
            line: self.line,
            sheet: self.sheet,
        }
    }
}

impl<'a> Rows<'a> {
    /// Open a text file (decoded per `encoding`, delimiter declared or detected) or, for a path
    /// ending in `.xlsx`, a worksheet (`sheet`, default the first). `sheet_key` names the
    /// pipeline key for the error when a sheet is given for a text file.
    fn open(
        path: &'a Path,
        encoding: Encoding,
        delimiter: Option<char>,
        sheet: Option<&str>,
        sheet_key: &str,
        mapping: &BTreeMap<String, String>,
    ) -> Result<Rows<'a>, IngestError> {
        Rows::open_read(path, None, encoding, delimiter, sheet, sheet_key, mapping)
    }

    /// [`Rows::open`], for a text whose bytes may have been read already (`raw`).
    fn open_read(
        path: &'a Path,
        raw: Option<RawFile>,
        encoding: Encoding,
        delimiter: Option<char>,
        sheet: Option<&str>,
        sheet_key: &str,
        mapping: &BTreeMap<String, String>,
    ) -> Result<Rows<'a>, IngestError> {
        let (header, header_line, source, sheet, size) = if is_xlsx(path) {
            let ws = read_xlsx(path, sheet)?;
            let size = ws.rows.len() as u64;
            (
                ws.header,
                ws.header_row,
                Source::Cells(ws.rows.into_iter()),
                Some(ws.sheet),
                size,
            )
        } else {
            if let Some(s) = sheet {
                return Err(IngestError::SheetOnText {
                    path: path.to_path_buf(),
                    key: sheet_key.to_string(),
                    sheet: s.to_string(),
                });
            }
            let text = match raw {
                Some(raw) => raw.decode(path, encoding)?,
                None => read_text(path, encoding)?,
            };
            let size = text.as_ref().len() as u64;
            let delim = delimiter
                .map(|c| c as u8)
                .unwrap_or_else(|| detect_delimiter(text.as_ref()));
            if is_plain(text.as_ref()) && delim.is_ascii() {
                let end = text.as_ref().len();
                let mut plain = Plain {
                    text: std::sync::Arc::new(text),
                    delimiter: delim,
                    pos: 0,
                    end,
                    lines: 0,
                    current: (0, 0),
                    bounds: Vec::new(),
                };
                let header: Vec<String> = match plain.advance() {
                    Some(_) => {
                        let fields = Fields::Line(plain.line(), &plain.bounds);
                        (0..fields.len())
                            .map(|i| fields.get(i).unwrap_or("").trim().to_string())
                            .collect()
                    }
                    None => Vec::new(),
                };
                (header, 1, Source::Plain(plain), None, size)
            } else {
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(delim)
                    .flexible(true)
                    .has_headers(true)
                    .from_reader(std::io::Cursor::new(text));
                let header: Vec<String> = reader
                    .headers()
                    .map_err(|e| IngestError::Csv {
                        path: path.to_path_buf(),
                        line: 1,
                        message: e.to_string(),
                    })?
                    .iter()
                    .map(|h| h.trim().to_string())
                    .collect();
                (header, 1, Source::Csv(reader), None, size)
            }
        };
        let index = column_index(&header, mapping);
        Ok(Rows {
            path,
            file: Ustr::from(&path.to_string_lossy()),
            sheet,
            header_line,
            source,
            index,
            header,
            record: csv::StringRecord::new(),
            line: 0,
            on_progress: None,
            size,
            count: 0,
            reported: 0,
        })
    }

    /// The rows in parts that can be read in parallel, in order, each with an upper bound of its
    /// data rows: a plain text cut at line ends into parts of about `part` bytes (each part's
    /// bound is its line count, exact when it has no blank line, and its lines are numbered as
    /// in the whole file); any other source as one part (a text's bound is its lines but the
    /// header's, a worksheet's its rows after the header).
    fn split(self, part: usize) -> Vec<(Rows<'a>, usize)> {
        let p = match &self.source {
            Source::Plain(p) => p,
            Source::Csv(reader) => {
                let bound = line_count(reader.get_ref().get_ref().as_ref()).saturating_sub(1);
                return vec![(self, bound)];
            }
            Source::Cells(rows) => {
                let bound = rows.len();
                return vec![(self, bound)];
            }
        };
        let text = (*p.text).as_ref();
        // (After a header without a line feed, the position is past the end.)
        let (start, end) = (p.pos.min(p.end), p.end);
        let mut cuts = vec![start];
        let mut at = start;
        while end - at > part + part / 2 {
            match memchr::memchr(b'\n', &text[at + part..end]) {
                Some(k) if at + part + k + 1 < end => {
                    at += part + k + 1;
                    cuts.push(at);
                }
                _ => break,
            }
        }
        cuts.push(end);
        let mut lines = p.lines;
        let mut parts = Vec::with_capacity(cuts.len() - 1);
        for w in cuts.windows(2) {
            let n = line_count(&text[w[0]..w[1]]);
            let plain = Plain {
                text: std::sync::Arc::clone(&p.text),
                delimiter: p.delimiter,
                pos: w[0],
                end: w[1],
                lines,
                current: (0, 0),
                bounds: Vec::new(),
            };
            lines += n as u64;
            parts.push((
                Rows {
                    path: self.path,
                    file: self.file,
                    sheet: self.sheet.clone(),
                    header_line: self.header_line,
                    source: Source::Plain(plain),
                    index: self.index.clone(),
                    header: self.header.clone(),
                    record: csv::StringRecord::new(),
                    line: 0,
                    on_progress: self.on_progress,
                    size: self.size,
                    count: 0,
                    // The first part's progress counts the header's bytes too.
                    reported: if w[0] == start {
                        self.reported
                    } else {
                        w[0] as u64
                    },
                },
                n,
            ));
        }
        parts
    }

    /// The whole decoded text of a text file and its delimiter, when every record is one
    /// physical line: no quote character anywhere, and every carriage return ends a line.
    fn plain_text(&self) -> Option<(&[u8], char)> {
        match &self.source {
            Source::Plain(p) => Some(((*p.text).as_ref(), char::from(p.delimiter))),
            _ => None,
        }
    }

    /// Tell the progress callback where reading is.
    fn report(&mut self, finished: bool) {
        if let Some(f) = self.on_progress {
            let at = match (&self.source, finished) {
                (Source::Plain(p), true) => p.end as u64,
                (_, true) => self.size,
                (Source::Csv(_), false) => self.record.position().map_or(0, |p| p.byte()),
                (Source::Plain(p), false) => p.pos as u64,
                (Source::Cells(_), false) => self.count,
            }
            .min(self.size);
            let advanced = at.saturating_sub(self.reported);
            self.reported = self.reported.max(at);
            f(FileProgress {
                file: self.path,
                advanced,
                total: self.size,
            });
        }
    }

    /// Let `contract` name the same column as `actual` (unless the file has a `contract` column).
    fn alias(&mut self, contract: &str, actual: &str) {
        if let Some(&i) = self.index.get(actual) {
            self.index.entry(contract.to_string()).or_insert(i);
        }
    }

    fn has(&self, col: &str) -> bool {
        self.index.contains_key(col)
    }

    fn missing(&self, col: &str) -> IngestError {
        IngestError::MissingColumn {
            path: self.path.to_path_buf(),
            sheet: self.sheet.clone(),
            line: self.header_line,
            column: col.to_string(),
            header: self.header.join(", "),
        }
    }

    fn require(&self, cols: &[&str]) -> Result<(), IngestError> {
        match cols.iter().find(|c| !self.has(c)) {
            Some(c) => Err(self.missing(c)),
            None => Ok(()),
        }
    }

    /// Position of a column by its header name (wide test columns are not mapped).
    fn header_position(&self, col: &str) -> Result<usize, IngestError> {
        self.header
            .iter()
            .position(|h| h == col.trim())
            .ok_or_else(|| self.missing(col))
    }

    fn next(&mut self) -> Result<Option<Row<'_>>, IngestError> {
        match &mut self.source {
            Source::Csv(reader) => {
                let more = reader
                    .read_record(&mut self.record)
                    .map_err(|e| IngestError::Csv {
                        path: self.path.to_path_buf(),
                        line: e.position().map_or(0, |p| p.line()),
                        message: e.to_string(),
                    })?;
                if !more {
                    return Ok(None);
                }
                // The reader's position is where it started looking for the record, which is
                // before the `\n` of a CRLF (and before any blank lines); count those line ends
                // so that the line is where the record's text starts.
                let data = reader.get_ref().get_ref().as_ref();
                self.line = self.record.position().map_or(0, |p| {
                    let skipped = data
                        .get(p.byte() as usize..)
                        .unwrap_or_default()
                        .iter()
                        .take_while(|&&b| b == b'\r' || b == b'\n')
                        .filter(|&&b| b == b'\n')
                        .count();
                    p.line() + skipped as u64
                });
            }
            Source::Plain(p) => match p.advance() {
                None => return Ok(None),
                Some(line) => self.line = line,
            },
            Source::Cells(rows) => match rows.next() {
                None => return Ok(None),
                Some((line, record)) => {
                    self.line = line;
                    self.record = record;
                }
            },
        }
        self.count += 1;
        if self.count.is_multiple_of(PROGRESS_EVERY) {
            self.report(false);
        }
        let record = match &self.source {
            Source::Plain(p) => Fields::Line(p.line(), &p.bounds),
            _ => Fields::Record(&self.record),
        };
        Ok(Some(Row {
            file: self.file,
            sheet: self.sheet.as_deref().map(Ustr::from),
            line: self.line,
            index: &self.index,
            record,
            field_count_ok: record.len() == self.header.len(),
        }))
    }
}

/// A worksheet turned into text.
struct Worksheet {
    sheet: String,
    header_row: u64,
    header: Vec<String>,
    rows: Vec<(u64, csv::StringRecord)>,
}

/// Read one worksheet of an `.xlsx` workbook: the first non-empty row is the header; empty rows
/// are skipped; a row's cells beyond the header's last column count only when not empty (so a
/// stray value there shows up as a field-count problem, as in a CSV file).
fn read_xlsx(path: &Path, sheet: Option<&str>) -> Result<Worksheet, IngestError> {
    use calamine::{Reader, Xlsx, open_workbook};
    let fail = |sheet: Option<&str>, e: &dyn std::fmt::Display| IngestError::Workbook {
        path: path.to_path_buf(),
        sheet: sheet.map(str::to_string),
        message: e.to_string(),
    };
    let mut wb: Xlsx<_> = open_workbook(path).map_err(|e| fail(None, &e))?;
    let names = wb.sheet_names();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.as_str() == s)
            .cloned()
            .ok_or_else(|| IngestError::NoSheet {
                path: path.to_path_buf(),
                sheet: s.to_string(),
                available: names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| fail(None, &"the workbook has no sheets"))?,
    };
    let range = wb
        .worksheet_range(&name)
        .map_err(|e| fail(Some(&name), &e))?;
    let first_row = range.start().map_or(0, |(r, _)| u64::from(r));
    let mut header: Option<(u64, Vec<String>)> = None;
    let mut rows = Vec::new();
    for (i, cells) in range.rows().enumerate() {
        let line = first_row + i as u64 + 1;
        let texts: Vec<String> = cells.iter().map(cell_text).collect();
        let Some(last) = texts.iter().rposition(|t| !t.trim().is_empty()) else {
            continue;
        };
        match &header {
            None => header = Some((line, texts[..=last].to_vec())),
            Some((_, h)) => {
                let width = h.len().max(last + 1);
                rows.push((line, csv::StringRecord::from(texts[..width].to_vec())));
            }
        }
    }
    let (header_row, header) = header.unwrap_or((1, Vec::new()));
    Ok(Worksheet {
        sheet: name,
        header_row,
        header: header.iter().map(|h| h.trim().to_string()).collect(),
        rows,
    })
}

/// The text of a worksheet cell, as a user would have typed it.
fn cell_text(cell: &calamine::Data) -> String {
    use calamine::Data;
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number_text(*f),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            if (h, mi, s, ms) == (0, 0, 0, 0) {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
            }
        }
        Data::DateTime(dt) => number_text(dt.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    }
}

/// A number stored in a worksheet as the text a user would type: the shortest text that reads
/// back as the same number, after rounding to the 15 significant digits Excel shows (so binary
/// noise such as `12.500000000000002` becomes `12.5`).
pub fn number_text(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let rounded: f64 = format!("{v:.14e}").parse().unwrap_or(v);
    if rounded == 0.0 {
        "0".to_string()
    } else {
        rounded.to_string()
    }
}

/// The standardized long lab table, as written to `ingest/labs.parquet`.
pub fn labs_table(labs: &[LabRecord]) -> Table {
    // One pass over the records fills every column (each record is read once, not once per
    // column); text columns hold interned values: one pointer per cell, no text copied.
    let (below, above) = (Ustr::from("<"), Ustr::from(">"));
    let mut status_code: FxHashMap<ParseStatus, Ustr> = FxHashMap::default();
    let n = labs.len();
    let sym = || Vec::<Option<Ustr>>::with_capacity(n);
    let (mut file, mut sheet, mut srccol, mut study, mut site, mut subject, mut visit) =
        (sym(), sym(), sym(), sym(), sym(), sym(), sym());
    let (mut test, mut name, mut orres, mut qual, mut orresu, mut orunit, mut stresu, mut sts) =
        (sym(), sym(), sym(), sym(), sym(), sym(), sym(), sym());
    let num = || Vec::<Option<f64>>::with_capacity(n);
    let (mut orresn, mut stresn, mut nrlo, mut nrhi) = (num(), num(), num(), num());
    let int = || Vec::<Option<i64>>::with_capacity(n);
    let (mut line, mut day) = (int(), int());
    let mut date = Vec::with_capacity(n);
    for r in labs {
        file.push(Some(r.lineage.file));
        line.push(Some(r.lineage.line as i64));
        sheet.push(r.lineage.sheet);
        srccol.push(r.source_column());
        study.push(Some(r.study_id));
        site.push(Some(r.site_id));
        subject.push(Some(r.subject_id));
        visit.push(Some(r.visit));
        date.push(r.collection_date);
        day.push(r.study_day);
        test.push(Some(r.test_code));
        name.push(Some(r.test_name));
        orres.push(Some(r.result_raw));
        orresn.push(match r.result {
            ParsedResult::Numeric(v) | ParsedResult::Censored(_, v) => Some(v),
            _ => None,
        });
        qual.push(match r.result {
            ParsedResult::Censored(Censoring::Below, _) => Some(below),
            ParsedResult::Censored(Censoring::Above, _) => Some(above),
            _ => None,
        });
        orresu.push(Some(r.unit_raw));
        orunit.push(r.unit);
        stresn.push(r.std_value);
        stresu.push(r.std_unit);
        nrlo.push(r.std_ref_low);
        nrhi.push(r.std_ref_high);
        sts.push(Some(
            *status_code
                .entry(r.status)
                .or_insert_with(|| Ustr::from(r.status.code())),
        ));
    }
    let col = |name, label, data| Column { name, label, data };
    let s = |v: Vec<Option<Ustr>>| ColumnData::Str(v.into_iter().collect());
    Table {
        columns: vec![
            col("SRCFILE", "Source file", s(file)),
            col("SRCLINE", "Source line", ColumnData::I64(line)),
            col("SRCSHEET", "Source worksheet (workbook inputs)", s(sheet)),
            col("SRCCOL", "Source column (wide inputs)", s(srccol)),
            col("STUDYID", "Study Identifier", s(study)),
            col("SITEID", "Study Site Identifier", s(site)),
            col("SUBJID", "Subject Identifier for the Study", s(subject)),
            col("VISIT", "Visit Name as reported", s(visit)),
            col(
                "LBDT",
                "Date of Specimen Collection",
                ColumnData::Date(date),
            ),
            col(
                "LBDY",
                "Study Day of Specimen Collection",
                ColumnData::I64(day),
            ),
            col("LBTESTCD", "Lab Test Short Name", s(test)),
            col("LBTEST", "Lab Test Name as reported", s(name)),
            col("LBORRES", "Result as Originally Received", s(orres)),
            col(
                "LBORRESN",
                "Numeric Result in Original Unit",
                ColumnData::F64(orresn),
            ),
            col("LBORQUAL", "Censoring Operator of Result", s(qual)),
            col("LBORRESU", "Original Unit as Received", s(orresu)),
            col("LBORUNIT", "Original Unit, Canonical Spelling", s(orunit)),
            col(
                "LBSTRESN",
                "Numeric Result in Standard Unit",
                ColumnData::F64(stresn),
            ),
            col("LBSTRESU", "Standard Unit", s(stresu)),
            col(
                "LBSTNRLO",
                "Site Reference Range Lower Limit, Standard Unit",
                ColumnData::F64(nrlo),
            ),
            col(
                "LBSTNRHI",
                "Site Reference Range Upper Limit, Standard Unit",
                ColumnData::F64(nrhi),
            ),
            col("PARSESTS", "Parse Status", s(sts)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_equal_exactly_when_the_texts_are() {
        let texts = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abce",
            "bbcd",
            "abcde",
            "abcdf",
            "a\0",
            "a\0\0",
            "\0",
            "\0\0",
            "abcdefgh",
            "abcdefgi",
            "abcdefghi",
            "bbcdefghi",
            "abcdefghij",
            "0123456789abcdef",
            "0123456789abcdeg",
            "1123456789abcdef",
            "0123456789abcde",
            "é",
            "ée",
            "2019-02-19",
            "2019-02-18",
            "2019-12-19",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(
                    ShortKey::of(a.as_bytes()) == ShortKey::of(b.as_bytes()),
                    a == b,
                    "{a:?} {b:?}"
                );
            }
        }
        assert!(ShortKey::of(b"0123456789abcdefg").is_none());
        // The cache gives the same interned values whichever way it finds them, past its limit
        // too, and upper-cases when asked.
        let mut c = SymCache::with_max(false, 2);
        let mut u = SymCache::with_max(true, 2);
        for t in texts
            .iter()
            .chain(texts.iter().rev())
            .chain(["x"; 3].iter())
        {
            let long = format!("{t}-a text of more than sixteen bytes");
            assert_eq!(c.get(t), Ustr::from(t));
            assert_eq!(c.get(&long), Ustr::from(&long));
            assert_eq!(u.get(t), Ustr::from(&t.to_uppercase()));
        }
    }

    #[test]
    fn trim_and_the_ascii_run_agree_with_std() {
        for t in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\r",
            "ab",
            "a b",
            "\u{a0}a",
            "a\u{a0}",
            "é",
            " é ",
            "\u{b}x",
            "x\u{c}",
            "\u{3000}x\u{3000}",
            "\u{85}",
        ] {
            assert_eq!(trim(t), t.trim(), "{t:?}");
        }
        let text: Vec<u8> = (0..100u8)
            .map(|i| {
                if i == 37 || i == 80 {
                    0xE9
                } else {
                    b'a' + i % 26
                }
            })
            .collect();
        for start in 0..text.len() {
            let b = &text[start..];
            let want = b.iter().position(|&c| c >= 0x80).unwrap_or(b.len());
            assert_eq!(ascii_prefix(b), want, "from {start}");
        }
    }

    #[test]
    fn the_fast_decimal_path_gives_the_standard_parser_s_value() {
        // Fixed texts at the edges of the fast path, then generated decimals of every length.
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "+0",
            "1.",
            ".5",
            ".",
            "-",
            "+",
            "",
            "007",
            "0.1",
            "0.3",
            "-2.675",
            "9007199254740992",
            "9007199254740993",
            "900719925474099.3",
            "1234567890123456789",
            "12345678901234567890",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
            "1e5",
            "1.2.3",
            "--1",
            "4.35",
            "123456.789",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (x % 20) as usize;
            let point = (x >> 8) as usize % (digits + 2);
            let mut t = String::new();
            if (x >> 40) & 1 == 1 {
                t.push('-');
            }
            for i in 0..digits {
                if i == point {
                    t.push('.');
                }
                t.push(char::from(b'0' + ((x >> (i * 3 % 60)) % 10) as u8));
            }
            texts.push(t);
        }
        let mut fast = 0;
        for t in &texts {
            let want = t.parse::<f64>().ok();
            if let Some(v) = simple_decimal(t.as_bytes()) {
                fast += 1;
                assert_eq!(Some(v.to_bits()), want.map(f64::to_bits), "{t}");
            }
        }
        assert!(fast > 10_000, "the fast path was taken {fast} times");
    }

    #[test]
    fn numbers_parse_with_a_decimal_point_or_comma() {
        assert_eq!(parse_number(" 12,5 "), Some(12.5));
        assert_eq!(parse_number("-0,25"), Some(-0.25));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("1.234,5"), None);
        assert_eq!(parse_number("1,2,3"), None);
        assert_eq!(parse_number(","), None);
        assert_eq!(parse_number("12,5 mg"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("1 5"), None);
        assert_eq!(parse_number("\u{2212}1"), None);
        assert_eq!(parse_number("12.5"), Some(12.5));
        // Longer than the copy on the stack: the same answer.
        let long = format!("{},5", "1".repeat(80));
        assert_eq!(parse_number(&long), long.replace(',', ".").parse().ok());
        assert_eq!(parse_number(&format!("{long},")), None);
    }

    #[test]
    fn results_parse_with_qualifiers() {
        assert_eq!(parse_result("12.5"), ParsedResult::Numeric(12.5));
        assert_eq!(parse_result("12,5"), ParsedResult::Numeric(12.5));
        assert_eq!(
            parse_result(" <5 "),
            ParsedResult::Censored(Censoring::Below, 5.0)
        );
        assert_eq!(
            parse_result(">1000"),
            ParsedResult::Censored(Censoring::Above, 1000.0)
        );
        assert_eq!(
            parse_result("<0,5"),
            ParsedResult::Censored(Censoring::Below, 0.5)
        );
        assert_eq!(parse_result("ND"), ParsedResult::NotDone);
        for nd in ["nd", " Not Done ", "N/D", "na", "N/a"] {
            assert_eq!(parse_result(nd), ParsedResult::NotDone, "{nd}");
        }
        assert_eq!(parse_result("NDA"), ParsedResult::Text("NDA".into()));
        assert_eq!(parse_result(""), ParsedResult::Missing);
        assert_eq!(
            parse_result("positive"),
            ParsedResult::Text("positive".into())
        );
        assert_eq!(
            parse_result("1.234,5"),
            ParsedResult::Text("1.234,5".into())
        );
        assert_eq!(parse_result("inf"), ParsedResult::Text("inf".into()));
    }

    #[test]
    fn study_day_skips_zero() {
        let r = NaiveDate::from_ymd_opt(2020, 1, 10).unwrap();
        assert_eq!(study_day(r, r), 1);
        assert_eq!(
            study_day(NaiveDate::from_ymd_opt(2020, 1, 9).unwrap(), r),
            -1
        );
        assert_eq!(
            study_day(NaiveDate::from_ymd_opt(2020, 1, 11).unwrap(), r),
            2
        );
    }

    #[test]
    fn dates_are_iso_unless_declared() {
        assert_eq!(
            parse_date("2020-02-29", None),
            NaiveDate::from_ymd_opt(2020, 2, 29)
        );
        assert_eq!(
            parse_date("2020-02-29T10:15", None),
            NaiveDate::from_ymd_opt(2020, 2, 29)
        );
        assert_eq!(parse_date("29/02/2020", None), None);
        assert_eq!(
            parse_date("29/02/2020", Some("%d/%m/%Y")),
            NaiveDate::from_ymd_opt(2020, 2, 29)
        );
        assert_eq!(parse_date("2020-02-30", None), None);
    }

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter(b"a;b;c\n1;2;3"), b';');
        assert_eq!(detect_delimiter(b"a,b,c"), b',');
        assert_eq!(detect_delimiter(b"a\tb"), b'\t');
    }

    #[test]
    fn lines_are_counted_with_or_without_a_last_line_feed() {
        for (text, lines) in [
            ("", 0),
            ("a", 1),
            ("a\n", 1),
            ("a\nb", 2),
            ("a\r\nb\r\n", 2),
            ("a\n\nb\n", 3),
            ("\n", 1),
        ] {
            assert_eq!(line_count(text.as_bytes()), lines, "{text:?}");
        }
        // Longer than memchr's vector loop, with line feeds across its blocks.
        let long = "x,1\n".repeat(1000) + "y";
        assert_eq!(line_count(long.as_bytes()), 1001);
    }

    #[test]
    fn plain_records_are_the_records_the_csv_reader_gives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        // (line, trimmed fields, field count as the header's) of every record.
        fn records(rd: &mut Rows<'_>) -> Vec<(u64, Vec<String>, bool)> {
            let mut out = Vec::new();
            while let Some(row) = rd.next().unwrap() {
                let cells: Vec<String> = (0..row.record.len())
                    .map(|i| row.at(i).to_string())
                    .collect();
                out.push((row.line, cells, row.field_count_ok));
            }
            out
        }
        // The header, and the records.
        let collect = |mut rd: Rows<'_>| (rd.header.clone(), records(&mut rd));
        // Lines of every length around the eight-byte steps of the scan, fields of 0 to 20
        // characters (some not ASCII), LF or CRLF, blank lines.
        let generated: String = {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            let mut t = String::from("h1;h2;h3\n");
            for _ in 0..400 {
                let fields = rng.random_range(1..6);
                let cells: Vec<String> = (0..fields)
                    .map(|_| {
                        let n = rng.random_range(0..21);
                        (0..n)
                            .map(|_| ['x', ' ', '7', '\u{b5}', '.'][rng.random_range(0..5)])
                            .collect()
                    })
                    .collect();
                t.push_str(&cells.join(";"));
                t.push_str(["\n", "\r\n", "\n\n"][rng.random_range(0..3)]);
            }
            t
        };
        for text in [
            "a;b;c\n1;2;3\n",
            "a;b;c\r\n1; 2 ;3\r\n\r\n4;5\r\n6;7;8;9\r\n;;\r\nx;y;z",
            "\n\na;b\n\n1;2\n\n\n",
            "a;b\n  \n1;\n;2\n\u{b5}mol/L;\u{3bc}\n",
            "a;b",
            "a;b\n",
            "",
            &generated,
        ] {
            std::fs::write(&path, text).unwrap();
            let open = || {
                Rows::open(
                    &path,
                    Encoding::Utf8,
                    Some(';'),
                    None,
                    "k",
                    &BTreeMap::new(),
                )
                .unwrap()
            };
            let plain = open();
            assert!(matches!(plain.source, Source::Plain(_)), "{text:?}");
            // The same file through the CSV reader.
            let mut by_csv = open();
            let reader = csv::ReaderBuilder::new()
                .delimiter(b';')
                .flexible(true)
                .has_headers(true)
                .from_reader(std::io::Cursor::new(Text::Owned(text.as_bytes().to_vec())));
            by_csv.source = Source::Csv(reader);
            let Source::Csv(r) = &mut by_csv.source else {
                unreachable!()
            };
            let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
            let (ph, prows) = collect(plain);
            let (_, crows) = collect(by_csv);
            assert_eq!(ph, h, "{text:?}");
            assert_eq!(prows, crows, "{text:?}");
            // Read in parts of any size: the same records with the same lines, no part with
            // more records than its bound, and the parts' progress adding up to the file.
            for part in [1, 7, 64, 1 << 20] {
                let advanced = std::sync::atomic::AtomicU64::new(0);
                let on_file = |p: FileProgress<'_>| {
                    advanced.fetch_add(p.advanced, std::sync::atomic::Ordering::Relaxed);
                };
                let mut rows = Vec::new();
                for (mut rd, bound) in open().split(part) {
                    rd.on_progress = Some(&on_file);
                    let got = records(&mut rd);
                    rd.report(true);
                    assert!(got.len() <= bound, "{text:?} in parts of {part}");
                    rows.extend(got);
                }
                assert_eq!(rows, crows, "{text:?} in parts of {part}");
                assert_eq!(
                    advanced.into_inner(),
                    text.len() as u64,
                    "{text:?} in parts of {part}"
                );
            }
        }
    }

    #[test]
    fn plain_lines_are_the_records_the_csv_reader_gives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        // CRLF, a blank line, a short row, a long row, blanks around fields, a last line
        // without a line end.
        std::fs::write(
            &path,
            "a;b;c\r\n1; 2 ;3\r\n\r\n4;5\r\n6;7;8;9\r\n;;\r\nx;y;z",
        )
        .unwrap();
        let open = || Rows::open(&path, Encoding::Auto, None, None, "k", &BTreeMap::new());
        let mut rd = open().unwrap();
        let (text, delimiter) = rd.plain_text().expect("no quotes, CRLF only");
        let text = text.to_vec();
        let mut by_reader = Vec::new();
        while let Some(row) = rd.next().unwrap() {
            let cells: Vec<String> = (0..row.record.len())
                .map(|i| row.at(i).to_string())
                .collect();
            by_reader.push((row.line, cells));
        }
        assert_eq!(by_reader.len(), 5);
        let lines: Vec<u64> = by_reader.iter().map(|(n, _)| *n).collect();
        let jumped = |lines: &[u64]| {
            let mut out: Vec<(u64, Vec<String>)> = Vec::new();
            plain_lines(&text, lines, |n, line| {
                let line = std::str::from_utf8(line).unwrap();
                out.push((
                    n,
                    line.split(delimiter)
                        .map(|f| f.trim().to_string())
                        .collect(),
                ))
            });
            out
        };
        assert_eq!(jumped(&lines), by_reader);
        // Some lines only, and none past the end.
        assert_eq!(
            jumped(&[4, 99]),
            vec![(4, vec!["4".to_string(), "5".to_string()])]
        );
        // A quote anywhere, or a carriage return that does not end a line: the reader decides.
        for other in ["a,b\n\"1\",2\n", "a,b\r1,2\r"] {
            std::fs::write(&path, other).unwrap();
            assert!(open().unwrap().plain_text().is_none(), "{other:?}");
        }
    }

    /// Millions of records are held at once: their size is part of the memory budget of a
    /// large trial (`docs/benchmarks.md`).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_lab_record_stays_small() {
        assert_eq!(std::mem::size_of::<LabRecord>(), 208);
        assert_eq!(std::mem::size_of::<ParsedResult>(), 16);
    }

    #[test]
    fn text_is_decoded_per_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let read = |bytes: &[u8], enc| {
            std::fs::write(&path, bytes).unwrap();
            read_text(&path, enc).map(|t| t.as_str().to_string())
        };
        // Every Latin-1 byte is the code point of its value.
        let all: Vec<u8> = (1..=255).collect();
        let want: String = (1..=255u8).map(char::from).collect();
        assert_eq!(read(&all, Encoding::Latin1).unwrap(), want);
        assert_eq!(read(&all, Encoding::Auto).unwrap(), want);
        assert_eq!(
            read(b"\xEF\xBB\xBFa,\xC2\xB5", Encoding::Utf8).unwrap(),
            "a,\u{b5}"
        );
        assert_eq!(
            read(b"\xEF\xBB\xBFa,\xC2\xB5", Encoding::Auto).unwrap(),
            "a,\u{b5}"
        );
        assert_eq!(read(b"a,\xB5", Encoding::Auto).unwrap(), "a,\u{b5}");
        // An empty file, and a file of a byte order mark only, are empty text.
        assert_eq!(read(b"", Encoding::Utf8).unwrap(), "");
        assert_eq!(read(b"\xEF\xBB\xBF", Encoding::Auto).unwrap(), "");
        // UTF-8 files are mapped, not copied; Latin-1 text is a decoded copy.
        std::fs::write(&path, b"\xEF\xBB\xBFa,\xC2\xB5").unwrap();
        assert!(matches!(
            read_text(&path, Encoding::Utf8).unwrap(),
            Text::Mapped(_, 3)
        ));
        std::fs::write(&path, b"a,\xB5").unwrap();
        assert!(matches!(
            read_text(&path, Encoding::Auto).unwrap(),
            Text::Owned(_)
        ));
        assert_eq!(
            read(b"a\nb,\xB5", Encoding::Utf8).unwrap_err().to_string(),
            format!(
                "{}:2:3: not valid UTF-8 (byte 0xB5); declare encoding = \"latin1\" or \"auto\"",
                path.display()
            )
        );
    }
}
