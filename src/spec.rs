//! The pipeline file: one TOML file describes one trial.
//!
//! This module owns the typed model of a pipeline file (study, arms, inputs, visit windows, lab panel,
//! analyses, output, simulation), its parsing with unknown keys rejected, and the semantic `check`
//! that runs without touching data. Every problem names the file, the key path and the line, so a
//! biostatistician can fix the file without reading Rust:
//!
//! ```text
//! pipelines/broken.toml:12:1: labs[2].plausible: missing field `high`
//! ```
//!
//! Relative paths inside a pipeline file are resolved against the directory that holds the file, so
//! a cron job's working directory does not matter.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::units::Registry;

/// A parsed pipeline file together with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    /// The file as given on the command line.
    pub path: PathBuf,
    /// The directory relative paths are resolved against.
    pub base_dir: PathBuf,
    /// The raw text (kept so later problems can be located by key path).
    pub text: String,
    /// The typed model.
    pub pipeline: Pipeline,
}

/// Why a pipeline file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{path}: cannot read pipeline file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the model.
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// One problem found in a pipeline file, located by key path and line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line, when the problem can be located.
    pub line: Option<usize>,
    /// 1-based column, when the problem can be located.
    pub column: Option<usize>,
    /// Dotted key path such as `labs[2].unit` (empty for the whole file).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// The whole pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Study identity and study-day convention.
    pub study: Study,
    /// Treatment arms.
    pub arms: Vec<Arm>,
    /// Raw input files.
    pub inputs: Inputs,
    /// The visit schedule as analysis windows.
    pub visits: Visits,
    /// The lab panel.
    pub labs: Vec<LabTest>,
    /// Subject-level eligibility criteria, evaluated by `validate`.
    #[serde(default)]
    pub eligibility: Vec<Criterion>,
    /// Response criteria, evaluated by `derive` per subject and post-baseline visit.
    #[serde(default)]
    pub responses: Vec<crate::response::ResponseRule>,
    /// Ingest settings.
    #[serde(default)]
    pub ingest: IngestSettings,
    /// Derive settings.
    #[serde(default)]
    pub derive: DeriveSettings,
    /// Validation rule settings.
    #[serde(default)]
    pub validation: ValidationSettings,
    /// Analyses to run.
    #[serde(default)]
    pub analyses: Vec<Analysis>,
    /// Where outputs go.
    #[serde(default)]
    pub output: Output,
    /// The statistical model used by `trialpipe simulate`.
    #[serde(default)]
    pub simulation: Option<Simulation>,
}

/// Study identity.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Study {
    /// Study identifier (STUDYID); also names the default output directory.
    pub id: String,
    /// Human-readable title.
    pub title: String,
    /// The date that is study day 1.
    #[serde(default)]
    pub reference_date: ReferenceDate,
}

/// Which subject-level date is study day 1 (CDISC: day 1 is the reference date, the day before is
/// −1, there is no day 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceDate {
    /// `randomization_date` of the subjects file (the default).
    #[default]
    Randomization,
    /// `consent_date` of the subjects file.
    Consent,
    /// `first_dose_date` of the subjects file.
    FirstDose,
}

impl ReferenceDate {
    /// The subjects-file column that holds the reference date.
    pub fn column(self) -> &'static str {
        match self {
            ReferenceDate::Randomization => "randomization_date",
            ReferenceDate::Consent => "consent_date",
            ReferenceDate::FirstDose => "first_dose_date",
        }
    }
}

/// A treatment arm.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    /// Arm code as it appears in the subjects file (ARMCD).
    pub code: String,
    /// Arm description (ARM).
    pub label: String,
    /// Control or experimental.
    #[serde(default)]
    pub role: ArmRole,
    /// Allocation ratio weight (1:1 → both 1).
    #[serde(default = "one")]
    pub ratio: u32,
}

fn one() -> u32 {
    1
}

/// The role of an arm in comparisons: differences are experimental minus control.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmRole {
    /// An experimental arm (the default).
    #[default]
    Experimental,
    /// The control arm (at most one).
    Control,
}

/// The raw input files.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// The subjects file.
    pub subjects: SubjectsInput,
    /// One or more lab inputs (each may be a glob matching many site transfers).
    pub labs: Vec<LabInput>,
    /// Events (death, transplant, last contact, withdrawal).
    #[serde(default)]
    pub events: Option<EventsInput>,
    /// Clinical assessments per subject and date (ascites, hepatic encephalopathy), one row
    /// per assessment; needed by the Child-Pugh scores.
    #[serde(default)]
    pub assessments: Option<AssessmentsInput>,
}

/// The wide assessments input: one row per subject and assessment date, one column per
/// assessment (`src/assessments.rs`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AssessmentsInput {
    /// Path (relative to the pipeline file).
    pub path: String,
    /// Field delimiter; detected from the header line when absent.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Text encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// Date format (chrono syntax) when dates are not ISO 8601.
    #[serde(default)]
    pub date_format: Option<String>,
    /// Map from contract column name (`subject_id`, `date`, `ascites`, `encephalopathy`) to the
    /// file's own column name.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// How the file writes each ascites grade.
    #[serde(default)]
    pub ascites: AscitesValues,
    /// How the file writes each hepatic encephalopathy grade.
    #[serde(default)]
    pub encephalopathy: EncephalopathyValues,
    /// How many days an assessment may lie before or after the lab date of a Child-Pugh score:
    /// 0 (the default) takes only an assessment of that date; otherwise the nearest assessment
    /// with both grades within that many days, the earlier on a tie
    /// ([`crate::assessments::matching`]).
    #[serde(default)]
    pub match_days: u32,
}

/// Contract columns of the assessments input.
pub const ASSESSMENT_COLUMNS: &[&str] = &["subject_id", "date", "ascites", "encephalopathy"];

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// The spellings of each ascites grade (matched case-insensitively after trimming).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AscitesValues {
    /// No ascites.
    pub none: Vec<String>,
    /// Slight ascites.
    pub slight: Vec<String>,
    /// Moderate to severe ascites.
    pub moderate_severe: Vec<String>,
}

impl Default for AscitesValues {
    fn default() -> Self {
        AscitesValues {
            none: words(&["none", "absent"]),
            slight: words(&["slight", "mild"]),
            moderate_severe: words(&["moderate", "severe", "moderate-severe"]),
        }
    }
}

/// The spellings of each hepatic encephalopathy grade (matched case-insensitively after
/// trimming).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EncephalopathyValues {
    /// No encephalopathy.
    pub none: Vec<String>,
    /// West Haven grade 1 or 2.
    pub grade_1_2: Vec<String>,
    /// West Haven grade 3 or 4.
    pub grade_3_4: Vec<String>,
}

impl Default for EncephalopathyValues {
    fn default() -> Self {
        EncephalopathyValues {
            none: words(&["none", "0"]),
            grade_1_2: words(&["1", "2", "grade 1-2"]),
            grade_3_4: words(&["3", "4", "grade 3-4"]),
        }
    }
}

/// Text encoding of an input file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8, falling back to Latin-1 when the bytes are not valid UTF-8 (the default).
    #[default]
    Auto,
    /// UTF-8 (a byte-order mark is allowed).
    Utf8,
    /// ISO-8859-1.
    Latin1,
}

/// The subjects file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectsInput {
    /// Path (relative to the pipeline file).
    pub path: String,
    /// Layout: the default contract or an SDTM DM domain.
    #[serde(default)]
    pub layout: SubjectsLayout,
    /// Field delimiter; detected from the header line when absent.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Text encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// Date format (chrono syntax) when dates are not ISO 8601.
    #[serde(default)]
    pub date_format: Option<String>,
    /// Map from contract column name to the file's own column name.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Columns used as stratification factors (kept in ADSL).
    #[serde(default)]
    pub strata: Vec<String>,
    /// Columns holding direct identifiers: read, never written anywhere.
    #[serde(default)]
    pub private_columns: Vec<String>,
    /// Worksheet to read when `path` is an `.xlsx` workbook (default: the first sheet). Not
    /// allowed for text files.
    #[serde(default)]
    pub sheet: Option<String>,
}

/// Layout of the subjects file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectsLayout {
    /// `study_id, site_id, subject_id, arm, randomization_date, sex, age` (+ optional columns).
    #[default]
    Default,
    /// An SDTM DM domain (STUDYID, USUBJID, SITEID, ARMCD, RFSTDTC, SEX, AGE).
    SdtmDm,
}

/// One lab input.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabInput {
    /// Path or glob (relative to the pipeline file).
    pub path: String,
    /// Layout of the files.
    #[serde(default)]
    pub layout: LabLayout,
    /// Field delimiter; detected from the header line when absent.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Text encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// Date format (chrono syntax) when dates are not ISO 8601.
    #[serde(default)]
    pub date_format: Option<String>,
    /// Map from contract column name to the file's own column name.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Wide layout: one entry per test column.
    #[serde(default)]
    pub tests: Vec<WideTest>,
    /// Wide layout: timing by `date` (collection_date) or `study_day` column.
    #[serde(default)]
    pub timing: Timing,
    /// Worksheet to read when `path` is an `.xlsx` workbook (default: the first sheet). Not
    /// allowed for text files.
    #[serde(default)]
    pub sheet: Option<String>,
}

/// Layout of a lab input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabLayout {
    /// One row per result (the default contract).
    #[default]
    Long,
    /// One row per subject and visit, one column per test.
    Wide,
    /// An SDTM LB domain.
    Sdtm,
}

/// How a wide lab input gives time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// A collection date column.
    #[default]
    Date,
    /// A study-day column.
    StudyDay,
}

/// A test column of a wide lab input.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WideTest {
    /// The file's column.
    pub column: String,
    /// The panel test code.
    pub code: String,
    /// The unit of the values in that column.
    pub unit: String,
}

/// The events input.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventsInput {
    /// Path or glob (relative to the pipeline file).
    pub path: String,
    /// `events` (one row per event) or `tte` (time and status columns per subject).
    #[serde(default)]
    pub layout: EventsLayout,
    /// Field delimiter; detected from the header line when absent.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Text encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// Date format (chrono syntax) when dates are not ISO 8601.
    #[serde(default)]
    pub date_format: Option<String>,
    /// Map from contract column name to the file's own column name.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// `tte` layout: endpoints given as time and status columns.
    #[serde(default)]
    pub endpoints: Vec<TteColumns>,
}

/// Layout of the events input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventsLayout {
    /// `study_id, subject_id, event, event_date`.
    #[default]
    Events,
    /// Subject-level time-to-event columns.
    Tte,
}

/// One time-to-event endpoint given as columns.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TteColumns {
    /// Parameter code of the endpoint (e.g. `OS`, `DFS`).
    pub paramcd: String,
    /// Column with the time in days from the reference date.
    pub time_column: String,
    /// Column with the status code.
    pub status_column: String,
    /// The status value that means the event happened (others are censored).
    pub event_value: String,
}

/// The visit schedule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Visits {
    /// Which record a window keeps when several fall in it.
    #[serde(default)]
    pub rule: WindowRule,
    /// Which one wins when two records are equally close to the target.
    #[serde(default)]
    pub tie: TieRule,
    /// Name of the baseline window (default: the first window).
    #[serde(default)]
    pub baseline: Option<String>,
    /// The analysis windows, in study-day units.
    pub windows: Vec<Window>,
}

impl Visits {
    /// Index of the baseline window: the one `baseline` names, else the first.
    pub fn baseline_index(&self) -> usize {
        self.baseline
            .as_ref()
            .and_then(|b| self.windows.iter().position(|w| &w.name == b))
            .unwrap_or(0)
    }
}

/// Choice among several records in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowRule {
    /// Closest to the target day (the default).
    #[default]
    Closest,
    /// The earliest record in the window.
    Earliest,
    /// The latest record in the window.
    Latest,
}

/// Tie-break for the `closest` rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TieRule {
    /// The earlier record (the default).
    #[default]
    Earlier,
    /// The later record.
    Later,
}

/// One analysis window.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// AVISIT, e.g. `WEEK 12`.
    pub name: String,
    /// AVISITN.
    pub number: f64,
    /// Target study day.
    pub target: i32,
    /// First study day in the window.
    pub low: i32,
    /// Last study day in the window.
    pub high: i32,
}

/// One lab test of the panel.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabTest {
    /// CDISC-style test code (LBTESTCD / PARAMCD).
    pub code: String,
    /// Test name (LBTEST).
    pub name: String,
    /// Standard unit (LBSTRESU).
    pub unit: String,
    /// Units sites may report in; each needs a conversion path to `unit`.
    #[serde(default)]
    pub source_units: Vec<String>,
    /// Numeric or qualitative (a category such as NEGATIVE / POSITIVE).
    #[serde(default)]
    pub result: ResultKind,
    /// Qualitative tests: the allowed values (case-insensitive); empty allows any text.
    #[serde(default)]
    pub values: Vec<String>,
    /// Values outside are impossible (quarantined), in the standard unit. Required for numeric
    /// tests.
    #[serde(default)]
    pub plausible: Option<Limits>,
    /// Normal range in the standard unit, overall or by sex.
    #[serde(default)]
    pub normal: Option<NormalRange>,
    /// Extra conversions for this test (value_in_to = value_in_from × factor).
    #[serde(default)]
    pub conversions: Vec<PipelineConversion>,
    /// Decimals to keep in standard results.
    #[serde(default)]
    pub decimals: Option<u32>,
}

impl LabTest {
    /// The unit registry with the conversions this test declares (`conversions`): what ingest
    /// standardizes with, derive converts score inputs with, and `check` and the simulator
    /// follow. An error when the declared conversions do not fit the registry (`check` reports
    /// it at `labs[i].conversions`).
    pub fn registry(&self) -> Result<Registry, crate::units::UnitError> {
        let extra: Vec<crate::units::ExtraConversion> = self
            .conversions
            .iter()
            .map(|c| crate::units::ExtraConversion {
                analyte: self.code.clone(),
                from: c.from.clone(),
                to: c.to.clone(),
                factor: c.factor,
            })
            .collect();
        Registry::builtin().with_extra(&extra)
    }

    /// [`LabTest::registry`], or the built-in registry when the declared conversions do not fit
    /// (a run never starts with such a pipeline: `check` refuses it).
    pub fn registry_or_builtin(&self) -> Registry {
        self.registry().unwrap_or_else(|_| {
            Registry::builtin()
                .with_extra(&[])
                .expect("no extra conversions")
        })
    }
}

/// Kind of result a test gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultKind {
    /// A number in a unit (the default).
    #[default]
    Numeric,
    /// A category (kept as text; no unit conversion, no plausibility or normal range).
    Qualitative,
}

/// A closed interval `[low, high]`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Lower limit.
    pub low: f64,
    /// Upper limit.
    pub high: f64,
}

/// A normal range: either `low`/`high`, or `male` and `female` ranges.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NormalRange {
    /// Lower limit for everyone.
    #[serde(default)]
    pub low: Option<f64>,
    /// Upper limit for everyone.
    #[serde(default)]
    pub high: Option<f64>,
    /// Range for males (sex `M`).
    #[serde(default)]
    pub male: Option<Limits>,
    /// Range for females (sex `F`).
    #[serde(default)]
    pub female: Option<Limits>,
}

impl NormalRange {
    /// The (low, high) range that applies to a subject of the given sex (`M`/`F`).
    pub fn for_sex(&self, sex: Option<&str>) -> (Option<f64>, Option<f64>) {
        let by_sex = match sex {
            Some("M") => self.male,
            Some("F") => self.female,
            _ => None,
        };
        match by_sex {
            Some(l) => (Some(l.low), Some(l.high)),
            None => (self.low, self.high),
        }
    }
}

/// A conversion declared in the pipeline file for one test.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConversion {
    /// Source unit.
    pub from: String,
    /// Target unit.
    pub to: String,
    /// value_in_to = value_in_from × factor.
    pub factor: f64,
}

/// One eligibility criterion, written in the criteria language (`src/criteria.rs`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Short id, e.g. `AGE`.
    pub id: String,
    /// Inclusion (the expression must be true) or exclusion (true excludes).
    pub kind: CriterionKind,
    /// The protocol's wording.
    pub description: String,
    /// The expression, e.g. `age >= 20 and age <= 60`.
    pub when: String,
}

/// Inclusion or exclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CriterionKind {
    /// The subject must satisfy it.
    Inclusion,
    /// Satisfying it excludes the subject.
    Exclusion,
}

/// Functions the criteria language offers, with whether their arguments are bare names.
pub const CRITERIA_FUNCTIONS: &[(&str, &str)] = &[
    (
        "baseline",
        "baseline(CODE): the subject's baseline value of a panel test, standard unit",
    ),
    (
        "uln",
        "uln(CODE): upper limit of normal for the subject's sex",
    ),
    (
        "lln",
        "lln(CODE): lower limit of normal for the subject's sex",
    ),
    (
        "days",
        "days(a, b): days from date column a to date column b (b − a)",
    ),
    ("missing", "missing(x): true when x has no value"),
];

/// Derive settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveSettings {
    /// What ADLB does for post-baseline windows with no analysed record.
    #[serde(default)]
    pub missing_visits: MissingVisitPolicy,
    /// Clinical scores and criteria to derive as ADLB parameters from same-date values (the
    /// codes of [`crate::scores::SCORES`]; see `src/scores.rs`).
    #[serde(default)]
    pub scores: Vec<String>,
    /// Whether the `HYSLAW` criterion also requires alkaline phosphatase < 2 × ULN.
    #[serde(default)]
    pub hyslaw_alp: crate::scores::HysLawAlp,
}

/// Rows ADLB adds for missing post-baseline visits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingVisitPolicy {
    /// None (the default; MMRM uses the observed data under MAR).
    #[default]
    None,
    /// Last observation carried forward from the previous post-baseline window, as extra rows
    /// with DTYPE = "LOCF" and ANL01FL null (for sensitivity analyses).
    Locf,
}

/// Ingest settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// The analysis value of a censored result (`<x`, `>x`).
    #[serde(default)]
    pub censored: CensoredPolicy,
}

/// The numeric value used for analysis when a result is censored (`<5`, `>1000`). The operator
/// and the limit are always kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CensoredPolicy {
    /// No numeric value (the SDTM convention: LBSTRESN is null for `<5`). The default.
    #[default]
    Missing,
    /// The limit itself.
    Limit,
    /// Half the limit for `<x` (a common convention below the LLOQ); the limit for `>x`.
    HalfLimit,
}

/// Validation settings: per-rule overrides and the run-failing threshold.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSettings {
    /// Fail the run when more than this percentage of lab rows have error findings.
    #[serde(default)]
    pub max_error_percent: Option<f64>,
    /// Per-rule overrides keyed by rule id.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleOverride>,
}

/// Override of one validation rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    /// Turn the rule off.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// New severity.
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// Severity of a validation finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Note,
    /// Worth a look; the run continues.
    Warning,
    /// Counts towards the failing threshold.
    Error,
}

/// One analysis to run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Identifier used in result files.
    pub id: String,
    /// Method.
    pub method: Method,
    /// Parameter codes (panel test codes or derived parameters).
    #[serde(default)]
    pub params: Vec<String>,
    /// Analysis variable.
    #[serde(default)]
    pub variable: Option<AnalysisVariable>,
    /// Visits (window names); all post-baseline windows when empty.
    #[serde(default)]
    pub visits: Vec<String>,
    /// Two-sided confidence level.
    #[serde(default)]
    pub conf_level: Option<f64>,
    /// Multiplicity adjustment over the contrasts of this analysis (its family).
    #[serde(default)]
    pub adjust: Option<Multiplicity>,
    /// MMRM options (ignored by other methods).
    #[serde(default)]
    pub mmrm: MmrmOptions,
    /// Responder options (ignored by other methods).
    #[serde(default)]
    pub responders: ResponderOptions,
    /// ANCOVA options (ignored by other methods).
    #[serde(default)]
    pub ancova: AncovaOptions,
    /// t-test options (ignored by other methods).
    #[serde(default)]
    pub t_test: TTestOptions,
    /// Wilcoxon options (ignored by other methods).
    #[serde(default)]
    pub wilcoxon: WilcoxonOptions,
    /// Survival options (ignored by other methods).
    #[serde(default)]
    pub survival: SurvivalOptions,
}

/// ANCOVA options of an analysis.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AncovaOptions {
    /// Add the first stratification factor of `inputs.subjects.strata` to the model
    /// (`variable ~ BASE + ARM + STRAT1`); LS-means weight its levels equally.
    #[serde(default)]
    pub stratified: bool,
}

/// t-test options of an analysis.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TTestOptions {
    /// Which two-sample t tests to report.
    #[serde(default)]
    pub variance: TVarianceName,
}

/// Variance assumption of the two-sample t test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TVarianceName {
    /// Welch (`t_welch`) and pooled (`t_pooled`).
    #[default]
    Both,
    /// Welch only (unequal variances).
    Welch,
    /// Pooled only (equal variances).
    Pooled,
}

/// Wilcoxon options of an analysis.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WilcoxonOptions {
    /// Exact or normal-approximation p-value and interval.
    #[serde(default)]
    pub method: WilcoxonMethodName,
    /// Continuity correction of the normal approximation.
    #[serde(default)]
    pub correction: WilcoxonCorrectionName,
}

/// Exact or normal approximation (R's `exact =`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WilcoxonMethodName {
    /// R's rule: exact below 50 observations per group without ties, else normal.
    #[default]
    Auto,
    /// Exact (an error, in `NOTE`, when the data have ties or zero differences).
    Exact,
    /// Normal approximation with the tie correction.
    Normal,
}

/// Continuity correction of the Wilcoxon normal approximation (R's `correct =`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WilcoxonCorrectionName {
    /// 0.5 (R's default, `correct = TRUE`).
    #[default]
    Continuity,
    /// None (`correct = FALSE`).
    None,
}

/// Survival options of an analysis.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SurvivalOptions {
    /// Tie handling of the Cox models.
    #[serde(default)]
    pub ties: TiesName,
    /// A stratification column of the subjects file (`inputs.subjects.strata`) whose levels
    /// replace the arms as the groups (Kaplan-Meier per level, log-rank across the levels).
    #[serde(default)]
    pub by: Option<String>,
}

/// Cox tie handling (R's `coxph(ties =)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TiesName {
    /// Efron (R's default).
    #[default]
    Efron,
    /// Breslow (SAS PROC PHREG's default).
    Breslow,
}

/// Responder options of an analysis.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResponderOptions {
    /// Continuity correction of the Cochran-Mantel-Haenszel test stratified by the first
    /// stratification factor (default none, as SAS PROC FREQ's CMH statistics).
    #[serde(default)]
    pub cmh_correction: CorrectionName,
    /// A benchmark rate; each arm's proportion is also tested against it (exact one-sample
    /// binomial test with the Clopper-Pearson interval).
    #[serde(default)]
    pub benchmark: Option<f64>,
}

/// Continuity correction of a chi-square-type test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionName {
    /// No correction (R's `correct = FALSE`).
    #[default]
    None,
    /// Yates' correction, `|Σ(a - E a)| - 0.5` (R's `correct = TRUE`, its default).
    Yates,
}

/// MMRM options of an analysis.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MmrmOptions {
    /// Covariance structures to try in order; the first that converges is used and the results
    /// say which (default: UN, then heterogeneous Toeplitz, heterogeneous AR(1), heterogeneous
    /// CS, CS).
    #[serde(default = "default_chain")]
    pub covariance: Vec<CovarianceName>,
    /// REML (default) or ML.
    #[serde(default)]
    pub estimation: EstimationName,
    /// Denominator degrees of freedom.
    #[serde(default)]
    pub df: DfName,
    /// Add the BASE × AVISIT interaction to the model.
    #[serde(default)]
    pub base_by_visit: bool,
    /// Also fit on the analysis records plus the LOCF rows (DTYPE = "LOCF"; needs
    /// `[derive] missing_visits = "locf"`), as a sensitivity analysis.
    #[serde(default)]
    pub locf_sensitivity: bool,
}

impl Default for MmrmOptions {
    fn default() -> Self {
        MmrmOptions {
            covariance: default_chain(),
            estimation: EstimationName::default(),
            df: DfName::default(),
            base_by_visit: false,
            locf_sensitivity: false,
        }
    }
}

fn default_chain() -> Vec<CovarianceName> {
    use CovarianceName::*;
    vec![Un, Toeph, Arh1, Csh, Cs]
}

/// Covariance structure names, as SAS spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CovarianceName {
    /// Unstructured.
    Un,
    /// Compound symmetry.
    Cs,
    /// Heterogeneous compound symmetry.
    Csh,
    /// AR(1).
    Ar1,
    /// Heterogeneous AR(1).
    Arh1,
    /// Toeplitz.
    Toep,
    /// Heterogeneous Toeplitz.
    Toeph,
}

/// Estimation method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimationName {
    /// Restricted maximum likelihood.
    #[default]
    Reml,
    /// Maximum likelihood.
    Ml,
}

/// Denominator degrees-of-freedom method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DfName {
    /// Satterthwaite.
    #[default]
    Satterthwaite,
    /// Kenward-Roger (linear; REML only).
    KenwardRoger,
    /// Residual.
    Residual,
    /// Between-within.
    BetweenWithin,
}

/// Multiplicity adjustment of p-values, as R's `p.adjust`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Multiplicity {
    /// Holm (1979) step-down.
    Holm,
    /// Hochberg (1988) step-up.
    Hochberg,
    /// Benjamini-Hochberg (1995) false discovery rate.
    Bh,
    /// Bonferroni.
    Bonferroni,
}

/// Analysis methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Descriptive statistics per parameter, visit and arm.
    Descriptive,
    /// Two-sample t test per visit.
    TTest,
    /// Wilcoxon rank-sum per visit.
    Wilcoxon,
    /// ANCOVA of change on baseline and arm per visit.
    Ancova,
    /// Mixed model for repeated measures.
    Mmrm,
    /// Responder proportions.
    Responders,
    /// Kaplan-Meier, log-rank and Cox on time-to-event endpoints.
    Survival,
}

/// Analysis variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AnalysisVariable {
    /// Analysis value.
    Aval,
    /// Change from baseline.
    Chg,
    /// Percent change from baseline.
    Pchg,
}

/// Output settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Output directory (relative to the pipeline file); default `out/<study id>` in the current
    /// directory.
    #[serde(default)]
    pub dir: Option<String>,
    /// Replace subject ids by keyed pseudonyms in every output (see `src/pseudonym.rs`).
    #[serde(default)]
    pub pseudonymize: Option<Pseudonymize>,
    /// Write ADLB Hive-partitioned by PARAMCD (`adam/adlb/PARAMCD=<code>/00000000.parquet`)
    /// instead of one file.
    #[serde(default)]
    pub partition_adlb: bool,
}

/// Keyed pseudonymization of subject ids.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pseudonymize {
    /// The environment variable holding the key (at least 16 bytes; never stored).
    pub key_env: String,
}

/// The simulation model behind `trialpipe simulate`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Simulation {
    /// Number of randomized subjects (overridden by `--subjects`).
    pub subjects: usize,
    /// Random seed (overridden by `--seed`).
    pub seed: u64,
    /// First randomization date.
    pub start_date: String,
    /// Days over which subjects are randomized.
    pub accrual_days: u32,
    /// Planned follow-up in months (administrative censoring).
    pub followup_months: f64,
    /// Doses planned per subject.
    #[serde(default = "one")]
    pub doses: u32,
    /// Days between doses.
    #[serde(default)]
    pub dose_interval_days: u32,
    /// Age distribution.
    pub age: AgeModel,
    /// Proportion of males.
    pub male_fraction: f64,
    /// Sites and how each one reports.
    pub sites: Vec<SimSite>,
    /// Deaths, transplants and withdrawals.
    pub survival: SurvivalModel,
    /// Rates of the defects of real transfers.
    #[serde(default)]
    pub messiness: Messiness,
    /// Per-test models keyed by test code.
    pub labs: BTreeMap<String, SimLab>,
    /// Clinical assessments (ascites, encephalopathy) written to `assessments.csv`; none
    /// when absent.
    #[serde(default)]
    pub assessments: Option<SimAssessments>,
    /// Extra subject-level columns of `subjects.csv` (e.g. facts eligibility criteria read, or a
    /// stratum). Drawn from their own random stream, so adding them leaves every other value of
    /// the simulation unchanged.
    #[serde(default)]
    pub subject_columns: Vec<SimColumn>,
}

/// The model of simulated assessments: per subject and lab visit date, a latent
/// `u = λ·z + √(1 − λ²)·ε` (z the subject's severity, ε ~ N(0, 1) per visit) is cut into grades
/// at the normal quantiles that give each grade its marginal probability.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimAssessments {
    /// Marginal probabilities of the ascites grades above none.
    pub ascites: SimAscites,
    /// Marginal probabilities of the encephalopathy grades above none.
    pub encephalopathy: SimEncephalopathy,
    /// λ: correlation of each latent grade with the subject's severity, −1..1.
    #[serde(default)]
    pub severity_loading: f64,
}

/// Probabilities of ascites grades.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimAscites {
    /// Slight.
    pub slight: f64,
    /// Moderate to severe.
    pub moderate_severe: f64,
}

/// Probabilities of encephalopathy grades.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimEncephalopathy {
    /// Grade 1–2.
    pub grade_1_2: f64,
    /// Grade 3–4.
    pub grade_3_4: f64,
}

/// One extra simulated column of the subjects file. Exactly one of `values`, `normal` or
/// `days_before_consent` says what it holds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimColumn {
    /// Column name (header of `subjects.csv`).
    pub name: String,
    /// Categories, drawn with `weights` (equal weights when empty).
    #[serde(default)]
    pub values: Vec<String>,
    /// Relative weights of `values`.
    #[serde(default)]
    pub weights: Vec<f64>,
    /// A number: normal, clamped to `[min, max]`, written with `decimals`.
    #[serde(default)]
    pub normal: Option<AgeModel>,
    /// Decimals of a `normal` column.
    #[serde(default)]
    pub decimals: u32,
    /// A date this many days before the consent date, uniform over `[min, max]`.
    #[serde(default)]
    pub days_before_consent: Option<DayRange>,
    /// Probability that the field is blank (the fact is absent, e.g. never happened).
    #[serde(default)]
    pub missing_rate: f64,
    /// Categorical columns: log hazard ratio of death per category (added to the model of
    /// `[simulation.survival]`); categories not listed add 0.
    #[serde(default)]
    pub log_hr: BTreeMap<String, f64>,
}

/// An inclusive range of whole days.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DayRange {
    /// Smallest number of days.
    pub min: u32,
    /// Largest number of days.
    pub max: u32,
}

/// Age in years: normal, truncated to `[min, max]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgeModel {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

/// One simulated site.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimSite {
    /// Site id.
    pub id: String,
    /// Relative share of subjects.
    #[serde(default = "one")]
    pub weight: u32,
    /// Field delimiter of its transfer file.
    #[serde(default = "comma")]
    pub delimiter: char,
    /// Whether it writes decimal commas.
    #[serde(default)]
    pub decimal_comma: bool,
    /// Units this site reports in instead of the standard unit, keyed by test code.
    #[serde(default)]
    pub units: BTreeMap<String, String>,
    /// Write CRLF line endings.
    #[serde(default)]
    pub crlf: bool,
    /// Start the file with a UTF-8 byte-order mark.
    #[serde(default)]
    pub bom: bool,
    /// Write Latin-1 (ISO-8859-1) instead of UTF-8.
    #[serde(default)]
    pub latin1: bool,
}

fn comma() -> char {
    ','
}

/// Event-time model.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SurvivalModel {
    /// Median survival in the control arm, months (exponential).
    pub control_median_months: f64,
    /// Hazard ratio experimental / control.
    pub hazard_ratio: f64,
    /// Log hazard ratio per SD of the latent disease severity.
    #[serde(default)]
    pub severity_log_hr: f64,
    /// Transplant rate per year (censors death for transplant-free survival).
    #[serde(default)]
    pub transplant_per_year: f64,
    /// Withdrawal rate per year (dropout: no more visits).
    #[serde(default)]
    pub withdrawal_per_year: f64,
    /// Write `events.csv` in the `tte` layout for this endpoint code instead of the `events`
    /// layout: the modelled event (the hazard above) or censoring, one row per subject.
    #[serde(default)]
    pub tte_endpoint: Option<String>,
}

/// Rates of the defects of real transfers, per row unless said otherwise.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Messiness {
    /// Exact duplicate rows.
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Same subject, test and date with a different value.
    #[serde(default)]
    pub conflict_rate: f64,
    /// Blank results.
    #[serde(default)]
    pub blank_rate: f64,
    /// `ND` (not done) results.
    #[serde(default)]
    pub not_done_rate: f64,
    /// Variant spellings of the unit (`umol/l`, `µmol/L`).
    #[serde(default)]
    pub unit_spelling_rate: f64,
    /// Units that are typos no registry knows.
    #[serde(default)]
    pub unit_typo_rate: f64,
    /// Scheduled visits done outside every window (per visit).
    #[serde(default)]
    pub out_of_window_rate: f64,
    /// Extra unscheduled visits (per subject and scheduled visit).
    #[serde(default)]
    pub unscheduled_rate: f64,
    /// Implausible values (e.g. a decimal point lost).
    #[serde(default)]
    pub implausible_rate: f64,
    /// Subjects whose row is missing from the subjects file (a count).
    #[serde(default)]
    pub missing_subjects: usize,
}

/// Model of one simulated test.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SimLab {
    /// Scale on which the model is normal.
    #[serde(default)]
    pub scale: SimScale,
    /// Mean at baseline on the model scale (for `log`, the log of the median).
    pub mean: f64,
    /// Total SD on the model scale.
    pub sd: f64,
    /// Within-subject correlation across visits (exchangeable).
    pub correlation: f64,
    /// Correlation of the subject effect with the latent severity (its square ≤ `correlation`).
    #[serde(default)]
    pub severity_loading: f64,
    /// Mean change from baseline in the control arm per post-baseline window, model scale.
    #[serde(default)]
    pub control_change: BTreeMap<String, f64>,
    /// True arm effect (experimental − control mean change) per window, model scale.
    #[serde(default)]
    pub effect: BTreeMap<String, f64>,
    /// Results below this are reported as `<lloq`.
    #[serde(default)]
    pub lloq: Option<f64>,
    /// Results above this are reported as `>uloq`.
    #[serde(default)]
    pub uloq: Option<f64>,
    /// Decimals written.
    #[serde(default)]
    pub decimals: u32,
    /// Values below this (standard unit) are written as 0, e.g. a daily insulin dose that
    /// stopped.
    #[serde(default)]
    pub zero_below: Option<f64>,
    /// Qualitative tests: categories from the lowest to the highest latent value; the model
    /// value (on its scale) falls between consecutive `cuts`.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Qualitative tests: increasing cut points of the model value, one fewer than `categories`.
    #[serde(default)]
    pub cuts: Vec<f64>,
}

/// Scale of a simulated test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimScale {
    /// Normal on the natural scale.
    #[default]
    Linear,
    /// Log-normal (normal on the natural log).
    Log,
}

// ---------------------------------------------------------------------------------------------
// Loading

impl LoadedPipeline {
    /// Read and parse a pipeline file. Syntax and type errors come back with key path and line.
    pub fn load(path: &Path) -> Result<LoadedPipeline, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(path, text)
    }

    /// Parse pipeline text that came from `path`.
    pub fn from_text(path: &Path, text: String) -> Result<LoadedPipeline, SpecError> {
        let pipeline = parse(path, &text).map_err(|p| SpecError::Invalid(vec![p]))?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(LoadedPipeline {
            path: path.to_path_buf(),
            base_dir,
            text,
            pipeline,
        })
    }

    /// Resolve a path written in the pipeline file (lexically normalized, so messages show
    /// `sample_data/x.csv` rather than `pipelines/../sample_data/x.csv`).
    pub fn resolve(&self, p: &str) -> PathBuf {
        let pb = PathBuf::from(p);
        if pb.is_absolute() {
            normalize(&pb)
        } else {
            normalize(&self.base_dir.join(pb))
        }
    }

    /// The output directory.
    pub fn output_dir(&self) -> PathBuf {
        match &self.pipeline.output.dir {
            Some(d) => self.resolve(d),
            None => PathBuf::from("out").join(&self.pipeline.study.id),
        }
    }

    /// A problem located at a key path of this file.
    pub fn problem(&self, key: &str, message: impl Into<String>) -> Problem {
        let (line, column) = match locate(&self.text, key) {
            Some(span) => {
                let (l, c) = line_col(&self.text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Problem {
            file: self.path.clone(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The files a lab, subjects or events path or glob matches, sorted.
    pub fn expand(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let full = self.resolve(pattern);
        let s = full.to_string_lossy().to_string();
        let paths = glob::glob(&s).map_err(|e| format!("bad glob `{pattern}`: {e}"))?;
        let mut out: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every input file named by the pipeline, in a stable order.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let p = &self.pipeline;
        let mut patterns = vec![p.inputs.subjects.path.clone()];
        patterns.extend(p.inputs.labs.iter().map(|l| l.path.clone()));
        if let Some(e) = &p.inputs.events {
            patterns.push(e.path.clone());
        }
        if let Some(a) = &p.inputs.assessments {
            patterns.push(a.path.clone());
        }
        let mut files = BTreeSet::new();
        for pat in patterns {
            if let Ok(v) = self.expand(&pat) {
                files.extend(v);
            }
        }
        files.into_iter().collect()
    }
}

/// Remove `.` and resolve `..` lexically (without touching the file system).
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

fn parse(path: &Path, text: &str) -> Result<Pipeline, Problem> {
    let root = toml::de::DeTable::parse(text).map_err(|e| toml_problem(path, text, "", &e))?;
    let de = toml::de::Deserializer::from(root);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = display_path(e.path());
        toml_problem(path, text, &key, e.inner())
    })
}

fn display_path(p: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in p.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn toml_problem(path: &Path, text: &str, key: &str, e: &toml::de::Error) -> Problem {
    let span = e.span().or_else(|| locate(text, key));
    let (line, column) = match span {
        Some(s) => {
            let (l, c) = line_col(text, s.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    Problem {
        file: path.to_path_buf(),
        line,
        column,
        key: key.to_string(),
        message: e.message().trim().replace('\n', " "),
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Byte span of the value at a dotted key path such as `labs[2].unit` (or of the key itself,
/// which is what a reader wants to see).
pub fn locate(text: &str, key: &str) -> Option<Range<usize>> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let segments = split_key(key)?;
    if segments.is_empty() {
        return None;
    }
    let mut table = root.get_ref();
    let mut current: Option<Range<usize>> = None;
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    for seg in segments {
        match seg {
            KeySeg::Name(name) => {
                let t = match value {
                    None => table,
                    Some(v) => v.as_table()?,
                };
                let (k, v) = t.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
                current = Some(if k.span().is_empty() {
                    v.span()
                } else {
                    k.span()
                });
                table = t;
                value = Some(v.get_ref());
            }
            KeySeg::Index(i) => {
                let arr = value?.as_array()?;
                let item = arr.get(i)?;
                current = Some(item.span());
                value = Some(item.get_ref());
            }
        }
    }
    current
}

enum KeySeg<'a> {
    Name(&'a str),
    Index(usize),
}

fn split_key(key: &str) -> Option<Vec<KeySeg<'_>>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(KeySeg::Name(name));
        }
        let mut rest = rest;
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            out.push(KeySeg::Index(stripped[..end].parse().ok()?));
            rest = &stripped[end + 1..];
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Semantic check

/// How `check` treats input files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCheck {
    /// Every input path or glob must match at least one file.
    RequireInputs,
    /// Do not look at the file system (used by `simulate`, which creates the inputs).
    Skip,
}

/// Check a loaded pipeline without touching data. Returns every problem found, located.
pub fn check(lp: &LoadedPipeline, files: FileCheck) -> Vec<Problem> {
    let p = &lp.pipeline;
    let mut out = Vec::new();
    let mut push = |key: String, msg: String| out.push(lp.problem(&key, msg));

    if p.study.id.trim().is_empty() {
        push("study.id".into(), "study id is empty".into());
    }
    if p.study.id.contains(['/', '\\']) {
        push(
            "study.id".into(),
            format!("study id `{}` may not contain a path separator", p.study.id),
        );
    }

    // Arms.
    if p.arms.is_empty() {
        push("arms".into(), "at least one arm is needed".into());
    }
    let mut seen = BTreeSet::new();
    for (i, a) in p.arms.iter().enumerate() {
        if !seen.insert(a.code.as_str()) {
            push(
                format!("arms[{i}].code"),
                format!("arm code `{}` is declared twice", a.code),
            );
        }
        if a.ratio == 0 {
            push(
                format!("arms[{i}].ratio"),
                "ratio must be at least 1".into(),
            );
        }
    }
    let controls: Vec<usize> = p
        .arms
        .iter()
        .enumerate()
        .filter(|(_, a)| a.role == ArmRole::Control)
        .map(|(i, _)| i)
        .collect();
    if controls.len() > 1 {
        push(
            format!("arms[{}].role", controls[1]),
            "only one arm can be the control".into(),
        );
    }
    if p.arms.len() > 1 && controls.is_empty() {
        push(
            "arms".into(),
            "a trial with several arms needs one arm with role = \"control\"".into(),
        );
    }

    // Visit windows.
    let w = &p.visits.windows;
    if w.is_empty() {
        push(
            "visits.windows".into(),
            "at least one window is needed".into(),
        );
    }
    let mut names = BTreeSet::new();
    for (i, win) in w.iter().enumerate() {
        if !names.insert(win.name.as_str()) {
            push(
                format!("visits.windows[{i}].name"),
                format!("window `{}` is declared twice", win.name),
            );
        }
        if win.low > win.high {
            push(
                format!("visits.windows[{i}].low"),
                format!(
                    "window `{}`: low {} is after high {}",
                    win.name, win.low, win.high
                ),
            );
        }
        if win.target < win.low || win.target > win.high {
            push(
                format!("visits.windows[{i}].target"),
                format!(
                    "window `{}`: target day {} is outside {}..{}",
                    win.name, win.target, win.low, win.high
                ),
            );
        }
        for (field, day) in [("low", win.low), ("high", win.high), ("target", win.target)] {
            if day == 0 {
                push(
                    format!("visits.windows[{i}].{field}"),
                    format!(
                        "window `{}`: study day 0 does not exist (CDISC: day 1 is the reference date, the day before is -1)",
                        win.name
                    ),
                );
            }
        }
    }
    for i in 0..w.len() {
        for j in (i + 1)..w.len() {
            if w[i].low <= w[j].high && w[j].low <= w[i].high {
                push(
                    format!("visits.windows[{j}]"),
                    format!(
                        "window `{}` ({}..{}) overlaps window `{}` ({}..{}); a record could fall in both",
                        w[j].name, w[j].low, w[j].high, w[i].name, w[i].low, w[i].high
                    ),
                );
            }
            if w[i].number == w[j].number {
                push(
                    format!("visits.windows[{j}].number"),
                    format!(
                        "window `{}` has the same number {} as `{}`",
                        w[j].name, w[j].number, w[i].name
                    ),
                );
            }
        }
    }
    if let Some(b) = &p.visits.baseline
        && !names.contains(b.as_str())
    {
        push(
            "visits.baseline".into(),
            format!("baseline window `{b}` is not one of the windows"),
        );
    }

    // Lab panel.
    let registry = Registry::builtin();
    let mut codes = BTreeSet::new();
    for (i, t) in p.labs.iter().enumerate() {
        if !codes.insert(t.code.as_str()) {
            push(
                format!("labs[{i}].code"),
                format!("test code `{}` is declared twice", t.code),
            );
        }
        if t.code.is_empty()
            || t.code.len() > 8
            || !t
                .code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            push(
                format!("labs[{i}].code"),
                format!(
                    "test code `{}` must be 1-8 upper-case letters or digits (CDISC LBTESTCD; reported codes are upper-cased)",
                    t.code
                ),
            );
        }
        let numeric = t.result == ResultKind::Numeric;
        let std_known = registry.canonical(&t.unit).is_some();
        if numeric && !std_known {
            push(
                format!("labs[{i}].unit"),
                format!(
                    "unit `{}` of {} is not in the unit registry (docs/units.md lists the known spellings)",
                    t.unit, t.code
                ),
            );
        }
        let reg = match t.registry() {
            Ok(r) => Some(r),
            Err(e) => {
                push(format!("labs[{i}].conversions"), e.to_string());
                None
            }
        };
        if let Some(reg) = reg.filter(|_| std_known && numeric) {
            for (j, u) in t.source_units.iter().enumerate() {
                if let Err(e) = reg.conversion(&t.code, u, &t.unit) {
                    push(
                        format!("labs[{i}].source_units[{j}]"),
                        format!(
                            "{e}; declare a conversion in labs[{i}].conversions or remove the unit"
                        ),
                    );
                }
            }
        }
        match (t.result, t.plausible) {
            (ResultKind::Numeric, None) => push(
                format!("labs[{i}]"),
                format!(
                    "numeric test {} needs plausible = {{ low = .., high = .. }}",
                    t.code
                ),
            ),
            (ResultKind::Numeric, Some(pl))
                if pl.low >= pl.high || pl.low.is_nan() || pl.high.is_nan() =>
            {
                push(
                    format!("labs[{i}].plausible"),
                    format!("plausible low {} must be below high {}", pl.low, pl.high),
                )
            }
            (ResultKind::Qualitative, Some(_)) => push(
                format!("labs[{i}].plausible"),
                format!(
                    "qualitative test {} has no plausible range; remove it",
                    t.code
                ),
            ),
            _ => {}
        }
        if let Some(n) = &t.normal {
            let overall = n.low.is_some() || n.high.is_some();
            let by_sex = n.male.is_some() || n.female.is_some();
            if overall && by_sex {
                push(
                    format!("labs[{i}].normal"),
                    "give either low/high or male/female ranges, not both".into(),
                );
            }
            if by_sex && (n.male.is_none() || n.female.is_none()) {
                push(
                    format!("labs[{i}].normal"),
                    "a normal range by sex needs both male and female".into(),
                );
            }
            let ranges: Vec<(Option<f64>, Option<f64>)> = vec![
                (n.low, n.high),
                n.male
                    .map(|l| (Some(l.low), Some(l.high)))
                    .unwrap_or((None, None)),
                n.female
                    .map(|l| (Some(l.low), Some(l.high)))
                    .unwrap_or((None, None)),
            ];
            for (lo, hi) in ranges {
                if let (Some(lo), Some(hi)) = (lo, hi)
                    && lo > hi
                {
                    push(
                        format!("labs[{i}].normal"),
                        format!("normal range low {lo} is above high {hi}"),
                    );
                }
            }
        }
    }

    // Inputs.
    let s = &p.inputs.subjects;
    if s.strata.len() > crate::derive::STRATA.len() {
        push(
            "inputs.subjects.strata".into(),
            format!(
                "at most {} stratification factors",
                crate::derive::STRATA.len()
            ),
        );
    }
    for (k, v) in &s.columns {
        if v.trim().is_empty() {
            push(
                format!("inputs.subjects.columns.{k}"),
                "column name is empty".into(),
            );
        }
    }
    if p.inputs.labs.is_empty() {
        push(
            "inputs.labs".into(),
            "at least one lab input is needed".into(),
        );
    }
    for (i, l) in p.inputs.labs.iter().enumerate() {
        if l.layout == LabLayout::Wide && l.tests.is_empty() {
            push(
                format!("inputs.labs[{i}].tests"),
                "a wide layout needs the list of test columns".into(),
            );
        }
        if l.layout != LabLayout::Wide && !l.tests.is_empty() {
            push(
                format!("inputs.labs[{i}].tests"),
                "test columns are only used by the wide layout".into(),
            );
        }
        for (j, t) in l.tests.iter().enumerate() {
            if !codes.contains(t.code.as_str()) {
                push(
                    format!("inputs.labs[{i}].tests[{j}].code"),
                    format!("test code `{}` is not in the lab panel", t.code),
                );
            } else if let Some(test) = p.labs.iter().find(|x| x.code == t.code)
                && let Err(e) = test
                    .registry_or_builtin()
                    .conversion(&t.code, &t.unit, &test.unit)
            {
                push(format!("inputs.labs[{i}].tests[{j}].unit"), e.to_string());
            }
        }
    }
    if files == FileCheck::RequireInputs {
        let mut check_path = |key: String, pattern: &str| match lp.expand(pattern) {
            Ok(v) if v.is_empty() => out.push(lp.problem(
                &key,
                format!(
                    "no file matches `{pattern}` (looked in {})",
                    lp.resolve(pattern).display()
                ),
            )),
            Ok(_) => {}
            Err(e) => out.push(lp.problem(&key, e)),
        };
        check_path("inputs.subjects.path".into(), &s.path);
        for (i, l) in p.inputs.labs.iter().enumerate() {
            check_path(format!("inputs.labs[{i}].path"), &l.path);
        }
        if let Some(e) = &p.inputs.events {
            check_path("inputs.events.path".into(), &e.path);
        }
        if let Some(a) = &p.inputs.assessments {
            check_path("inputs.assessments.path".into(), &a.path);
        }
    }
    if let Some(a) = &p.inputs.assessments {
        check_assessments(lp, a, &mut out);
    }
    let mut push = |key: String, msg: String| out.push(lp.problem(&key, msg));

    // Analyses.
    let mut ids = BTreeSet::new();
    for (i, a) in p.analyses.iter().enumerate() {
        if !ids.insert(a.id.as_str()) {
            push(
                format!("analyses[{i}].id"),
                format!("analysis id `{}` is used twice", a.id),
            );
        }
        let responses: BTreeSet<&str> = p.responses.iter().map(|r| r.id.as_str()).collect();
        for (j, c) in a.params.iter().enumerate() {
            let known = if a.method == Method::Responders {
                responses.contains(c.as_str())
            } else {
                codes.contains(c.as_str())
                    || (p.derive.scores.contains(c) && crate::scores::SCORES.contains(&c.as_str()))
            };
            if !known {
                let (what, list) = if a.method == Method::Responders {
                    ("response id", responses.iter().copied().collect::<Vec<_>>())
                } else {
                    (
                        "test code",
                        codes
                            .iter()
                            .copied()
                            .chain(
                                p.derive
                                    .scores
                                    .iter()
                                    .map(String::as_str)
                                    .filter(|s| crate::scores::SCORES.contains(s)),
                            )
                            .collect::<Vec<_>>(),
                    )
                };
                push(
                    format!("analyses[{i}].params[{j}]"),
                    format!("unknown {what} `{c}` (known: {})", list.join(", ")),
                );
            }
        }
        for (j, v) in a.visits.iter().enumerate() {
            if !names.contains(v.as_str()) {
                push(
                    format!("analyses[{i}].visits[{j}]"),
                    format!("visit `{v}` is not one of the windows"),
                );
            }
        }
        if let Some(c) = a.conf_level
            && !(c > 0.0 && c < 1.0)
        {
            push(
                format!("analyses[{i}].conf_level"),
                format!("confidence level {c} must be between 0 and 1"),
            );
        }
    }
    for (i, a) in p.analyses.iter().enumerate() {
        if a.mmrm.covariance.is_empty() {
            push(
                format!("analyses[{i}].mmrm.covariance"),
                "give at least one covariance structure".to_string(),
            );
        }
        if a.mmrm.df == DfName::KenwardRoger && a.mmrm.estimation == EstimationName::Ml {
            push(
                format!("analyses[{i}].mmrm.df"),
                "Kenward-Roger degrees of freedom need REML estimation".to_string(),
            );
        }
        if a.mmrm.locf_sensitivity && p.derive.missing_visits != MissingVisitPolicy::Locf {
            push(
                format!("analyses[{i}].mmrm.locf_sensitivity"),
                "needs [derive] missing_visits = \"locf\"".to_string(),
            );
        }
        check_analysis_options(p, i, a, &mut push);
        if a.ancova.stratified && p.inputs.subjects.strata.is_empty() {
            push(
                format!("analyses[{i}].ancova.stratified"),
                "needs inputs.subjects.strata (the first factor is the stratum)".to_string(),
            );
        }
    }
    if let Some(t) = p.validation.max_error_percent
        && !(0.0..=100.0).contains(&t)
    {
        push(
            "validation.max_error_percent".into(),
            format!("{t} is not a percentage between 0 and 100"),
        );
    }

    for (j, s) in p.derive.scores.iter().enumerate() {
        let key = format!("derive.scores[{j}]");
        let Some(needs) = crate::scores::needs(s) else {
            out.push(lp.problem(
                &key,
                format!(
                    "unknown score `{s}`; known: {}",
                    crate::scores::SCORES.join(", ")
                ),
            ));
            continue;
        };
        for n in needs.iter().filter(|n| !codes.contains(**n)) {
            out.push(lp.problem(&key, format!("score {s} needs test {n} in the lab panel")));
        }
        if s == "HYSLAW" && !codes.contains("ALT") && !codes.contains("AST") {
            out.push(lp.problem(
                &key,
                "score HYSLAW needs test ALT or AST in the lab panel".to_string(),
            ));
        }
        if s == "HYSLAW"
            && p.derive.hyslaw_alp == crate::scores::HysLawAlp::Below2Uln
            && !codes.contains("ALP")
        {
            out.push(lp.problem(
                "derive.hyslaw_alp",
                "below_2uln needs test ALP in the lab panel".to_string(),
            ));
        }
        if matches!(s.as_str(), "CPS" | "CPSCL") && p.inputs.assessments.is_none() {
            out.push(lp.problem(
                &key,
                format!("score {s} needs ascites and encephalopathy grades ([inputs.assessments])"),
            ));
        }
    }
    out.extend(crate::validate::check_settings(lp));
    check_criteria(lp, &codes, &mut out);
    for (i, field, msg) in crate::response::check(&p.responses, &codes) {
        out.push(lp.problem(&format!("responses[{i}].{field}"), msg));
    }

    // Simulation.
    if let Some(sim) = &p.simulation {
        check_simulation(lp, sim, &codes, &names, &mut out);
    }
    out
}

/// Contract column names known, grade spellings not empty and not given to two grades.
fn check_assessments(lp: &LoadedPipeline, a: &AssessmentsInput, out: &mut Vec<Problem>) {
    for k in a.columns.keys() {
        if !ASSESSMENT_COLUMNS.contains(&k.as_str()) {
            out.push(lp.problem(
                &format!("inputs.assessments.columns.{k}"),
                format!(
                    "unknown column `{k}`; known: {}",
                    ASSESSMENT_COLUMNS.join(", ")
                ),
            ));
        }
    }
    type Grades<'a> = [(&'a str, &'a Vec<String>); 3];
    let groups: [(&str, Grades); 2] = [
        (
            "ascites",
            [
                ("none", &a.ascites.none),
                ("slight", &a.ascites.slight),
                ("moderate_severe", &a.ascites.moderate_severe),
            ],
        ),
        (
            "encephalopathy",
            [
                ("none", &a.encephalopathy.none),
                ("grade_1_2", &a.encephalopathy.grade_1_2),
                ("grade_3_4", &a.encephalopathy.grade_3_4),
            ],
        ),
    ];
    for (what, grades) in groups {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (grade, values) in grades {
            let key = format!("inputs.assessments.{what}.{grade}");
            if values.iter().all(|v| v.trim().is_empty()) {
                out.push(lp.problem(&key, "give at least one spelling".to_string()));
            }
            for v in values {
                let norm = v.trim().to_lowercase();
                if let Some(other) = seen.insert(norm.clone(), grade)
                    && other != grade
                {
                    out.push(lp.problem(
                        &key,
                        format!("`{v}` is also a spelling of {what} grade {other}"),
                    ));
                }
            }
        }
    }
}

fn check_criteria(lp: &LoadedPipeline, codes: &BTreeSet<&str>, out: &mut Vec<Problem>) {
    let mut ids = BTreeSet::new();
    for (i, c) in lp.pipeline.eligibility.iter().enumerate() {
        if !ids.insert(c.id.as_str()) {
            out.push(lp.problem(
                &format!("eligibility[{i}].id"),
                format!("criterion id `{}` is used twice", c.id),
            ));
        }
        let key = format!("eligibility[{i}].when");
        match crate::criteria::parse(&c.when) {
            Err(e) => out.push(lp.problem(&key, format!("`{}`: {e}", c.when))),
            Ok(expr) => {
                let (mut vars, mut calls) = (Vec::new(), Vec::new());
                expr.names(&mut vars, &mut calls);
                for (f, args) in calls {
                    if !CRITERIA_FUNCTIONS.iter().any(|(n, _)| *n == f) {
                        out.push(lp.problem(
                            &key,
                            format!(
                                    "unknown function `{f}`; known: {}",
                                    CRITERIA_FUNCTIONS
                                        .iter()
                                        .map(|(n, _)| *n)
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                        ));
                    } else if matches!(f.as_str(), "baseline" | "uln" | "lln") {
                        for a in args.iter().filter(|a| !codes.contains(a.as_str())) {
                            out.push(lp.problem(
                                &key,
                                format!("{f}({a}): `{a}` is not a test code of the lab panel"),
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// `[analyses.responders] benchmark` and `[analyses.survival] by` hold usable values.
fn check_analysis_options(
    p: &Pipeline,
    i: usize,
    a: &Analysis,
    push: &mut impl FnMut(String, String),
) {
    if let Some(b) = a.responders.benchmark
        && !(b > 0.0 && b < 1.0)
    {
        push(
            format!("analyses[{i}].responders.benchmark"),
            format!("benchmark rate {b} must be between 0 and 1"),
        );
    }
    if let Some(by) = &a.survival.by
        && !p.inputs.subjects.strata.contains(by)
    {
        push(
            format!("analyses[{i}].survival.by"),
            format!(
                "`{by}` is not one of inputs.subjects.strata ({})",
                p.inputs.subjects.strata.join(", ")
            ),
        );
    }
}

fn check_simulation(
    lp: &LoadedPipeline,
    sim: &Simulation,
    codes: &BTreeSet<&str>,
    windows: &BTreeSet<&str>,
    out: &mut Vec<Problem>,
) {
    let p = &lp.pipeline;
    let mut push = |key: String, msg: String| out.push(lp.problem(&key, msg));
    if chrono::NaiveDate::parse_from_str(&sim.start_date, "%Y-%m-%d").is_err() {
        push(
            "simulation.start_date".into(),
            format!("`{}` is not an ISO 8601 date (YYYY-MM-DD)", sim.start_date),
        );
    }
    if sim.sites.is_empty() {
        push(
            "simulation.sites".into(),
            "at least one site is needed".into(),
        );
    }
    if !(0.0..=1.0).contains(&sim.male_fraction) {
        push(
            "simulation.male_fraction".into(),
            "must be between 0 and 1".into(),
        );
    }
    if sim.age.min > sim.age.max || sim.age.sd < 0.0 {
        push("simulation.age".into(), "need min ≤ max and sd ≥ 0".into());
    }
    let sv = &sim.survival;
    if let Some(ep) = &sv.tte_endpoint
        && (ep.is_empty()
            || ep.len() > 8
            || !ep
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
    {
        push(
            "simulation.survival.tte_endpoint".into(),
            format!("endpoint `{ep}` must be 1-8 upper-case letters or digits (PARAMCD)"),
        );
    }
    if sv.control_median_months <= 0.0 || sv.hazard_ratio <= 0.0 {
        push(
            "simulation.survival".into(),
            "control_median_months and hazard_ratio must be positive".into(),
        );
    }
    let m = &sim.messiness;
    for (name, r) in [
        ("duplicate_rate", m.duplicate_rate),
        ("conflict_rate", m.conflict_rate),
        ("blank_rate", m.blank_rate),
        ("not_done_rate", m.not_done_rate),
        ("unit_spelling_rate", m.unit_spelling_rate),
        ("unit_typo_rate", m.unit_typo_rate),
        ("out_of_window_rate", m.out_of_window_rate),
        ("unscheduled_rate", m.unscheduled_rate),
        ("implausible_rate", m.implausible_rate),
    ] {
        if !(0.0..=1.0).contains(&r) {
            push(
                format!("simulation.messiness.{name}"),
                format!("rate {r} must be between 0 and 1"),
            );
        }
    }
    if let Some(a) = &sim.assessments {
        for (key, p1, p2) in [
            (
                "simulation.assessments.ascites",
                a.ascites.slight,
                a.ascites.moderate_severe,
            ),
            (
                "simulation.assessments.encephalopathy",
                a.encephalopathy.grade_1_2,
                a.encephalopathy.grade_3_4,
            ),
        ] {
            if !(p1 >= 0.0 && p2 >= 0.0 && p1 + p2 < 1.0) {
                push(
                    key.into(),
                    format!("probabilities {p1} and {p2} must be ≥ 0 with a sum below 1"),
                );
            }
        }
        if !(-1.0..=1.0).contains(&a.severity_loading) {
            push(
                "simulation.assessments.severity_loading".into(),
                format!("{} must be between -1 and 1", a.severity_loading),
            );
        }
    }
    for (i, site) in sim.sites.iter().enumerate() {
        if site.decimal_comma && site.delimiter == ',' {
            push(
                format!("simulation.sites[{i}].decimal_comma"),
                "a site writing decimal commas needs another delimiter (e.g. ';')".into(),
            );
        }
        for (code, unit) in &site.units {
            match p.labs.iter().find(|t| &t.code == code) {
                None => push(
                    format!("simulation.sites[{i}].units.{code}"),
                    format!("test code `{code}` is not in the lab panel"),
                ),
                Some(t) => {
                    if let Err(e) = t.registry_or_builtin().conversion(code, unit, &t.unit) {
                        push(format!("simulation.sites[{i}].units.{code}"), e.to_string());
                    }
                }
            }
        }
    }
    for (code, l) in &sim.labs {
        let key = format!("simulation.labs.{code}");
        if !codes.contains(code.as_str()) {
            push(
                key.clone(),
                format!("test code `{code}` is not in the lab panel"),
            );
        }
        if !(0.0..1.0).contains(&l.correlation) {
            push(
                format!("{key}.correlation"),
                "within-subject correlation must be in [0, 1)".into(),
            );
        }
        if l.severity_loading * l.severity_loading > l.correlation {
            push(
                format!("{key}.severity_loading"),
                format!(
                    "severity_loading² ({}) cannot exceed the within-subject correlation ({})",
                    l.severity_loading * l.severity_loading,
                    l.correlation
                ),
            );
        }
        if l.sd <= 0.0 {
            push(format!("{key}.sd"), "sd must be positive".into());
        }
        for (field, map) in [("effect", &l.effect), ("control_change", &l.control_change)] {
            for v in map.keys() {
                if !windows.contains(v.as_str()) {
                    push(
                        format!("{key}.{field}"),
                        format!("visit `{v}` is not one of the windows"),
                    );
                }
            }
        }
        let qualitative = p
            .labs
            .iter()
            .find(|t| &t.code == code)
            .is_some_and(|t| t.result == ResultKind::Qualitative);
        if qualitative {
            if l.categories.is_empty() || l.cuts.len() + 1 != l.categories.len() {
                push(
                    format!("{key}.categories"),
                    format!(
                        "qualitative test {code} needs `categories` and one fewer `cuts` ({} categories, {} cuts)",
                        l.categories.len(),
                        l.cuts.len()
                    ),
                );
            }
            if l.cuts
                .windows(2)
                .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
            {
                push(format!("{key}.cuts"), "cuts must increase".into());
            }
        } else if !l.categories.is_empty() || !l.cuts.is_empty() {
            push(
                format!("{key}.categories"),
                format!(
                    "{code} is a numeric test; `categories` and `cuts` are for qualitative tests"
                ),
            );
        }
    }
    let reserved = [
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
    ];
    let mut names = BTreeSet::new();
    for (i, c) in sim.subject_columns.iter().enumerate() {
        let key = format!("simulation.subject_columns[{i}]");
        if c.name.trim().is_empty() || reserved.contains(&c.name.as_str()) {
            push(
                format!("{key}.name"),
                format!(
                    "`{}` is empty or a column the simulator already writes",
                    c.name
                ),
            );
        }
        if !names.insert(c.name.as_str()) {
            push(
                format!("{key}.name"),
                format!("column `{}` is declared twice", c.name),
            );
        }
        let kinds = usize::from(!c.values.is_empty())
            + usize::from(c.normal.is_some())
            + usize::from(c.days_before_consent.is_some());
        if kinds != 1 {
            push(
                key.clone(),
                "give exactly one of `values`, `normal`, `days_before_consent`".into(),
            );
        }
        if !c.weights.is_empty()
            && (c.weights.len() != c.values.len()
                || c.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
                || c.weights.iter().sum::<f64>() <= 0.0)
        {
            push(
                format!("{key}.weights"),
                "one non-negative weight per value, not all zero".into(),
            );
        }
        if let Some(n) = &c.normal
            && (n.min > n.max || n.sd < 0.0)
        {
            push(format!("{key}.normal"), "need min ≤ max and sd ≥ 0".into());
        }
        if let Some(d) = c.days_before_consent
            && d.min > d.max
        {
            push(
                format!("{key}.days_before_consent"),
                "need min ≤ max".into(),
            );
        }
        if !(0.0..=1.0).contains(&c.missing_rate) {
            push(
                format!("{key}.missing_rate"),
                "rate must be between 0 and 1".into(),
            );
        }
        for v in c.log_hr.keys() {
            if !c.values.contains(v) {
                push(
                    format!("{key}.log_hr"),
                    format!("`{v}` is not one of the column's `values`"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 8), (2, 3));
    }

    #[test]
    fn locate_finds_nested_keys() {
        let t = "[study]\nid = 'X'\n\n[[labs]]\ncode = 'A'\n[[labs]]\ncode = 'B'\nunit = 'g/L'\n";
        let span = locate(t, "labs[1].unit").unwrap();
        assert_eq!(line_col(t, span.start).0, 8);
        let span = locate(t, "study.id").unwrap();
        assert_eq!(line_col(t, span.start).0, 2);
        assert!(locate(t, "labs[5].unit").is_none());
    }

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(
            normalize(Path::new("pipelines/../sample_data/x.csv")),
            PathBuf::from("sample_data/x.csv")
        );
        assert_eq!(normalize(Path::new("./a/./b")), PathBuf::from("a/b"));
        assert_eq!(normalize(Path::new("../a")), PathBuf::from("../a"));
        assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
    }

    #[test]
    fn normal_range_by_sex() {
        let n = NormalRange {
            low: None,
            high: None,
            male: Some(Limits {
                low: 1.0,
                high: 2.0,
            }),
            female: Some(Limits {
                low: 3.0,
                high: 4.0,
            }),
        };
        assert_eq!(n.for_sex(Some("F")), (Some(3.0), Some(4.0)));
        assert_eq!(n.for_sex(Some("M")), (Some(1.0), Some(2.0)));
        assert_eq!(n.for_sex(None), (None, None));
    }
}
