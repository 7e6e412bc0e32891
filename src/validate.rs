//! Validate: apply the rules to what ingest read, producing findings, a quarantine and a row
//! account in which nothing is lost.
//!
//! Every rule has an id, a default severity (error, warning, note), an action (quarantine the
//! row or flag it and keep it) and a plain message. A pipeline can turn a rule off or change its
//! severity (`[validation.rules.<id>]`) and set the threshold that fails the run
//! (`validation.max_error_percent`). The rules are listed in [`RULES`] and documented in
//! `docs/validation.md`.
//!
//! Row accounting: for every input file, rows read = rows accepted + rows quarantined.
//! Validate never changes a value; it only decides and explains.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;
use ustr::Ustr;

use serde::Serialize;

use crate::group::Groups;
use crate::ingest::{IngestOutput, LabRecord, ParseStatus, ParsedResult};
use crate::spec::{LoadedPipeline, Problem, Severity};
use crate::store::{Column, ColumnData, Table};
use crate::windows::{self, Candidate};

/// What a rule does to the row it fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The row goes to quarantine and is not analysed.
    Quarantine,
    /// The row is kept and flagged.
    Flag,
}

/// A validation rule.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rule {
    /// Stable id, used in pipeline files and outputs.
    pub id: &'static str,
    /// Which records it looks at: `labs`, `subjects`, `events` or `assessments`.
    pub domain: &'static str,
    /// Severity unless the pipeline overrides it.
    pub severity: Severity,
    /// Quarantine or flag.
    pub action: Action,
    /// What it checks, for the documentation.
    pub description: &'static str,
}

const fn rule(
    id: &'static str,
    domain: &'static str,
    severity: Severity,
    action: Action,
    description: &'static str,
) -> Rule {
    Rule {
        id,
        domain,
        severity,
        action,
        description,
    }
}

use Action::{Flag, Quarantine};
use Severity::{Error, Note, Warning};

/// Every rule, in the order they are documented.
pub const RULES: &[Rule] = &[
    rule(
        "field_count",
        "labs",
        Error,
        Quarantine,
        "The row has a different number of fields than the header.",
    ),
    rule(
        "unknown_test",
        "labs",
        Error,
        Quarantine,
        "The test code is not in the pipeline's lab panel.",
    ),
    rule(
        "unknown_unit",
        "labs",
        Error,
        Quarantine,
        "The unit spelling is not in the unit registry.",
    ),
    rule(
        "no_unit_path",
        "labs",
        Error,
        Quarantine,
        "The unit is known but has no conversion path to the test's standard unit.",
    ),
    rule(
        "unexpected_unit",
        "labs",
        Warning,
        Flag,
        "The unit converts to the standard unit but is not one of the test's declared `source_units`.",
    ),
    rule(
        "non_numeric",
        "labs",
        Error,
        Quarantine,
        "A text result for a numeric test (e.g. `positive`, `12.3.4`).",
    ),
    rule(
        "unexpected_value",
        "labs",
        Error,
        Quarantine,
        "A qualitative result outside the test's declared `values`.",
    ),
    rule(
        "bad_date",
        "labs",
        Error,
        Quarantine,
        "The collection date is missing or not a date in the declared format.",
    ),
    rule(
        "unknown_subject",
        "labs",
        Error,
        Quarantine,
        "Lab row for a subject who is not in the subjects file.",
    ),
    rule(
        "implausible",
        "labs",
        Error,
        Quarantine,
        "The value in the standard unit is outside the test's plausibility limits: impossible, not abnormal.",
    ),
    rule(
        "duplicate_conflict",
        "labs",
        Error,
        Quarantine,
        "Same subject, test and collection date with different results: every row of the set is quarantined.",
    ),
    rule(
        "duplicate_exact",
        "labs",
        Warning,
        Quarantine,
        "An exact copy of an earlier row (same subject, visit, date, test, result, unit): the first is kept.",
    ),
    rule(
        "before_consent",
        "labs",
        Error,
        Quarantine,
        "Collected before the subject's informed consent date.",
    ),
    rule(
        "after_death",
        "labs",
        Error,
        Quarantine,
        "Collected after the subject's death date.",
    ),
    rule(
        "out_of_window",
        "labs",
        Warning,
        Flag,
        "The study day falls in no visit window: kept as unscheduled, not analysed by visit.",
    ),
    rule(
        "no_study_day",
        "labs",
        Warning,
        Flag,
        "No study day (the subject has no reference date): cannot be placed in a window.",
    ),
    rule(
        "multiple_in_window",
        "labs",
        Note,
        Flag,
        "Another record of the same subject and test in the same window was selected by the window rule; this one is kept but not analysed by visit.",
    ),
    rule(
        "abnormal",
        "labs",
        Note,
        Flag,
        "Outside the normal range (flagged, kept).",
    ),
    rule(
        "blank_result",
        "labs",
        Note,
        Flag,
        "The result is blank: kept as a missing value.",
    ),
    rule(
        "not_done",
        "labs",
        Note,
        Flag,
        "The result says not done (`ND`): kept as a missing value.",
    ),
    rule(
        "censored",
        "labs",
        Note,
        Flag,
        "A censored result (`<x`, `>x`): kept with its operator and limit; its analysis value follows `ingest.censored`.",
    ),
    rule(
        "subject_duplicate",
        "subjects",
        Error,
        Quarantine,
        "The subject id appears more than once in the subjects file: later rows are quarantined.",
    ),
    rule(
        "subject_no_arm",
        "subjects",
        Warning,
        Flag,
        "The subject has no arm: cannot be compared by arm.",
    ),
    rule(
        "subject_unknown_arm",
        "subjects",
        Error,
        Flag,
        "The subject's arm code is not one of the pipeline's arms.",
    ),
    rule(
        "subject_bad_field",
        "subjects",
        Error,
        Flag,
        "A date or number in the subjects file does not parse.",
    ),
    rule(
        "ineligible",
        "subjects",
        Warning,
        Flag,
        "The subject violates an inclusion or exclusion criterion of `[[eligibility]]`.",
    ),
    rule(
        "eligibility_unknown",
        "subjects",
        Note,
        Flag,
        "The data cannot show whether the subject meets every criterion (a value is missing).",
    ),
    rule(
        "criterion_error",
        "subjects",
        Error,
        Flag,
        "A criterion cannot be evaluated for the subject (e.g. it names a column the subjects file lacks).",
    ),
    rule(
        "assessment_value",
        "assessments",
        Error,
        Quarantine,
        "An assessments row with a grade that is not one of the declared spellings, a date that does not parse, or no subject id: the row is not used (no Child-Pugh score from it). Turned off, the finding goes but the row is still quarantined: it cannot be read.",
    ),
    rule(
        "assessment_conflict",
        "assessments",
        Error,
        Quarantine,
        "Rows of the assessments input for one subject and date with different grades: all of them are quarantined (rows that agree count as one). Turned off, the finding goes but the rows are still quarantined.",
    ),
    rule(
        "assessment_unknown_subject",
        "assessments",
        Error,
        Quarantine,
        "An assessments row of a subject who is not in the subjects file: the row is not used (rows of one subject and date that agree count as one). Turned off, the finding goes but the row is still quarantined.",
    ),
    rule(
        "event_unknown_subject",
        "events",
        Error,
        Quarantine,
        "Event for a subject who is not in the subjects file.",
    ),
    rule(
        "event_bad_date",
        "events",
        Error,
        Quarantine,
        "The event date (or, for time-to-event columns, the time or status) is missing or invalid.",
    ),
    rule(
        "event_unknown_type",
        "events",
        Error,
        Quarantine,
        "The event is not one of DEATH, TRANSPLANT, LAST_CONTACT, WITHDRAWAL.",
    ),
];

/// The rule with this id.
pub fn rule_by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Problems with the pipeline's `[validation]` section (unknown rule ids).
pub fn check_settings(lp: &LoadedPipeline) -> Vec<Problem> {
    lp.pipeline
        .validation
        .rules
        .keys()
        .filter(|id| rule_by_id(id).is_none())
        .map(|id| {
            lp.problem(
                &format!("validation.rules.{id}"),
                format!(
                    "unknown rule `{id}`; known rules: {}",
                    RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
                ),
            )
        })
        .collect()
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Rule id.
    pub rule: &'static str,
    /// Effective severity.
    pub severity: Severity,
    /// Subject id, when the finding is about one.
    pub subject_id: Option<Ustr>,
    /// Test code, for lab findings.
    pub test_code: Option<Ustr>,
    /// Visit as reported, for lab findings.
    pub visit: Option<Ustr>,
    /// Source file.
    pub file: Ustr,
    /// Source line.
    pub line: u64,
    /// The offending value as read.
    pub value: Option<Ustr>,
    /// Plain message.
    pub message: Message,
}

/// A finding's plain message. Most are written out when the finding is made; an `abnormal`
/// finding, which most rows of a trial in sick patients get, keeps its parts (interned) and is
/// written out only where it is shown or stored, so a million of them cost no string each while
/// validation runs. Either way the text is the same: see [`std::fmt::Display`].
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// The message.
    Text(String),
    /// "`test` `value` `unit` is outside the normal range `low`..`high`".
    Abnormal {
        /// Test code.
        test: Ustr,
        /// The value in the standard unit, as messages show numbers.
        value: Ustr,
        /// The standard unit.
        unit: Ustr,
        /// Lower limit (blank when there is none).
        low: Ustr,
        /// Upper limit (blank when there is none).
        high: Ustr,
    },
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Text(t) => f.write_str(t),
            Message::Abnormal {
                test,
                value,
                unit,
                low,
                high,
            } => write!(
                f,
                "{test} {value} {unit} is outside the normal range {low}..{high}"
            ),
        }
    }
}

impl From<String> for Message {
    fn from(t: String) -> Message {
        Message::Text(t)
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What happened to one input row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Disposition {
    /// Rule ids that quarantined it (empty: accepted).
    pub quarantine: Vec<&'static str>,
    /// Rules that flagged it.
    pub flags: RuleSet,
    /// Whether any of its findings has error severity.
    pub errors: bool,
}

impl Disposition {
    /// Whether the row is accepted.
    pub fn accepted(&self) -> bool {
        self.quarantine.is_empty()
    }
}

/// A set of rules, one bit per entry of [`RULES`] (a lab row is flagged by at most a few, and a
/// `Vec` per row would cost an allocation for every abnormal value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RuleSet(u64);

impl RuleSet {
    /// Add the rule at this index of [`RULES`].
    fn insert(&mut self, index: usize) {
        self.0 |= 1 << index;
    }

    /// The rule ids in the set, in the order of [`RULES`].
    pub fn ids(self) -> impl Iterator<Item = &'static str> {
        RULES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, r)| r.id)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

const _: () = assert!(RULES.len() <= 64, "RuleSet holds at most 64 rules");

/// Lab row placement in the visit schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Placement {
    /// Index of the window the study day falls in (`u32`: one of these per lab row).
    pub window: Option<u32>,
    /// Whether the window rule selected this record for its subject, test and window.
    pub selected: bool,
}

/// Rows read, accepted and quarantined for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileAccounting {
    /// The file.
    pub file: String,
    /// `subjects`, `labs` or `events`.
    pub kind: &'static str,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows accepted.
    pub rows_accepted: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
}

/// Overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No finding at warning level or above.
    Clean,
    /// Warnings, or errors below the threshold.
    Warnings,
    /// Rows with error findings exceed `validation.max_error_percent`.
    ErrorsOverThreshold,
}

/// Counts for `validation/summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Findings per rule id.
    pub findings_by_rule: BTreeMap<&'static str, u64>,
    /// Findings per severity.
    pub findings_by_severity: BTreeMap<String, u64>,
    /// Lab rows read.
    pub lab_rows_read: u64,
    /// Lab rows with at least one error-level finding.
    pub lab_rows_with_errors: u64,
    /// Their percentage of lab rows read.
    pub error_percent: f64,
    /// The threshold in force (None: errors never fail the run).
    pub max_error_percent: Option<f64>,
    /// Per-file accounting.
    pub files: Vec<FileAccounting>,
    /// Verdict.
    pub verdict: Verdict,
}

/// Everything validate decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationOutput {
    /// Findings, by file, line and rule id ([`order_findings`]; in the order the rules made
    /// them when from [`validate_unordered`]).
    pub findings: Vec<Finding>,
    /// One disposition per `IngestOutput::labs` row.
    pub labs: Vec<Disposition>,
    /// Window placement per lab row.
    pub placement: Vec<Placement>,
    /// One disposition per subjects row.
    pub subjects: Vec<Disposition>,
    /// One disposition per events row.
    pub events: Vec<Disposition>,
    /// One disposition per time-to-event record (`tte` layout).
    pub tte: Vec<Disposition>,
    /// One disposition per unusable assessments row (`IngestOutput::assessments.problems`); each
    /// is quarantined.
    pub assessments: Vec<Disposition>,
    /// Eligibility verdict per accepted subject (empty without criteria).
    pub eligibility: Vec<crate::eligibility::SubjectEligibility>,
    /// Every criterion for every subject.
    pub criteria: Vec<crate::eligibility::CriterionResult>,
    /// Counts and verdict.
    pub summary: Summary,
}

struct Ctx {
    /// Per rule id: its index in [`RULES`] and its effective severity (None: turned off).
    rules: FxHashMap<&'static str, (usize, Option<Severity>)>,
    findings: Vec<Finding>,
    /// Numbers already formatted for messages, by their bits.
    numbers: FxHashMap<u64, Ustr>,
    /// The rule looked up last, with what [`Ctx::rules`] holds for it.
    last_rule: Option<(&'static str, (usize, Option<Severity>))>,
}

impl Ctx {
    fn new(lp: &LoadedPipeline) -> Ctx {
        let rules = RULES
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let sev = match lp.pipeline.validation.rules.get(r.id) {
                    Some(o) if o.enabled == Some(false) => None,
                    Some(o) => Some(o.severity.unwrap_or(r.severity)),
                    None => Some(r.severity),
                };
                (r.id, (i, sev))
            })
            .collect();
        Ctx {
            rules,
            findings: Vec::new(),
            numbers: FxHashMap::default(),
            last_rule: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        disp: &mut Disposition,
        id: &'static str,
        subject: Option<&str>,
        test: Option<&str>,
        visit: Option<&str>,
        lineage: &crate::ingest::Lineage,
        value: Option<&str>,
        message: String,
    ) -> Option<Severity> {
        let message = Message::Text(message);
        let sym = |v: Option<&str>| v.map(Ustr::from);
        let keys = [sym(subject), sym(test), sym(visit)];
        self.fire_sym(disp, id, keys, lineage, sym(value), message)
    }

    /// [`Ctx::fire`] for values already interned (subject, test and visit, then the value): the
    /// path of the lab rows, which can fire a million times.
    fn fire_sym(
        &mut self,
        disp: &mut Disposition,
        id: &'static str,
        [subject, test, visit]: [Option<Ustr>; 3],
        lineage: &crate::ingest::Lineage,
        value: Option<Ustr>,
        message: Message,
    ) -> Option<Severity> {
        // Every id used in this module is in RULES: a missing one is a bug, not a data problem.
        // The rule of the finding before is mostly the same one (a million `abnormal`).
        let (index, sev) = match self.last_rule {
            Some((last, found)) if std::ptr::eq(last, id) => found,
            _ => {
                let found = *self.rules.get(id).expect("rule id in RULES");
                self.last_rule = Some((id, found));
                found
            }
        };
        let sev = sev?;
        if sev == Error {
            disp.errors = true;
        }
        match RULES[index].action {
            Quarantine => disp.quarantine.push(id),
            Flag => disp.flags.insert(index),
        }
        self.findings.push(Finding {
            rule: id,
            severity: sev,
            subject_id: subject,
            test_code: test,
            visit,
            file: lineage.file,
            line: lineage.line,
            value,
            message,
        });
        Some(sev)
    }

    /// [`Ctx::fire_sym`] for a lab record: its subject, test, visit and source.
    fn fire_lab(
        &mut self,
        disp: &mut Disposition,
        id: &'static str,
        r: &crate::ingest::LabRecord,
        value: Option<Ustr>,
        message: Message,
    ) {
        let keys = [Some(r.subject_id), Some(r.test_code), Some(r.visit)];
        self.fire_sym(disp, id, keys, &r.lineage, value, message);
    }

    /// A number as messages show it ([`fmt_num`]), formatted once per distinct value.
    fn num(&mut self, v: f64) -> Ustr {
        *self
            .numbers
            .entry(v.to_bits())
            .or_insert_with(|| Ustr::from(&fmt_num(v)))
    }
}

const EVENT_TYPES: &[&str] = &["DEATH", "TRANSPLANT", "LAST_CONTACT", "WITHDRAWAL"];

/// Apply every enabled rule. The findings are in order (by file, line and rule id).
pub fn validate(lp: &LoadedPipeline, data: &IngestOutput) -> ValidationOutput {
    let mut v = validate_unordered(lp, data);
    order_findings(&mut v.findings);
    v
}

/// Put findings in the order [`validate`] gives them: by file, line and rule id, as text (the
/// findings of one line and rule keep their order).
pub fn order_findings(findings: &mut [Finding]) {
    // The files and rule ids are replaced by their ranks in text order, computed once per
    // finding.
    let file_rank = crate::group::ranks(findings.iter().map(|f| f.file));
    let rule_rank = crate::group::ranks(findings.iter().map(|f| f.rule));
    findings.sort_by_cached_key(|f| (file_rank[&f.file], f.line, rule_rank[f.rule]));
}

/// [`validate`] with the findings in the order the rules made them, for a caller with other
/// work to do beside [`order_findings`]. Everything else is as [`validate`] gives it.
pub fn validate_unordered(lp: &LoadedPipeline, data: &IngestOutput) -> ValidationOutput {
    let p = &lp.pipeline;
    let mut ctx = Ctx::new(lp);

    // Subjects.
    let mut subj_disp = vec![Disposition::default(); data.subjects.len()];
    let mut first_row: HashMap<&str, usize> = HashMap::new();
    for (i, s) in data.subjects.iter().enumerate() {
        let d = &mut subj_disp[i];
        let sid = s.subject_id.as_str();
        if let Some(&j) = first_row.get(sid) {
            ctx.fire(
                d,
                "subject_duplicate",
                Some(sid),
                None,
                None,
                &s.lineage,
                Some(sid),
                format!(
                    "subject {sid} already appears on line {}",
                    data.subjects[j].lineage.line
                ),
            );
            continue;
        }
        first_row.insert(sid, i);
        match &s.arm {
            None => {
                ctx.fire(
                    d,
                    "subject_no_arm",
                    Some(sid),
                    None,
                    None,
                    &s.lineage,
                    None,
                    format!("subject {sid} has no arm"),
                );
            }
            Some(a) if !p.arms.iter().any(|x| &x.code == a) => {
                ctx.fire(
                    d,
                    "subject_unknown_arm",
                    Some(sid),
                    None,
                    None,
                    &s.lineage,
                    Some(a),
                    format!(
                        "arm `{a}` of subject {sid} is not one of {}",
                        p.arms
                            .iter()
                            .map(|x| x.code.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            Some(_) => {}
        }
        for (col, raw) in &s.bad_fields {
            ctx.fire(
                d,
                "subject_bad_field",
                Some(sid),
                None,
                None,
                &s.lineage,
                Some(raw),
                format!("{col} `{raw}` of subject {sid} does not parse"),
            );
        }
    }
    let subjects: HashMap<&str, &crate::ingest::SubjectRecord> = first_row
        .iter()
        .map(|(k, &i)| (*k, &data.subjects[i]))
        .collect();

    // Events.
    let mut ev_disp = vec![Disposition::default(); data.events.len()];
    // Keyed by interned id: the lab rows look deaths up by theirs.
    let mut death: FxHashMap<Ustr, chrono::NaiveDate> = FxHashMap::default();
    for (i, e) in data.events.iter().enumerate() {
        let d = &mut ev_disp[i];
        let sid = e.subject_id.as_str();
        if !subjects.contains_key(sid) {
            ctx.fire(
                d,
                "event_unknown_subject",
                Some(sid),
                None,
                None,
                &e.lineage,
                Some(sid),
                format!(
                    "event {} for subject {sid}, who is not in the subjects file",
                    e.event
                ),
            );
        }
        if e.event_date.is_none() {
            ctx.fire(
                d,
                "event_bad_date",
                Some(sid),
                None,
                None,
                &e.lineage,
                Some(&e.date_raw),
                format!("event date `{}` is not a date", e.date_raw),
            );
        }
        if !EVENT_TYPES.contains(&e.event.as_str()) {
            ctx.fire(
                d,
                "event_unknown_type",
                Some(sid),
                None,
                None,
                &e.lineage,
                Some(&e.event),
                format!(
                    "event `{}` is not one of {}",
                    e.event,
                    EVENT_TYPES.join(", ")
                ),
            );
        }
        if d.accepted()
            && e.event == "DEATH"
            && let Some(dt) = e.event_date
        {
            let entry = death.entry(Ustr::from(sid)).or_insert(dt);
            *entry = (*entry).min(dt);
        }
    }

    // Subject-level time-to-event records.
    let mut tte_disp = vec![Disposition::default(); data.tte.len()];
    for (i, t) in data.tte.iter().enumerate() {
        let d = &mut tte_disp[i];
        let sid = t.subject_id.as_str();
        if !subjects.contains_key(sid) {
            ctx.fire(
                d,
                "event_unknown_subject",
                Some(sid),
                Some(&t.paramcd),
                None,
                &t.lineage,
                Some(sid),
                format!(
                    "{} for subject {sid}, who is not in the subjects file",
                    t.paramcd
                ),
            );
        }
        if t.time_days.is_none_or(|x| x < 0.0) || t.event.is_none() {
            ctx.fire(
                d,
                "event_bad_date",
                Some(sid),
                Some(&t.paramcd),
                None,
                &t.lineage,
                Some(&format!("{}/{}", t.time_raw, t.status_raw)),
                format!(
                    "{}: time `{}` and status `{}` must be a number of days and a status",
                    t.paramcd, t.time_raw, t.status_raw
                ),
            );
        }
    }

    // Assessments rows that cannot be used: quarantined whether or not their rule reports them.
    let mut assess_disp = vec![Disposition::default(); data.assessments.problems.len()];
    if let Some(file) = &data.assessments.file {
        let file = Ustr::from(&file.to_string_lossy());
        for (pr, d) in data.assessments.problems.iter().zip(&mut assess_disp) {
            let lineage = crate::ingest::Lineage {
                file,
                line: pr.line,
                sheet: None,
            };
            let subject = Some(pr.subject_id.as_str()).filter(|s| !s.is_empty());
            let value = pr.value();
            if ctx
                .fire(
                    d,
                    pr.rule(),
                    subject,
                    None,
                    None,
                    &lineage,
                    value.as_deref(),
                    pr.message(),
                )
                .is_none()
            {
                d.quarantine.push(pr.rule());
            }
        }
    }

    // Labs, row by row. Per-row lookups are by interned code or id: hashed once, compared by
    // pointer.
    let panel: FxHashMap<Ustr, &crate::spec::LabTest> =
        p.labs.iter().map(|t| (Ustr::from(&t.code), t)).collect();
    // Declared source units per test, in canonical spelling (none declared: no check), interned
    // like the records' units: compared by pointer, not as text, on every row.
    let registry = crate::units::Registry::builtin();
    let declared: FxHashMap<Ustr, Vec<Ustr>> = p
        .labs
        .iter()
        .filter(|t| !t.source_units.is_empty())
        .map(|t| {
            let units = t
                .source_units
                .iter()
                .map(|u| Ustr::from(registry.canonical(u).unwrap_or(u.as_str())))
                .collect();
            (Ustr::from(&t.code), units)
        })
        .collect();
    let unit_sym: FxHashMap<Ustr, Ustr> = p
        .labs
        .iter()
        .map(|t| (Ustr::from(&t.code), Ustr::from(&t.unit)))
        .collect();
    let subjects_u: FxHashMap<Ustr, &crate::ingest::SubjectRecord> =
        subjects.iter().map(|(k, s)| (Ustr::from(k), *s)).collect();
    let mut lab_disp = vec![Disposition::default(); data.labs.len()];
    for (i, r) in data.labs.iter().enumerate() {
        let d = &mut lab_disp[i];
        let test = Some(r.test_code);
        let mut fire = |ctx: &mut Ctx, id, value: Option<Ustr>, msg: Message| {
            ctx.fire_lab(d, id, r, value, msg);
        };
        let res = Some(r.result_raw);
        match r.status {
            ParseStatus::Ok => {}
            ParseStatus::FieldCount => fire(
                &mut ctx,
                "field_count",
                None,
                Message::Text("the row has a different number of fields than the header".into()),
            ),
            ParseStatus::UnknownTest => fire(
                &mut ctx,
                "unknown_test",
                test,
                Message::Text(format!(
                    "test code `{}` is not in the lab panel",
                    r.test_code
                )),
            ),
            ParseStatus::UnknownUnit => fire(
                &mut ctx,
                "unknown_unit",
                Some(r.unit_raw),
                Message::Text(format!(
                    "unit `{}` of {} is not in the unit registry",
                    r.unit_raw, r.test_code
                )),
            ),
            ParseStatus::NoConversion => fire(
                &mut ctx,
                "no_unit_path",
                Some(r.unit_raw),
                Message::Text(format!(
                    "no conversion for {} from `{}` to `{}`",
                    r.test_code,
                    r.unit_raw,
                    r.std_unit.as_deref().unwrap_or("?")
                )),
            ),
            ParseStatus::TextResult => fire(
                &mut ctx,
                "non_numeric",
                res,
                Message::Text(format!(
                    "result `{}` of numeric test {} is not a number",
                    r.result_raw, r.test_code
                )),
            ),
            ParseStatus::UnexpectedValue => fire(
                &mut ctx,
                "unexpected_value",
                res,
                Message::Text(format!(
                    "result `{}` of qualitative test {} is not one of its declared values",
                    r.result_raw, r.test_code
                )),
            ),
            ParseStatus::BadDate => fire(
                &mut ctx,
                "bad_date",
                date_value(r).map(Ustr::from),
                Message::Text(bad_date_message(r)),
            ),
            ParseStatus::BlankResult => fire(
                &mut ctx,
                "blank_result",
                None,
                Message::Text("blank result".into()),
            ),
            ParseStatus::NotDone => fire(
                &mut ctx,
                "not_done",
                res,
                Message::Text("result not done".into()),
            ),
            ParseStatus::Censored => fire(
                &mut ctx,
                "censored",
                res,
                Message::Text(format!("censored result `{}`", r.result_raw)),
            ),
        }
        if matches!(r.status, ParseStatus::Ok | ParseStatus::Censored)
            && let (Some(unit), Some(allowed)) = (r.unit, declared.get(&r.test_code))
            && !allowed.contains(&unit)
        {
            let allowed: Vec<&str> = allowed.iter().map(|u| u.as_str()).collect();
            fire(
                &mut ctx,
                "unexpected_unit",
                Some(r.unit_raw),
                Message::Text(format!(
                    "unit `{}` of {} is not one of its declared source units {}",
                    r.unit_raw,
                    r.test_code,
                    allowed.join(", ")
                )),
            );
        }
        // A row may also have a bad date behind another status.
        if r.collection_date.is_none() && r.study_day.is_none() && r.status != ParseStatus::BadDate
        {
            fire(
                &mut ctx,
                "bad_date",
                date_value(r).map(Ustr::from),
                Message::Text(bad_date_message(r)),
            );
        }
        let subject = subjects_u.get(&r.subject_id);
        if subject.is_none() {
            fire(
                &mut ctx,
                "unknown_subject",
                Some(r.subject_id),
                Message::Text(format!(
                    "subject {} is not in the subjects file",
                    r.subject_id
                )),
            );
        }
        if let (Some(v), Some(t)) = (r.std_value, panel.get(&r.test_code))
            && let Some(pl) = t.plausible
        {
            if v < pl.low || v > pl.high {
                let (vs, lo, hi) = (ctx.num(v), ctx.num(pl.low), ctx.num(pl.high));
                fire(
                    &mut ctx,
                    "implausible",
                    res,
                    Message::Text(format!(
                        "{} {} {} is outside the plausible range {}..{} {}",
                        r.test_code, vs, t.unit, lo, hi, t.unit
                    )),
                );
            } else {
                let sex = subject.and_then(|s| s.sex.as_deref());
                let (lo, hi) = normal_range(r, t, sex);
                if lo.is_some_and(|lo| v < lo) || hi.is_some_and(|hi| v > hi) {
                    let vs = ctx.num(v);
                    let lo = lo.map(|x| ctx.num(x)).unwrap_or_default();
                    let hi = hi.map(|x| ctx.num(x)).unwrap_or_default();
                    fire(
                        &mut ctx,
                        "abnormal",
                        res,
                        Message::Abnormal {
                            test: r.test_code,
                            value: vs,
                            unit: unit_sym[&r.test_code],
                            low: lo,
                            high: hi,
                        },
                    );
                }
            }
        }
        if let (Some(date), Some(s)) = (r.collection_date, subject) {
            if let Some(c) = s.consent_date
                && date < c
            {
                fire(
                    &mut ctx,
                    "before_consent",
                    Some(Ustr::from(&date.to_string())),
                    Message::Text(format!("collected {date}, before informed consent on {c}")),
                );
            }
            if let Some(dd) = death.get(&r.subject_id)
                && date > *dd
            {
                fire(
                    &mut ctx,
                    "after_death",
                    Some(Ustr::from(&date.to_string())),
                    Message::Text(format!("collected {date}, after death on {dd}")),
                );
            }
        }
    }

    // Duplicates and visit windows compare the rows of one subject and test: the rows are
    // grouped by those once, and each group is split by the finer keys of each rule.
    let labs = &data.labs;
    let by_subject_test = Groups::by(labs.len(), |i| {
        Some((labs[i].subject_id, labs[i].test_code))
    });
    // Exact copies (same visit, result, unit and date), then conflicting values among the first
    // copies of the same date.
    let mut exact = crate::group::Split::default();
    let mut same_date = crate::group::Split::default();
    let mut first_copies: Vec<u32> = Vec::new();
    for rows in by_subject_test.iter() {
        // Most groups hold one record per date: then no two of them can be exact copies or
        // conflict on a date (both need the same date), and the splits are skipped. Checked
        // pairwise, so only for a group the splits would compare pairwise too.
        let one_per_date = rows.len() <= crate::group::SPLIT_PAIRWISE
            && rows.iter().enumerate().all(|(k, &i)| {
                let date = labs[i as usize].collection_date;
                date.is_some()
                    && rows[..k]
                        .iter()
                        .all(|&j| labs[j as usize].collection_date != date)
            });
        if one_per_date {
            continue;
        }
        first_copies.clear();
        exact.each(
            rows,
            |i| {
                let r = &labs[i as usize];
                (r.status != ParseStatus::FieldCount).then_some((
                    r.visit,
                    r.result_raw,
                    r.unit_raw,
                    r.collection_date,
                ))
            },
            |g| {
                // The first row of each exact group stands for it in the conflict check.
                first_copies.push(g[0]);
                let first = &labs[g[0] as usize];
                for &i in &g[1..] {
                    let r = &labs[i as usize];
                    ctx.fire_lab(
                        &mut lab_disp[i as usize],
                        "duplicate_exact",
                        r,
                        Some(r.result_raw),
                        format!(
                            "exact copy of {}:{}",
                            first.lineage.file, first.lineage.line
                        )
                        .into(),
                    );
                }
            },
        );
        // In input order: the exact groups come in the order of their first row.
        same_date.each(
            &first_copies,
            |i| labs[i as usize].collection_date,
            |g| {
                if g.len() < 2 {
                    return;
                }
                let distinct = {
                    let mut vals: Vec<String> =
                        g.iter().map(|&i| value_key(&labs[i as usize])).collect();
                    vals.sort();
                    vals.dedup();
                    vals.len()
                };
                if distinct < 2 {
                    return;
                }
                let lines: Vec<String> = g
                    .iter()
                    .map(|&i| {
                        let r = &labs[i as usize];
                        format!("{}:{} `{}`", r.lineage.file, r.lineage.line, r.result_raw)
                    })
                    .collect();
                for &i in g {
                    let r = &labs[i as usize];
                    ctx.fire_lab(
                        &mut lab_disp[i as usize],
                        "duplicate_conflict",
                        r,
                        Some(r.result_raw),
                        format!(
                            "{} on {} has conflicting results: {}",
                            r.test_code,
                            r.collection_date.map(|d| d.to_string()).unwrap_or_default(),
                            lines.join(", ")
                        )
                        .into(),
                    );
                }
            },
        );
    }

    // Visit windows among accepted rows with a value.
    let windows = &p.visits.windows;
    let mut placement = vec![Placement::default(); labs.len()];
    for (i, r) in labs.iter().enumerate() {
        if !lab_disp[i].accepted() || !r.has_value() {
            continue;
        }
        let Some(day) = r.study_day else {
            ctx.fire_lab(
                &mut lab_disp[i],
                "no_study_day",
                r,
                None,
                Message::Text("no study day: the subject has no reference date".into()),
            );
            continue;
        };
        match windows::window_of(day, windows) {
            None => {
                ctx.fire_lab(
                    &mut lab_disp[i],
                    "out_of_window",
                    r,
                    Some(Ustr::from(&day.to_string())),
                    format!("study day {day} (visit `{}`) is in no window", r.visit).into(),
                );
            }
            Some(w) => placement[i].window = Some(w as u32),
        }
    }
    // One record per subject, test and window: the window rule picks it.
    let mut in_window = crate::group::Split::default();
    let mut picks: Vec<usize> = Vec::new();
    // The candidates of the window at hand (the buffer is kept from window to window).
    let mut cands: Vec<Candidate> = Vec::new();
    for rows in by_subject_test.iter() {
        in_window.each(
            rows,
            |i| placement[i as usize].window,
            |rows| {
                let w = placement[rows[0] as usize]
                    .window
                    .expect("grouped rows have a window") as usize;
                cands.clear();
                cands.extend(rows.iter().map(|&i| Candidate {
                    day: labs[i as usize].study_day.unwrap_or(0),
                    order: i as usize,
                }));
                let pick = windows::select(&cands, &windows[w], p.visits.rule, p.visits.tie)
                    .map(|k| rows[k] as usize);
                picks.extend(pick);
                let Some(sel) = pick else { return };
                let chosen = &labs[sel];
                for &i in rows {
                    let i = i as usize;
                    if i == sel {
                        continue;
                    }
                    let r = &labs[i];
                    ctx.fire_lab(
                        &mut lab_disp[i],
                        "multiple_in_window",
                        r,
                        Some(r.result_raw),
                        format!(
                            "window {} also holds day {} ({}:{}), which the window rule selected",
                            windows[w].name,
                            chosen.study_day.unwrap_or(0),
                            chosen.lineage.file,
                            chosen.lineage.line
                        )
                        .into(),
                    );
                }
            },
        );
        for i in picks.drain(..) {
            placement[i].selected = true;
        }
    }
    drop(by_subject_test);

    // Eligibility, once baselines are known.
    let (criteria, eligibility) = if p.eligibility.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let facts = eligibility_facts(lp, data, &subjects, &lab_disp, &placement);
        crate::eligibility::evaluate(&p.eligibility, &facts)
    };
    for e in &eligibility {
        let s = subjects[e.subject_id.as_str()];
        let i = first_row[e.subject_id.as_str()];
        let d = &mut subj_disp[i];
        match e.verdict {
            crate::eligibility::Verdict::Eligible => {}
            crate::eligibility::Verdict::Ineligible => {
                ctx.fire(
                    d,
                    "ineligible",
                    Some(&e.subject_id),
                    None,
                    None,
                    &s.lineage,
                    Some(&e.violated.join(",")),
                    format!(
                        "subject {} does not meet: {}",
                        e.subject_id,
                        e.violated.join(", ")
                    ),
                );
            }
            crate::eligibility::Verdict::Unknown => {
                ctx.fire(
                    d,
                    "eligibility_unknown",
                    Some(&e.subject_id),
                    None,
                    None,
                    &s.lineage,
                    Some(&e.unknown.join(",")),
                    format!(
                        "the data cannot show whether subject {} meets: {}",
                        e.subject_id,
                        e.unknown.join(", ")
                    ),
                );
            }
        }
    }
    for c in criteria.iter().filter(|c| c.error.is_some()) {
        let s = subjects[c.subject_id.as_str()];
        let i = first_row[c.subject_id.as_str()];
        let err = c.error.clone().unwrap_or_default();
        ctx.fire(
            &mut subj_disp[i],
            "criterion_error",
            Some(&c.subject_id),
            None,
            None,
            &s.lineage,
            None,
            format!("criterion {} cannot be evaluated: {err}", c.criterion),
        );
    }

    // Summary.
    let findings = ctx.findings;
    let mut by_rule = BTreeMap::new();
    let mut by_sev = BTreeMap::new();
    for f in &findings {
        *by_rule.entry(f.rule).or_insert(0) += 1;
        *by_sev
            .entry(severity_name(f.severity).to_string())
            .or_insert(0) += 1;
    }
    let lab_rows_with_errors = lab_disp.iter().filter(|d| d.errors).count() as u64;
    let lab_rows_read = data.labs.len() as u64;
    let error_percent = if lab_rows_read == 0 {
        0.0
    } else {
        100.0 * lab_rows_with_errors as f64 / lab_rows_read as f64
    };
    let threshold = p.validation.max_error_percent;
    let verdict = if threshold.is_some_and(|t| error_percent > t) {
        Verdict::ErrorsOverThreshold
    } else if findings.iter().any(|f| f.severity >= Warning) {
        Verdict::Warnings
    } else {
        Verdict::Clean
    };
    let files = accounting(
        lp,
        data,
        &subj_disp,
        &lab_disp,
        &ev_disp,
        &tte_disp,
        &assess_disp,
    );
    ValidationOutput {
        findings,
        labs: lab_disp,
        placement,
        subjects: subj_disp,
        events: ev_disp,
        tte: tte_disp,
        assessments: assess_disp,
        eligibility,
        criteria,
        summary: Summary {
            findings_by_rule: by_rule,
            findings_by_severity: by_sev,
            lab_rows_read,
            lab_rows_with_errors,
            error_percent,
            max_error_percent: threshold,
            files,
            verdict,
        },
    }
}

/// What the eligibility criteria may use about each accepted subject.
fn eligibility_facts(
    lp: &LoadedPipeline,
    data: &IngestOutput,
    subjects: &HashMap<&str, &crate::ingest::SubjectRecord>,
    lab_disp: &[Disposition],
    placement: &[Placement],
) -> Vec<crate::eligibility::SubjectFacts> {
    let p = &lp.pipeline;
    let baseline_w = p.visits.baseline_index();
    // Baseline value and the site's reference range, by subject and test.
    type Baseline = (f64, Option<f64>, Option<f64>);
    let mut baseline: HashMap<&str, BTreeMap<String, Baseline>> = HashMap::new();
    for (i, r) in data.labs.iter().enumerate() {
        if lab_disp[i].accepted()
            && placement[i].selected
            && placement[i].window == Some(baseline_w as u32)
            && let Some(v) = r.std_value
        {
            baseline
                .entry(r.subject_id.as_str())
                .or_default()
                .insert(r.test_code.to_string(), (v, r.std_ref_low, r.std_ref_high));
        }
    }
    let mut ids: Vec<&&str> = subjects.keys().collect();
    ids.sort();
    ids.into_iter()
        .map(|id| {
            let s = subjects[*id];
            let b = baseline.get(*id);
            let mut facts = crate::eligibility::SubjectFacts {
                subject_id: s.subject_id.clone(),
                columns: s.columns.clone(),
                date_format: p.inputs.subjects.date_format.clone(),
                ..Default::default()
            };
            for t in &p.labs {
                let site = b.and_then(|m| m.get(&t.code));
                if let Some((v, _, _)) = site {
                    facts.baseline.insert(t.code.clone(), *v);
                }
                let range = match &t.normal {
                    Some(n) => n.for_sex(s.sex.as_deref()),
                    None => site.map(|x| (x.1, x.2)).unwrap_or((None, None)),
                };
                facts.normal.insert(t.code.clone(), range);
            }
            facts
        })
        .collect()
}

/// The date as read, unless blank.
fn date_value(r: &LabRecord) -> Option<&str> {
    Some(r.date_raw.as_str()).filter(|d| !d.is_empty())
}

fn bad_date_message(r: &LabRecord) -> String {
    match date_value(r) {
        None => "collection date is missing".into(),
        Some(d) => {
            format!("collection date `{d}` is not a date (or study day) in the expected form")
        }
    }
}

fn value_key(r: &LabRecord) -> String {
    match (&r.result, r.std_value) {
        (_, Some(v)) => format!("{v:.9e}"),
        (ParsedResult::Numeric(v), None) => format!("raw {v}"),
        _ => format!("text {}", r.result_raw),
    }
}

fn normal_range(
    r: &LabRecord,
    t: &crate::spec::LabTest,
    sex: Option<&str>,
) -> (Option<f64>, Option<f64>) {
    match &t.normal {
        Some(n) => n.for_sex(sex),
        None => (r.std_ref_low, r.std_ref_high),
    }
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Lower-case severity name.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Note => "note",
        Warning => "warning",
        Error => "error",
    }
}

fn accounting(
    lp: &LoadedPipeline,
    data: &IngestOutput,
    subj: &[Disposition],
    labs: &[Disposition],
    events: &[Disposition],
    tte: &[Disposition],
    assessments: &[Disposition],
) -> Vec<FileAccounting> {
    // Ingest lists the files in the order it read them, and each file's records are contiguous
    // in their domain, `rows_read` of them: walk each domain's dispositions file by file. (A key
    // by path would merge two sheets of one workbook, or one file named by two inputs.)
    let tte_layout = lp
        .pipeline
        .inputs
        .events
        .as_ref()
        .is_some_and(|e| e.layout == crate::spec::EventsLayout::Tte);
    let mut subj = subj.iter();
    let mut labs = labs.iter();
    let mut events = if tte_layout {
        tte.iter()
    } else {
        events.iter()
    };
    data.files
        .iter()
        .map(|f| {
            if f.kind == "assessments" {
                // Only the unusable rows have a disposition; every other row was read into use.
                let q = assessments.iter().filter(|d| !d.accepted()).count() as u64;
                return FileAccounting {
                    file: f.file.clone(),
                    kind: f.kind,
                    rows_read: f.rows_read,
                    rows_accepted: f.rows_read - q,
                    rows_quarantined: q,
                };
            }
            let domain = match f.kind {
                "subjects" => &mut subj,
                "labs" => &mut labs,
                _ => &mut events,
            };
            let (mut a, mut q) = (0, 0);
            for d in domain.by_ref().take(f.rows_read as usize) {
                if d.accepted() {
                    a += 1;
                } else {
                    q += 1;
                }
            }
            FileAccounting {
                file: f.file.clone(),
                kind: f.kind,
                rows_read: f.rows_read,
                rows_accepted: a,
                rows_quarantined: q,
            }
        })
        .collect()
}

/// `validation/findings.parquet`.
pub fn findings_table(findings: &[Finding]) -> Table {
    // One pass over the findings fills every column. Interned columns hold one pointer per
    // finding; rule ids and severities are interned once (the rule of the finding before is
    // mostly the same one).
    let rule: FxHashMap<&str, Ustr> = RULES.iter().map(|r| (r.id, Ustr::from(r.id))).collect();
    let mut last_rule: Option<(&str, Ustr)> = None;
    let sev: FxHashMap<&str, Ustr> = [Note, Warning, Error]
        .iter()
        .map(|&x| (severity_name(x), Ustr::from(severity_name(x))))
        .collect();
    // The message column is coded: each distinct message is stored once. A lazily kept message
    // is written out once per distinct set of parts, and looked up as text like the others so
    // that equal texts share a code.
    let mut code_of: FxHashMap<String, u32> = FxHashMap::default();
    let mut abnormal: FxHashMap<[Ustr; 5], u32> = FxHashMap::default();
    let code = |text: &str, code_of: &mut FxHashMap<String, u32>| {
        if let Some(&c) = code_of.get(text) {
            return c;
        }
        let c = code_of.len() as u32;
        code_of.insert(text.to_string(), c);
        c
    };
    let n = findings.len();
    // RULE, SEVERITY, SUBJID, LBTESTCD, VISIT, SRCFILE, VALUE.
    let mut s: [Vec<Option<Ustr>>; 7] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut line = Vec::with_capacity(n);
    let mut codes = Vec::with_capacity(n);
    for f in findings {
        let rule_u = match last_rule {
            Some((id, u)) if std::ptr::eq(id, f.rule) => u,
            _ => {
                let u = rule
                    .get(f.rule)
                    .copied()
                    .unwrap_or_else(|| Ustr::from(f.rule));
                last_rule = Some((f.rule, u));
                u
            }
        };
        let values = [
            Some(rule_u),
            Some(sev[severity_name(f.severity)]),
            f.subject_id,
            f.test_code,
            f.visit,
            Some(f.file),
            f.value,
        ];
        for (c, v) in s.iter_mut().zip(values) {
            c.push(v);
        }
        line.push(Some(f.line as i64));
        codes.push(Some(match &f.message {
            Message::Text(t) => code(t, &mut code_of),
            m @ Message::Abnormal {
                test,
                value,
                unit,
                low,
                high,
            } => *abnormal
                .entry([*test, *value, *unit, *low, *high])
                .or_insert_with(|| code(&m.to_string(), &mut code_of)),
        }));
    }
    let mut values = vec![String::new(); code_of.len()];
    for (text, c) in code_of {
        values[c as usize] = text;
    }
    let [rule_col, sev_col, subject, test, visit, file, value] =
        s.map(|v| ColumnData::Str(v.into_iter().collect()));
    let col = |name, label, data| Column { name, label, data };
    Table {
        columns: vec![
            col("RULE", "Validation Rule Id", rule_col),
            col("SEVERITY", "Severity", sev_col),
            col("SUBJID", "Subject Identifier for the Study", subject),
            col("LBTESTCD", "Lab Test Short Name", test),
            col("VISIT", "Visit Name as reported", visit),
            col("SRCFILE", "Source file", file),
            col("SRCLINE", "Source line", ColumnData::I64(line)),
            col("VALUE", "Offending Value as Read", value),
            col(
                "MESSAGE",
                "Message",
                ColumnData::Str(crate::store::TextColumn::coded(values, codes)),
            ),
        ],
    }
}

/// `quarantine/rejected.parquet`: every quarantined input row, raw, with its reason codes.
pub fn quarantine_table(
    data: &IngestOutput,
    v: &ValidationOutput,
    raw: &FxHashMap<crate::ingest::RowKey, String>,
) -> Table {
    struct Q {
        kind: &'static str,
        key: crate::ingest::RowKey,
        file: String,
        line: u64,
        subject: String,
        test: Option<String>,
        visit: Option<String>,
        date: Option<String>,
        result: Option<String>,
        unit: Option<String>,
        reasons: String,
    }
    let mut rows = Vec::new();
    for (r, d) in data.labs.iter().zip(&v.labs) {
        if !d.accepted() {
            rows.push(Q {
                kind: "labs",
                key: (r.lineage.file, r.lineage.sheet, r.lineage.line),
                file: r.lineage.file.to_string(),
                line: r.lineage.line,
                subject: r.subject_id.to_string(),
                test: Some(r.test_code.to_string()),
                visit: Some(r.visit.to_string()),
                date: Some(r.date_raw.to_string()).filter(|d| !d.is_empty()),
                result: Some(r.result_raw.to_string()),
                unit: Some(r.unit_raw.to_string()),
                reasons: d.quarantine.join(";"),
            });
        }
    }
    for (s, d) in data.subjects.iter().zip(&v.subjects) {
        if !d.accepted() {
            rows.push(Q {
                kind: "subjects",
                key: (s.lineage.file, s.lineage.sheet, s.lineage.line),
                file: s.lineage.file.to_string(),
                line: s.lineage.line,
                subject: s.subject_id.clone(),
                test: None,
                visit: None,
                date: s.randomization_date.map(|d| d.to_string()),
                result: None,
                unit: None,
                reasons: d.quarantine.join(";"),
            });
        }
    }
    for (t, d) in data.tte.iter().zip(&v.tte) {
        if !d.accepted() {
            rows.push(Q {
                kind: "events",
                key: (t.lineage.file, t.lineage.sheet, t.lineage.line),
                file: t.lineage.file.to_string(),
                line: t.lineage.line,
                subject: t.subject_id.clone(),
                test: Some(t.paramcd.clone()),
                visit: None,
                date: Some(t.time_raw.clone()),
                result: Some(t.status_raw.clone()),
                unit: Some("days".into()),
                reasons: d.quarantine.join(";"),
            });
        }
    }
    if let Some(file) = &data.assessments.file {
        let file_u = Ustr::from(&file.to_string_lossy());
        for (pr, d) in data.assessments.problems.iter().zip(&v.assessments) {
            rows.push(Q {
                kind: "assessments",
                key: (file_u, None, pr.line),
                file: file_u.to_string(),
                line: pr.line,
                subject: pr.subject_id.clone(),
                test: None,
                visit: None,
                date: None,
                result: pr.value(),
                unit: None,
                reasons: d.quarantine.join(";"),
            });
        }
    }
    for (e, d) in data.events.iter().zip(&v.events) {
        if !d.accepted() {
            rows.push(Q {
                kind: "events",
                key: (e.lineage.file, e.lineage.sheet, e.lineage.line),
                file: e.lineage.file.to_string(),
                line: e.lineage.line,
                subject: e.subject_id.clone(),
                test: Some(e.event.clone()),
                visit: None,
                date: Some(e.date_raw.clone()),
                result: None,
                unit: None,
                reasons: d.quarantine.join(";"),
            });
        }
    }
    let s = |f: &dyn Fn(&Q) -> Option<String>| ColumnData::Str(rows.iter().map(f).collect());
    Table {
        columns: vec![
            Column {
                name: "DOMAIN",
                label: "Input Kind (labs, subjects, events, assessments)",
                data: s(&|q| Some(q.kind.to_string())),
            },
            Column {
                name: "SRCFILE",
                label: "Source file",
                data: s(&|q| Some(q.file.clone())),
            },
            Column {
                name: "SRCLINE",
                label: "Source line",
                data: ColumnData::I64(rows.iter().map(|q| Some(q.line as i64)).collect()),
            },
            Column {
                name: "SUBJID",
                label: "Subject Identifier for the Study",
                data: s(&|q| Some(q.subject.clone())),
            },
            Column {
                name: "TESTCD",
                label: "Lab Test Code or Event Name",
                data: s(&|q| q.test.clone()),
            },
            Column {
                name: "VISIT",
                label: "Visit Name as reported",
                data: s(&|q| q.visit.clone()),
            },
            Column {
                name: "DATE",
                label: "Date as Read",
                data: s(&|q| q.date.clone()),
            },
            Column {
                name: "RESULT",
                label: "Result as Received",
                data: s(&|q| q.result.clone()),
            },
            Column {
                name: "UNIT",
                label: "Unit as Received",
                data: s(&|q| q.unit.clone()),
            },
            Column {
                name: "REASONS",
                label: "Quarantine Reason Codes (;-separated rule ids)",
                data: s(&|q| Some(q.reasons.clone())),
            },
            Column {
                name: "RAWROW",
                label: "Full Source Row as Read (JSON object, header order)",
                data: s(&|q| raw.get(&q.key).cloned()),
            },
        ],
    }
}

/// Where the quarantined rows are (file, sheet, line), for reading their full source rows.
pub fn quarantined_rows(data: &IngestOutput, v: &ValidationOutput) -> Vec<crate::ingest::RowKey> {
    fn keys<'a, T: 'a>(
        recs: &'a [T],
        disp: &'a [Disposition],
        lineage: impl Fn(&T) -> &crate::ingest::Lineage + 'a,
    ) -> impl Iterator<Item = crate::ingest::RowKey> + 'a {
        recs.iter()
            .zip(disp)
            .filter(|(_, d)| !d.accepted())
            .map(move |(r, _)| {
                let l = lineage(r);
                (l.file, l.sheet, l.line)
            })
    }
    let mut out: Vec<crate::ingest::RowKey> = keys(&data.labs, &v.labs, |r| &r.lineage)
        .chain(keys(&data.subjects, &v.subjects, |r| &r.lineage))
        .chain(keys(&data.events, &v.events, |r| &r.lineage))
        .chain(keys(&data.tte, &v.tte, |r| &r.lineage))
        .collect();
    if let Some(file) = &data.assessments.file {
        let file = Ustr::from(&file.to_string_lossy());
        out.extend(
            data.assessments
                .problems
                .iter()
                .map(|p| (file, None, p.line)),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `validation/eligibility.parquet`: one row per subject and criterion.
pub fn eligibility_table(results: &[crate::eligibility::CriterionResult]) -> Table {
    let s = |f: &dyn Fn(&crate::eligibility::CriterionResult) -> Option<String>| {
        ColumnData::Str(results.iter().map(f).collect())
    };
    let yn = |b: Option<bool>| b.map(|b| if b { "Y".to_string() } else { "N".to_string() });
    Table {
        columns: vec![
            Column {
                name: "SUBJID",
                label: "Subject Identifier for the Study",
                data: s(&|r| Some(r.subject_id.clone())),
            },
            Column {
                name: "CRITID",
                label: "Criterion Id",
                data: s(&|r| Some(r.criterion.clone())),
            },
            Column {
                name: "CRITKIND",
                label: "Inclusion or Exclusion",
                data: s(&|r| {
                    Some(match r.kind {
                        crate::spec::CriterionKind::Inclusion => "INCLUSION".to_string(),
                        crate::spec::CriterionKind::Exclusion => "EXCLUSION".to_string(),
                    })
                }),
            },
            Column {
                name: "CRITVAL",
                label: "Criterion Expression Value (Y/N, null unknown)",
                data: s(&|r| yn(r.value)),
            },
            Column {
                name: "CRITMET",
                label: "Criterion Satisfied for Eligibility (Y/N, null unknown)",
                data: s(&|r| yn(r.satisfied)),
            },
            Column {
                name: "DETAIL",
                label: "Values Used",
                data: s(&|r| Some(r.detail.clone())),
            },
            Column {
                name: "ERROR",
                label: "Evaluation Error",
                data: s(&|r| r.error.clone()),
            },
        ],
    }
}
