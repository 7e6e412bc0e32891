//! Ingest: read the raw exports a pipeline file names into typed, standardized records.
//!
//! * CSV dialects: the delimiter is declared or detected from the header line (`,` `;` tab),
//!   UTF-8 with or without a byte-order mark, Latin-1 (declared, or detected when the bytes are
//!   not UTF-8), CRLF, quoted fields.
//! * Every record keeps its lineage: source file and the physical line it starts on.
//! * Results are parsed into a numeric value plus qualifiers: decimal comma, `<x`/`>x` (censored:
//!   the operator and the limit are kept; the value used for analysis follows the pipeline's
//!   [`CensoredPolicy`]), `ND`/`not done`, other text kept as a character result, blank as missing.
//! * Units are normalized and converted to the test's standard unit through the unit registry.
//! * Study day follows CDISC: day 1 is the reference date, the day before is −1, there is no day 0.
//!
//! Ingest decides nothing about validity: each record carries a [`ParseStatus`] saying what
//! parsing found, and `validate` turns those into findings. Rows are never dropped here.
//! A file that cannot be read at all is an [`IngestError`] naming the file and why.
//! The long layout and the default subjects and events layouts are implemented; the wide and
//! SDTM layouts are refused with a clear error until they are.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

use crate::spec::{CensoredPolicy, Encoding, LabLayout, LoadedPipeline, SubjectsLayout};
use crate::store::{Column, ColumnData, Table};
use crate::units::{Conversion, ExtraConversion, Registry};

/// Why ingest could not read its inputs.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
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
    #[error("{path}:1: required column `{column}` is missing (header has: {header})")]
    MissingColumn {
        /// The file.
        path: PathBuf,
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
    /// A layout this version does not read yet.
    #[error("{key}: layout `{layout}` is not supported yet by this version of trialpipe")]
    Unsupported {
        /// Pipeline key.
        key: String,
        /// Layout name.
        layout: String,
    },
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// Source file (as resolved from the pipeline file).
    pub file: String,
    /// 1-based physical line the record starts on.
    pub line: u64,
}

/// One subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectRecord {
    /// Source.
    pub lineage: Lineage,
    /// STUDYID.
    pub study_id: String,
    /// SITEID.
    pub site_id: String,
    /// SUBJID.
    pub subject_id: String,
    /// Arm code as randomized (blank → None).
    pub arm: Option<String>,
    /// Randomization date.
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
    /// Stratification factors named by the pipeline.
    pub strata: BTreeMap<String, String>,
    /// Study day 1.
    pub reference_date: Option<NaiveDate>,
    /// Fields that did not parse (column → raw text).
    pub bad_fields: BTreeMap<String, String>,
    /// Raw text of every column except the private ones (for eligibility criteria).
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
    Text(String),
}

/// What parsing found for a lab record. Everything but `Ok` becomes a finding in `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
        }
    }
}

/// One lab result, raw and standardized.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabRecord {
    /// Source.
    pub lineage: Lineage,
    /// STUDYID.
    pub study_id: String,
    /// SITEID.
    pub site_id: String,
    /// SUBJID.
    pub subject_id: String,
    /// Visit label as reported.
    pub visit: String,
    /// Collection date.
    pub collection_date: Option<NaiveDate>,
    /// Study day (CDISC, no day 0); None without a date or reference date.
    pub study_day: Option<i64>,
    /// Test code as reported (upper-cased, trimmed).
    pub test_code: String,
    /// Test name as reported.
    pub test_name: String,
    /// The result text exactly as reported.
    pub result_raw: String,
    /// The parsed result, in the reported unit.
    pub result: ParsedResult,
    /// The unit text exactly as reported.
    pub unit_raw: String,
    /// The canonical spelling of the reported unit.
    pub unit: Option<String>,
    /// Result in the standard unit, for analysis (censored values follow the policy).
    pub std_value: Option<f64>,
    /// For a censored result, its limit converted to the standard unit.
    pub std_limit: Option<f64>,
    /// Standard unit of the test.
    pub std_unit: Option<String>,
    /// Site's reference range converted to the standard unit.
    pub std_ref_low: Option<f64>,
    /// Site's reference range converted to the standard unit.
    pub std_ref_high: Option<f64>,
    /// What parsing found.
    pub status: ParseStatus,
}

/// Rows read from one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileAccount {
    /// The file.
    pub file: String,
    /// What it holds: `subjects`, `labs` or `events`.
    pub kind: &'static str,
    /// Data rows read (header excluded).
    pub rows_read: u64,
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
    /// Rows read per file.
    pub files: Vec<FileAccount>,
}

/// Read every input the pipeline names.
pub fn ingest(lp: &LoadedPipeline) -> Result<IngestOutput, IngestError> {
    let p = &lp.pipeline;
    let mut out = IngestOutput::default();
    let files = |key: &str, pattern: &str| -> Result<Vec<PathBuf>, IngestError> {
        let v = lp.expand(pattern).unwrap_or_default();
        if v.is_empty() {
            Err(IngestError::NoFiles {
                key: key.to_string(),
                pattern: pattern.to_string(),
            })
        } else {
            Ok(v)
        }
    };

    // Subjects.
    let s = &p.inputs.subjects;
    if s.layout != SubjectsLayout::Default {
        return Err(IngestError::Unsupported {
            key: "inputs.subjects.layout".into(),
            layout: "sdtm_dm".into(),
        });
    }
    for path in files("inputs.subjects.path", &s.path)? {
        let t = read_text(&path, s.encoding)?;
        let mut rd = Rows::open(&path, &t, s.delimiter, &s.columns)?;
        let need = [
            "study_id",
            "site_id",
            "subject_id",
            "arm",
            "randomization_date",
            "sex",
            "age",
        ];
        rd.require(&need)?;
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
                    bad.insert(col.to_string(), raw.to_string());
                }
                d
            };
            let randomization_date = date("randomization_date");
            let consent_date = date("consent_date");
            let first_dose_date = date("first_dose_date");
            let reference_date = match p.study.reference_date {
                crate::spec::ReferenceDate::Randomization => randomization_date,
                crate::spec::ReferenceDate::Consent => consent_date,
                crate::spec::ReferenceDate::FirstDose => first_dose_date,
            };
            let mut num = |col: &str| -> Option<f64> {
                let raw = row.get(col)?;
                if raw.is_empty() {
                    return None;
                }
                let v = parse_number(raw);
                if v.is_none() {
                    bad.insert(col.to_string(), raw.to_string());
                }
                v
            };
            let age = num("age");
            let doses_received = num("doses_received").map(|v| v as i64);
            let strata = s
                .strata
                .iter()
                .filter_map(|c| row.get(c).map(|v| (c.clone(), v.to_string())))
                .collect();
            out.subjects.push(SubjectRecord {
                lineage: row.lineage(),
                study_id: row.text("study_id"),
                site_id: row.text("site_id"),
                subject_id: row.text("subject_id"),
                arm: row.get("arm").filter(|a| !a.is_empty()).map(str::to_string),
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
                columns: row.all_columns(&s.private_columns),
            });
        }
        out.files.push(FileAccount {
            file: path.to_string_lossy().into_owned(),
            kind: "subjects",
            rows_read: n,
        });
    }
    let reference: HashMap<&str, (Option<NaiveDate>, Option<&str>)> = out
        .subjects
        .iter()
        .map(|s| (s.subject_id.as_str(), (s.reference_date, s.sex.as_deref())))
        .collect();

    // Labs.
    let registry = Registry::builtin();
    let mut std_of: HashMap<&str, (&str, Registry)> = HashMap::new();
    for t in &p.labs {
        let extra: Vec<ExtraConversion> = t
            .conversions
            .iter()
            .map(|c| ExtraConversion {
                analyte: t.code.clone(),
                from: c.from.clone(),
                to: c.to.clone(),
                factor: c.factor,
            })
            .collect();
        let reg = match registry.with_extra(&extra) {
            Ok(r) => r,
            Err(_) => registry.with_extra(&[]).expect("no extra conversions"),
        };
        std_of.insert(t.code.as_str(), (t.unit.as_str(), reg));
    }
    let policy = p.ingest.censored;
    let mut labs = Vec::new();
    for (i, input) in p.inputs.labs.iter().enumerate() {
        if input.layout != LabLayout::Long {
            return Err(IngestError::Unsupported {
                key: format!("inputs.labs[{i}].layout"),
                layout: format!("{:?}", input.layout).to_lowercase(),
            });
        }
        for path in files(&format!("inputs.labs[{i}].path"), &input.path)? {
            let t = read_text(&path, input.encoding)?;
            let mut rd = Rows::open(&path, &t, input.delimiter, &input.columns)?;
            rd.require(&[
                "subject_id",
                "visit",
                "collection_date",
                "test_code",
                "result",
                "unit",
            ])?;
            let mut conv_cache: HashMap<(String, String), Result<Conversion, ParseStatus>> =
                HashMap::new();
            let mut n = 0;
            while let Some(row) = rd.next()? {
                n += 1;
                let subject_id = row.text("subject_id");
                let test_code = row.text("test_code").to_uppercase();
                let result_raw = row.text("result");
                let unit_raw = row.text("unit");
                let date_raw = row.text("collection_date");
                let collection_date = parse_date(&date_raw, input.date_format.as_deref());
                let (refdate, _sex) = reference
                    .get(subject_id.as_str())
                    .copied()
                    .unwrap_or((None, None));
                let study_day = match (collection_date, refdate) {
                    (Some(d), Some(r)) => Some(study_day(d, r)),
                    _ => None,
                };
                let result = parse_result(&result_raw);
                let unit = registry.canonical(&unit_raw).map(str::to_string);
                let mut status = match (&result, row.field_count_ok) {
                    (_, false) => ParseStatus::FieldCount,
                    (ParsedResult::Missing, _) => ParseStatus::BlankResult,
                    (ParsedResult::NotDone, _) => ParseStatus::NotDone,
                    (ParsedResult::Text(_), _) => ParseStatus::TextResult,
                    (ParsedResult::Censored(..), _) => ParseStatus::Censored,
                    (ParsedResult::Numeric(_), _) => ParseStatus::Ok,
                };
                let mut std_value = None;
                let mut std_limit = None;
                let mut std_ref = (None, None);
                let std_unit = std_of.get(test_code.as_str()).map(|(u, _)| u.to_string());
                match std_of.get(test_code.as_str()) {
                    None => {
                        if status == ParseStatus::Ok || status == ParseStatus::Censored {
                            status = ParseStatus::UnknownTest;
                        }
                    }
                    Some((std_unit, reg)) => {
                        let conv = conv_cache
                            .entry((test_code.clone(), unit_raw.clone()))
                            .or_insert_with(|| match reg.canonical(&unit_raw) {
                                None => Err(ParseStatus::UnknownUnit),
                                Some(_) => reg
                                    .conversion(&test_code, &unit_raw, std_unit)
                                    .map_err(|_| ParseStatus::NoConversion),
                            });
                        let conv = *conv;
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
                                    ParsedResult::Censored(_, lim) => match policy {
                                        CensoredPolicy::Missing => None,
                                        CensoredPolicy::Limit => c.apply(lim),
                                        CensoredPolicy::HalfLimit => c.apply(lim / 2.0),
                                    },
                                    _ => None,
                                };
                                let r = |col: &str| {
                                    row.get(col).and_then(parse_number).and_then(|v| c.apply(v))
                                };
                                std_ref = (r("ref_low"), r("ref_high"));
                            }
                        }
                    }
                }
                if status == ParseStatus::Ok && collection_date.is_none() {
                    status = ParseStatus::BadDate;
                }
                labs.push(LabRecord {
                    lineage: row.lineage(),
                    study_id: row.text("study_id"),
                    site_id: row.text("site_id"),
                    subject_id,
                    visit: row.text("visit").to_uppercase(),
                    collection_date,
                    study_day,
                    test_name: row.text("test_name"),
                    test_code,
                    result_raw,
                    result,
                    unit_raw,
                    unit,
                    std_value,
                    std_limit,
                    std_unit,
                    std_ref_low: std_ref.0,
                    std_ref_high: std_ref.1,
                    status,
                });
            }
            out.files.push(FileAccount {
                file: path.to_string_lossy().into_owned(),
                kind: "labs",
                rows_read: n,
            });
        }
    }
    out.labs = labs;

    // Events.
    if let Some(e) = &p.inputs.events {
        if e.layout != crate::spec::EventsLayout::Events {
            return Err(IngestError::Unsupported {
                key: "inputs.events.layout".into(),
                layout: "tte".into(),
            });
        }
        for path in files("inputs.events.path", &e.path)? {
            let t = read_text(&path, e.encoding)?;
            let mut rd = Rows::open(&path, &t, e.delimiter, &e.columns)?;
            rd.require(&["subject_id", "event", "event_date"])?;
            let mut n = 0;
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
            }
            out.files.push(FileAccount {
                file: path.to_string_lossy().into_owned(),
                kind: "events",
                rows_read: n,
            });
        }
    }
    Ok(out)
}

/// Study day of `date` relative to `reference` (CDISC: no day 0).
pub fn study_day(date: NaiveDate, reference: NaiveDate) -> i64 {
    let d = (date - reference).num_days();
    if d >= 0 { d + 1 } else { d }
}

/// Parse a date: ISO 8601 date or datetime (the date part), or the declared format.
pub fn parse_date(raw: &str, format: Option<&str>) -> Option<NaiveDate> {
    let raw = raw.trim();
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
    NaiveDate::parse_from_str(date_part, "%Y-%m-%d").ok()
}

/// Parse a plain number, accepting a decimal comma (`12,5`). Thousands separators are not
/// accepted: `1.234,5` is not a number.
pub fn parse_number(raw: &str) -> Option<f64> {
    let t = raw.trim();
    if t.is_empty() {
        return None;
    }
    let normalized;
    let t = if t.contains(',') {
        if t.contains('.') || t.matches(',').count() > 1 {
            return None;
        }
        normalized = t.replace(',', ".");
        normalized.as_str()
    } else {
        t
    };
    let ok = t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if !ok {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parse a result text into a value plus qualifiers.
pub fn parse_result(raw: &str) -> ParsedResult {
    let t = raw.trim();
    if t.is_empty() {
        return ParsedResult::Missing;
    }
    let lower = t.to_lowercase();
    if matches!(lower.as_str(), "nd" | "not done" | "n/d" | "na" | "n/a") {
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
    ParsedResult::Text(t.to_string())
}

/// Read a file as text in the declared encoding (BOM stripped; Latin-1 decoded).
fn read_text(path: &Path, encoding: Encoding) -> Result<String, IngestError> {
    let bytes = std::fs::read(path).map_err(|source| IngestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&bytes);
    let latin1 = |b: &[u8]| b.iter().map(|&c| c as char).collect::<String>();
    match encoding {
        Encoding::Latin1 => Ok(latin1(body)),
        Encoding::Auto => Ok(match std::str::from_utf8(body) {
            Ok(s) => s.to_string(),
            Err(_) => latin1(body),
        }),
        Encoding::Utf8 => match std::str::from_utf8(body) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => {
                let at = e.valid_up_to();
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
        },
    }
}

fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let mut best = (b',', 0);
    for d in [b',', b';', b'\t', b'|'] {
        let n = header.bytes().filter(|&b| b == d).count();
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

/// A CSV reader that maps contract column names through the pipeline's mapping.
struct Rows<'a> {
    path: &'a Path,
    reader: csv::Reader<&'a [u8]>,
    index: HashMap<String, usize>,
    header: Vec<String>,
    record: csv::StringRecord,
}

struct Row<'r> {
    file: &'r Path,
    line: u64,
    index: &'r HashMap<String, usize>,
    record: &'r csv::StringRecord,
    field_count_ok: bool,
}

impl Row<'_> {
    fn get(&self, col: &str) -> Option<&str> {
        self.index
            .get(col)
            .and_then(|&i| self.record.get(i))
            .map(str::trim)
    }
    fn text(&self, col: &str) -> String {
        self.get(col).unwrap_or("").to_string()
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
            file: self.file.to_string_lossy().into_owned(),
            line: self.line,
        }
    }
}

impl<'a> Rows<'a> {
    fn open(
        path: &'a Path,
        text: &'a str,
        delimiter: Option<char>,
        mapping: &BTreeMap<String, String>,
    ) -> Result<Rows<'a>, IngestError> {
        let delim = delimiter
            .map(|c| c as u8)
            .unwrap_or_else(|| detect_delimiter(text));
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delim)
            .flexible(true)
            .has_headers(true)
            .from_reader(text.as_bytes());
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
        let mut index = HashMap::new();
        for (i, h) in header.iter().enumerate() {
            index.insert(h.clone(), i);
        }
        // Contract name → file column.
        for (contract, actual) in mapping {
            if let Some(&i) = header.iter().position(|h| h == actual).as_ref() {
                index.insert(contract.clone(), i);
            }
        }
        Ok(Rows {
            path,
            reader,
            index,
            header,
            record: csv::StringRecord::new(),
        })
    }

    fn require(&self, cols: &[&str]) -> Result<(), IngestError> {
        for c in cols {
            if !self.index.contains_key(*c) {
                return Err(IngestError::MissingColumn {
                    path: self.path.to_path_buf(),
                    column: c.to_string(),
                    header: self.header.join(", "),
                });
            }
        }
        Ok(())
    }

    fn next(&mut self) -> Result<Option<Row<'_>>, IngestError> {
        let more = self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| IngestError::Csv {
                path: self.path.to_path_buf(),
                line: e.position().map_or(0, |p| p.line()),
                message: e.to_string(),
            })?;
        if !more {
            return Ok(None);
        }
        let line = self.record.position().map_or(0, |p| p.line());
        Ok(Some(Row {
            file: self.path,
            line,
            index: &self.index,
            record: &self.record,
            field_count_ok: self.record.len() == self.header.len(),
        }))
    }
}

/// The standardized long lab table, as written to `ingest/labs.parquet`.
pub fn labs_table(labs: &[LabRecord]) -> Table {
    let s =
        |f: &dyn Fn(&LabRecord) -> Option<String>| ColumnData::Str(labs.iter().map(f).collect());
    let col = |name, label, data| Column { name, label, data };
    let qual = |r: &LabRecord| match r.result {
        ParsedResult::Censored(Censoring::Below, _) => Some("<".to_string()),
        ParsedResult::Censored(Censoring::Above, _) => Some(">".to_string()),
        _ => None,
    };
    let num = |r: &LabRecord| match r.result {
        ParsedResult::Numeric(v) => Some(v),
        ParsedResult::Censored(_, v) => Some(v),
        _ => None,
    };
    Table {
        columns: vec![
            col(
                "SRCFILE",
                "Source file",
                s(&|r| Some(r.lineage.file.clone())),
            ),
            col(
                "SRCLINE",
                "Source line",
                ColumnData::I64(labs.iter().map(|r| Some(r.lineage.line as i64)).collect()),
            ),
            col(
                "STUDYID",
                "Study Identifier",
                s(&|r| Some(r.study_id.clone())),
            ),
            col(
                "SITEID",
                "Study Site Identifier",
                s(&|r| Some(r.site_id.clone())),
            ),
            col(
                "SUBJID",
                "Subject Identifier for the Study",
                s(&|r| Some(r.subject_id.clone())),
            ),
            col(
                "VISIT",
                "Visit Name as reported",
                s(&|r| Some(r.visit.clone())),
            ),
            col(
                "LBDT",
                "Date of Specimen Collection",
                ColumnData::Date(labs.iter().map(|r| r.collection_date).collect()),
            ),
            col(
                "LBDY",
                "Study Day of Specimen Collection",
                ColumnData::I64(labs.iter().map(|r| r.study_day).collect()),
            ),
            col(
                "LBTESTCD",
                "Lab Test Short Name",
                s(&|r| Some(r.test_code.clone())),
            ),
            col(
                "LBTEST",
                "Lab Test Name as reported",
                s(&|r| Some(r.test_name.clone())),
            ),
            col(
                "LBORRES",
                "Result as Originally Received",
                s(&|r| Some(r.result_raw.clone())),
            ),
            col(
                "LBORRESN",
                "Numeric Result in Original Unit",
                ColumnData::F64(labs.iter().map(num).collect()),
            ),
            col("LBORQUAL", "Censoring Operator of Result", s(&|r| qual(r))),
            col(
                "LBORRESU",
                "Original Unit as Received",
                s(&|r| Some(r.unit_raw.clone())),
            ),
            col(
                "LBORUNIT",
                "Original Unit, Canonical Spelling",
                s(&|r| r.unit.clone()),
            ),
            col(
                "LBSTRESN",
                "Numeric Result in Standard Unit",
                ColumnData::F64(labs.iter().map(|r| r.std_value).collect()),
            ),
            col("LBSTRESU", "Standard Unit", s(&|r| r.std_unit.clone())),
            col(
                "LBSTNRLO",
                "Site Reference Range Lower Limit, Standard Unit",
                ColumnData::F64(labs.iter().map(|r| r.std_ref_low).collect()),
            ),
            col(
                "LBSTNRHI",
                "Site Reference Range Upper Limit, Standard Unit",
                ColumnData::F64(labs.iter().map(|r| r.std_ref_high).collect()),
            ),
            col(
                "PARSESTS",
                "Parse Status",
                s(&|r| Some(r.status.code().to_string())),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(detect_delimiter("a;b;c\n1;2;3"), b';');
        assert_eq!(detect_delimiter("a,b,c"), b',');
        assert_eq!(detect_delimiter("a\tb"), b'\t');
    }
}
