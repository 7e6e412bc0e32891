//! Derive: the validated records become CDISC-shaped datasets.
//!
//! * `sdtm/lb.parquet` — SDTM LB, one row per accepted lab record, with lineage;
//! * `adam/adsl.parquet` — one row per subject: arms, dates, population flags, eligibility,
//!   death, transplant, withdrawal and last contact; direct identifiers never appear;
//! * `adam/adlb.parquet` — ADaM BDS for numeric lab parameters: analysis windows, baseline,
//!   change, reference-range indicators, shift, the analysis flag ANL01FL chosen by the window
//!   rule, worst post-baseline flags and, when the pipeline asks, LOCF rows (DTYPE = "LOCF");
//! * `adam/adtte.parquet` — overall survival and transplant-free survival per subject.
//!
//! Rules and conventions (documented in `docs/data-dictionary.md`):
//! USUBJID = STUDYID + "-" + SUBJID; flags are "Y" or null; study days follow CDISC (no day 0);
//! baseline is the record the window rule selects in the baseline window; CHG and PCHG are
//! filled for post-baseline records (study day > the baseline record's day) only; rows are sorted
//! by USUBJID, PARAMN, AVISITN, ADT and source order, so reruns are byte-identical.
//! Derive never reads files and never prints.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;
use ustr::Ustr;

use chrono::NaiveDate;

use crate::eligibility::{SubjectEligibility, Verdict as EligVerdict};
use crate::ingest::{IngestOutput, LabRecord, ParseStatus, ParsedResult};
use crate::spec::{LoadedPipeline, MissingVisitPolicy};
use crate::store::{Column, ColumnData, Table};
use crate::validate::ValidationOutput;

/// The datasets derive produces as tables; ADLB is built from [`Derived::adlb`] by
/// [`adlb_table`] when it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct DeriveOutput {
    /// SDTM LB, built a row group at a time when it is written.
    pub lb: SdtmLb,
    /// ADaM ADSL.
    pub adsl: Table,
    /// ADaM ADTTE.
    pub adtte: Table,
    /// Responder flags per subject, visit and response rule (ADRS).
    pub adrs: Table,
}

/// One ADLB row, kept typed so analyses can use it without reading Parquet back.
#[derive(Debug, Clone, PartialEq)]
pub struct AdlbRow {
    /// USUBJID.
    pub usubjid: Ustr,
    /// SUBJID.
    pub subjid: Ustr,
    /// SITEID.
    pub siteid: Ustr,
    /// Planned treatment (arm label).
    pub trtp: Option<Ustr>,
    /// Planned arm code.
    pub armcd: Option<Ustr>,
    /// Actual treatment (null when the subject received no dose).
    pub trta: Option<Ustr>,
    /// PARAMCD.
    pub paramcd: Ustr,
    /// PARAM, e.g. "Albumin (g/L)".
    pub param: Ustr,
    /// PARAMN (panel order, from 1).
    pub paramn: i64,
    /// AVAL in the standard unit.
    pub aval: Option<f64>,
    /// AVALC, the standard character result.
    pub avalc: Option<Ustr>,
    /// Unit of AVAL.
    pub avalu: Ustr,
    /// Analysis date.
    pub adt: Option<NaiveDate>,
    /// Analysis study day.
    pub ady: Option<i64>,
    /// Analysis window name.
    pub avisit: Option<Ustr>,
    /// Analysis window number.
    pub avisitn: Option<f64>,
    /// Window target day.
    pub awtarget: Option<i32>,
    /// Window low day.
    pub awlo: Option<i32>,
    /// Window high day.
    pub awhi: Option<i32>,
    /// Baseline record flag.
    pub ablfl: Option<Y>,
    /// Baseline value.
    pub base: Option<f64>,
    /// Change from baseline.
    pub chg: Option<f64>,
    /// Percent change from baseline.
    pub pchg: Option<f64>,
    /// Reference range low.
    pub anrlo: Option<f64>,
    /// Reference range high.
    pub anrhi: Option<f64>,
    /// LOW / NORMAL / HIGH.
    pub anrind: Option<NrInd>,
    /// Baseline ANRIND.
    pub bnrind: Option<NrInd>,
    /// "BNRIND to ANRIND" for post-baseline records.
    pub shift1: Option<Ustr>,
    /// The record the window rule selected.
    pub anl01fl: Option<Y>,
    /// Highest post-baseline value of the subject and parameter.
    pub worsthfl: Option<Y>,
    /// Lowest post-baseline value of the subject and parameter.
    pub worstlfl: Option<Y>,
    /// Derivation type ("LOCF" for carried-forward rows).
    pub dtype: Option<Dtype>,
    /// SDTM LBSEQ of the source record.
    pub lbseq: Option<i64>,
    /// Source file.
    pub srcfile: Ustr,
    /// Source line.
    pub srcline: i64,
}

struct SubjectInfo {
    usubjid: Ustr,
    siteid: Ustr,
    armcd: Option<Ustr>,
    trtp: Option<Ustr>,
    trta: Option<Ustr>,
    sex: Option<String>,
    /// Age in years at randomization (ADSL `AGE`) and the randomization date, for FIB-4.
    age: Option<f64>,
    randdt: Option<NaiveDate>,
}

/// USUBJID: STUDYID-SUBJID, or the subject id itself when it already is a USUBJID (`sdtm`:
/// subjects read from an SDTM DM domain; or an id already prefixed with the study id).
fn usubjid(study: &str, sdtm: bool, subj: &str) -> String {
    if sdtm || subj.starts_with(&format!("{study}-")) {
        subj.to_string()
    } else {
        format!("{study}-{subj}")
    }
}

fn fmt_value(v: f64, decimals: Option<u32>) -> String {
    match decimals {
        Some(d) => format!("{:.*}", d as usize, v),
        None => {
            let s = format!("{v}");
            if s.contains('e') {
                format!("{v:.6}")
            } else {
                s
            }
        }
    }
}

/// The value "Y" of an ADaM flag: a flag is `Some(Y)` ("Y") or `None` (null). One byte in a
/// row where the text would take sixteen (ADLB holds millions of rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Y;

impl Y {
    /// "Y".
    pub const fn as_str(self) -> &'static str {
        "Y"
    }
}

/// A reference range indicator (LBNRIND, ANRIND, BNRIND).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NrInd {
    /// Below the low limit.
    Low,
    /// Within the limits.
    Normal,
    /// Above the high limit.
    High,
}

impl NrInd {
    /// "LOW", "NORMAL" or "HIGH".
    pub const fn as_str(self) -> &'static str {
        match self {
            NrInd::Low => "LOW",
            NrInd::Normal => "NORMAL",
            NrInd::High => "HIGH",
        }
    }
}

/// A derivation type (DTYPE) of a derived ADLB row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dtype {
    /// Last observation carried forward into a window without an analysed record.
    Locf,
}

impl Dtype {
    /// "LOCF".
    pub const fn as_str(self) -> &'static str {
        match self {
            Dtype::Locf => "LOCF",
        }
    }
}

fn nrind(v: f64, lo: Option<f64>, hi: Option<f64>) -> Option<NrInd> {
    if lo.is_none() && hi.is_none() {
        return None;
    }
    if lo.is_some_and(|l| v < l) {
        Some(NrInd::Low)
    } else if hi.is_some_and(|h| v > h) {
        Some(NrInd::High)
    } else {
        Some(NrInd::Normal)
    }
}

/// Interned text for values that repeat across records, so each distinct one is formatted and
/// interned once: formatted numbers (LBSTRESC, AVALC), and fixed codes (`LOW`, `Y`, ...).
struct TextCache {
    /// (value bits, decimals, prefix) -> text.
    values: FxHashMap<(u64, Option<u32>, u8), Ustr>,
    /// The fixed codes, in the order of [`TextCache::FIXED`].
    fixed: [Ustr; 5],
}

impl TextCache {
    /// The fixed codes derive writes.
    const FIXED: [&'static str; 5] = ["LOW", "NORMAL", "HIGH", "Y", "LOCF"];

    /// A cache that knows the fixed codes derive writes.
    fn new() -> TextCache {
        TextCache {
            values: FxHashMap::default(),
            fixed: Self::FIXED.map(Ustr::from),
        }
    }

    /// `prefix` followed by the value formatted as [`fmt_value`] does.
    fn value(&mut self, v: f64, decimals: Option<u32>, prefix: &'static str) -> Ustr {
        let key = match prefix {
            "" => 0,
            "<" => 1,
            ">" => 2,
            _ => 3,
        };
        if key == 3 {
            return Ustr::from(&format!("{prefix}{}", fmt_value(v, decimals)));
        }
        *self
            .values
            .entry((v.to_bits(), decimals, key))
            .or_insert_with(|| Ustr::from(&format!("{prefix}{}", fmt_value(v, decimals))))
    }

    /// A fixed code, interned once.
    fn fixed(&self, t: &'static str) -> Ustr {
        match Self::FIXED.iter().position(|f| *f == t) {
            Some(k) => self.fixed[k],
            None => Ustr::from(t),
        }
    }
}

/// SDTM LB before it is a table: the accepted lab records in LBSEQ order (indices into
/// `IngestOutput::labs`) with what each row adds to its record. [`SdtmLb::table`] builds any
/// range of rows, so the writer can build the dataset a row group at a time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SdtmLb {
    study: Ustr,
    /// Lab record of each row.
    rows: Vec<usize>,
    /// USUBJID, LBSEQ, reference range (standard unit) and LBSTRESC of each row.
    usubjid: Vec<Ustr>,
    lbseq: Vec<Option<i64>>,
    ranges: Vec<(Option<f64>, Option<f64>)>,
    stresc: Vec<Option<Ustr>>,
    /// VISITNUM by visit name as reported, LBDTC by date, LBTEST by test code.
    visitnum: FxHashMap<Ustr, Option<f64>>,
    lbdtc: FxHashMap<NaiveDate, Ustr>,
    test_name: FxHashMap<Ustr, Ustr>,
}

impl SdtmLb {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows `range` of the dataset, from the records they were derived from (`labs`, the
    /// `IngestOutput::labs` derive was given).
    pub fn table(&self, labs: &[LabRecord], range: std::ops::Range<usize>) -> Table {
        // One pass over the rows fills every column: each record is looked up once, not once
        // per column.
        let text = TextCache::new();
        let (study_u, lb_u, not_done) = (self.study, Ustr::from("LB"), Ustr::from("NOT DONE"));
        let nonblank = |t: Ustr| Some(t).filter(|t| !t.is_empty());
        let n = range.len();
        // Text and numbers, each in the order of its columns below.
        let mut s: [Vec<Option<Ustr>>; 14] = std::array::from_fn(|_| Vec::with_capacity(n));
        let mut f: [Vec<Option<f64>>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
        let (mut lbdy, mut srcline) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for k in range.clone() {
            let x = &labs[self.rows[k]];
            let (lo, hi) = self.ranges[k];
            let stresn = match x.result {
                ParsedResult::Numeric(_) => x.std_value,
                _ => None,
            };
            let text_values = [
                Some(study_u),
                Some(lb_u),
                Some(self.usubjid[k]),
                Some(x.test_code),
                self.test_name
                    .get(&x.test_code)
                    .copied()
                    .or(Some(x.test_name)),
                nonblank(x.result_raw),
                nonblank(x.unit_raw),
                self.stresc[k],
                x.std_unit,
                stresn.and_then(|y| nrind(y, lo, hi).map(|t| text.fixed(t.as_str()))),
                matches!(x.status, ParseStatus::NotDone | ParseStatus::BlankResult)
                    .then_some(not_done),
                Some(x.visit),
                x.collection_date.map(|d| self.lbdtc[&d]),
                Some(x.lineage.file),
            ];
            for (c, v) in s.iter_mut().zip(text_values) {
                c.push(v);
            }
            for (c, v) in f.iter_mut().zip([stresn, lo, hi, self.visitnum[&x.visit]]) {
                c.push(v);
            }
            lbdy.push(x.study_day);
            srcline.push(Some(x.lineage.line as i64));
        }
        let [
            studyid,
            domain,
            usubjid,
            testcd,
            test,
            orres,
            orresu,
            stresc,
            stresu,
            nrind_col,
            stat,
            visit,
            lbdtc,
            srcfile,
        ] = s.map(|v| ColumnData::Str(v.into_iter().collect()));
        let [stresn, stnrlo, stnrhi, visitnum] = f.map(ColumnData::F64);
        Table {
            columns: vec![
                col("STUDYID", "Study Identifier", studyid),
                col("DOMAIN", "Domain Abbreviation", domain),
                col("USUBJID", "Unique Subject Identifier", usubjid),
                col(
                    "LBSEQ",
                    "Sequence Number",
                    ColumnData::I64(self.lbseq[range.clone()].to_vec()),
                ),
                col("LBTESTCD", "Lab Test or Examination Short Name", testcd),
                col("LBTEST", "Lab Test or Examination Name", test),
                col("LBORRES", "Result or Finding in Original Units", orres),
                col("LBORRESU", "Original Units", orresu),
                col("LBSTRESC", "Character Result/Finding in Std Format", stresc),
                col(
                    "LBSTRESN",
                    "Numeric Result/Finding in Standard Units",
                    stresn,
                ),
                col("LBSTRESU", "Standard Units", cat(stresu)),
                col("LBSTNRLO", "Normal Range Lower Limit-Std Units", stnrlo),
                col("LBSTNRHI", "Normal Range Upper Limit-Std Units", stnrhi),
                col("LBNRIND", "Reference Range Indicator", nrind_col),
                col("LBSTAT", "Completion Status", stat),
                col("VISITNUM", "Visit Number", visitnum),
                col("VISIT", "Visit Name", cat(visit)),
                col("LBDTC", "Date/Time of Specimen Collection", lbdtc),
                col(
                    "LBDY",
                    "Study Day of Specimen Collection",
                    ColumnData::I64(lbdy),
                ),
                col("SRCFILE", "Source File", srcfile),
                col("SRCLINE", "Source Line", ColumnData::I64(srcline)),
            ],
        }
    }
}

/// Everything derive needs besides the pipeline.
pub struct DeriveInput<'a> {
    /// Ingested records.
    pub data: &'a IngestOutput,
    /// Validation decisions.
    pub validation: &'a ValidationOutput,
    /// Clinical assessments by subject id and date (empty without `[inputs.assessments]`).
    pub assessments: &'a crate::assessments::AssessmentIndex,
}

/// The typed rows behind the datasets, for the analyses.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// The datasets as tables.
    pub output: DeriveOutput,
    /// ADLB rows.
    pub adlb: Vec<AdlbRow>,
    /// ADTTE rows.
    pub adtte: Vec<TteRow>,
    /// Responder flags (ADRS rows).
    pub adrs: Vec<crate::response::ResponseFlag>,
    /// Stratification factors of each subject (USUBJID -> column name -> level), as in ADSL's
    /// STRATnR columns; used by the stratified analyses.
    pub strata: BTreeMap<String, crate::ingest::Strata>,
}

/// Build every dataset.
pub fn derive(lp: &LoadedPipeline, input: &DeriveInput<'_>) -> Derived {
    derive_then(lp, input, |_| ()).0
}

/// [`derive`], handing SDTM LB to `with_lb` as soon as it exists: `with_lb` runs beside the rest
/// of the lab chain (ADLB rows, scores, baseline and change, the ADLB sort), so a caller that
/// writes SDTM LB there keeps both cores busy while ADLB is still being made. Returns the
/// datasets and what `with_lb` returned.
pub fn derive_then<R: Send>(
    lp: &LoadedPipeline,
    input: &DeriveInput<'_>,
    with_lb: impl FnOnce(&SdtmLb) -> R + Send,
) -> (Derived, R) {
    let laps = crate::timing::Laps::start("derive");
    let p = &lp.pipeline;
    let data = input.data;
    let v = input.validation;
    let study = &p.study.id;
    let sdtm = p.inputs.subjects.layout == crate::spec::SubjectsLayout::SdtmDm;
    let arm_label: HashMap<&str, &str> = p
        .arms
        .iter()
        .map(|a| (a.code.as_str(), a.label.as_str()))
        .collect();

    // Subjects (accepted rows only; the first row of a duplicated id).
    let mut subjects: BTreeMap<&str, SubjectInfo> = BTreeMap::new();
    let mut strata: BTreeMap<String, crate::ingest::Strata> = BTreeMap::new();
    for (s, d) in data.subjects.iter().zip(&v.subjects) {
        if !d.accepted() || subjects.contains_key(s.subject_id.as_str()) {
            continue;
        }
        let known_arm = s.arm.as_deref().filter(|a| arm_label.contains_key(a));
        let dosed = s.doses_received.is_some_and(|n| n > 0) || s.first_dose_date.is_some();
        subjects.insert(
            &s.subject_id,
            SubjectInfo {
                usubjid: Ustr::from(&usubjid(study, sdtm, &s.subject_id)),
                siteid: Ustr::from(&s.site_id),
                armcd: known_arm.map(Ustr::from),
                trtp: known_arm.map(|a| Ustr::from(arm_label[a])),
                trta: known_arm
                    .filter(|_| dosed)
                    .map(|a| Ustr::from(arm_label[a])),
                sex: s.sex.clone(),
                age: s.age,
                randdt: s.randomization_date,
            },
        );
        strata.insert(usubjid(study, sdtm, &s.subject_id), s.strata.clone());
    }

    // ADSL and ADTTE need only the subjects, events and records: they are made on the other
    // core while the lab records become SDTM LB and ADLB.
    let (((lb, rows, flags, adrs), with_lb), (adsl, tte, adtte)) = rayon::join(
        || lab_datasets(lp, input, &subjects, laps, with_lb),
        || {
            let mut laps = crate::timing::Laps::start("derive");
            let ev = event_dates(input);
            let first = first_records(input);
            let adsl = adsl_table(lp, input, &subjects, &ev, &first);
            let tte = adtte_rows(lp, input, &subjects, &ev, &first);
            let adtte = adtte_table(lp, &tte);
            laps.lap("ADSL, ADTTE (beside the lab datasets)");
            (adsl, tte, adtte)
        },
    );
    (
        Derived {
            output: DeriveOutput {
                lb,
                adsl,
                adtte,
                adrs,
            },
            adlb: rows,
            adtte: tte,
            adrs: flags,
            strata,
        },
        with_lb,
    )
}

/// What derive makes from the lab records: SDTM LB, the ADLB rows (scores, baseline, change,
/// worst flags and LOCF rows included, in ADLB order), the responder flags and ADRS; and what
/// `with_lb`, run on SDTM LB beside the making of ADLB, returned.
fn lab_datasets<R: Send>(
    lp: &LoadedPipeline,
    input: &DeriveInput<'_>,
    subjects: &BTreeMap<&str, SubjectInfo>,
    mut laps: crate::timing::Laps,
    with_lb: impl FnOnce(&SdtmLb) -> R + Send,
) -> (
    (
        SdtmLb,
        Vec<AdlbRow>,
        Vec<crate::response::ResponseFlag>,
        Table,
    ),
    R,
) {
    let p = &lp.pipeline;
    let (data, v) = (input.data, input.validation);
    let study = &p.study.id;
    // LBSEQ: per subject, sorted by test, date, source order, over accepted records.
    // Per-row lookups by hash; `subjects` keeps its order for ADSL.
    // Keyed by the interned id that lab records carry: hashed once, compared by pointer.
    let subject_of: FxHashMap<Ustr, &SubjectInfo> =
        subjects.iter().map(|(k, v)| (Ustr::from(k), v)).collect();
    // The sort compares small integers: each USUBJID, test code and file is replaced by its rank
    // in string order, which gives the order of the strings themselves. The row index last makes
    // every key distinct, so the unstable sort gives the stable sort's order. Test codes and
    // files are ranked over every record: among the accepted ones the order is the same.
    let usubjid_rank = crate::group::ranks(subjects.values().map(|s| s.usubjid));
    // The USUBJID rank of each subject id, so that a record's subject is looked up once.
    let subject_rank: FxHashMap<Ustr, u32> = subjects
        .iter()
        .map(|(k, s)| (Ustr::from(k), usubjid_rank[&s.usubjid]))
        .collect();
    let test_rank = crate::group::ranks(data.labs.iter().map(|r| r.test_code));
    // A file's records are consecutive: its rank is looked up when the file changes.
    let mut files: Vec<Ustr> = Vec::new();
    for r in &data.labs {
        if files.last() != Some(&r.lineage.file) {
            files.push(r.lineage.file);
        }
    }
    let file_rank = crate::group::ranks(files.iter().copied());
    let mut file_rank_of = crate::group::LastKey::new(&file_rank);
    let mut rank_of = crate::group::LastKey::new(&subject_rank);
    let mut keyed: Vec<(u32, u32, Option<NaiveDate>, u32, u64, usize)> =
        Vec::with_capacity(data.labs.len());
    for (i, r) in data.labs.iter().enumerate() {
        if !v.labs[i].accepted() {
            continue;
        }
        let Some(&subject) = rank_of.get(r.subject_id) else {
            continue;
        };
        let file = *file_rank_of
            .get(r.lineage.file)
            .expect("every record's file is ranked");
        keyed.push((
            subject,
            test_rank[&r.test_code],
            r.collection_date,
            file,
            r.lineage.line,
            i,
        ));
    }
    // In parallel: the other core has little else to do while this chain runs (ADSL and ADTTE
    // are done early), and every key is distinct, so the order is the sequential sort's.
    rayon::slice::ParallelSliceMut::par_sort_unstable(&mut keyed[..]);
    let accepted: Vec<usize> = keyed.into_iter().map(|k| k.5).collect();
    // LBSEQ by lab row index (None: not accepted). An SDTM LB input brings its own LBSEQ: kept
    // when every accepted record has one and no subject has one twice, so that LBSEQ still names
    // the sponsor's record; otherwise every record is numbered here.
    let mut lbseq: Vec<Option<i64>> = vec![None; data.labs.len()];
    let keep_source = !accepted.is_empty() && {
        let mut seen: rustc_hash::FxHashSet<(Ustr, i64)> = rustc_hash::FxHashSet::default();
        accepted.iter().all(|&i| {
            let r = &data.labs[i];
            r.source_seq()
                .is_some_and(|q| seen.insert((r.subject_id, q)))
        })
    };
    let panel: Panel<'_, &str> = p
        .labs
        .iter()
        .enumerate()
        .map(|(i, t)| (t.code.as_str(), (i, t)))
        .collect();
    // The same, keyed by interned code for the per-record lookups.
    let panel_u: Panel<'_, Ustr> = panel.iter().map(|(k, v)| (Ustr::from(k), *v)).collect();
    let windows = &p.visits.windows;

    // Text made per record is interned through small caches: lab values, dates and visit names
    // repeat, and formatting a number costs more than looking it up.
    let mut text = TextCache::new();
    let stresc = |r: &LabRecord, text: &mut TextCache| -> Option<Ustr> {
        let dec = panel_u.get(&r.test_code).and_then(|(_, t)| t.decimals);
        match &r.result {
            ParsedResult::Numeric(_) => r.std_value.map(|x| text.value(x, dec, "")),
            ParsedResult::Censored(op, lim) => {
                let sign = match op {
                    crate::ingest::Censoring::Below => "<",
                    crate::ingest::Censoring::Above => ">",
                };
                r.std_limit()
                    .map(|x| text.value(x, dec, sign))
                    .or_else(|| (r.unit == r.std_unit).then(|| text.value(*lim, dec, sign)))
            }
            ParsedResult::Text(t) => Some(*t),
            ParsedResult::Missing | ParsedResult::NotDone => None,
        }
    };

    // SDTM LB: what its rows need beyond the records, kept so that the table is built a row
    // group at a time when it is written ([`SdtmLb::table`]). One pass over the accepted records
    // (each is read once, not once per column): LBSEQ, the reference range, LBSTRESC, USUBJID,
    // and the visit numbers and date texts met.
    let lb = {
        let n = accepted.len();
        let (mut acc_lbseq, mut acc_ranges) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut acc_stresc, mut acc_usubjid) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut counter: FxHashMap<Ustr, i64> = FxHashMap::default();
        let mut info_of = crate::group::LastKey::new(&subject_of);
        let mut visitnum: FxHashMap<Ustr, Option<f64>> = FxHashMap::default();
        let mut lbdtc: FxHashMap<NaiveDate, Ustr> = FxHashMap::default();
        for &i in &accepted {
            let x = &data.labs[i];
            let info = *info_of
                .get(x.subject_id)
                .expect("accepted records are of known subjects");
            let seq = if keep_source {
                x.source_seq()
            } else {
                let c = counter.entry(x.subject_id).or_insert(0);
                *c += 1;
                Some(*c)
            };
            lbseq[i] = seq;
            acc_lbseq.push(seq);
            acc_ranges.push(
                match panel_u.get(&x.test_code).and_then(|(_, t)| t.normal) {
                    Some(range) => range.for_sex(info.sex.as_deref()),
                    None => (x.std_ref_low, x.std_ref_high),
                },
            );
            acc_stresc.push(stresc(x, &mut text));
            acc_usubjid.push(info.usubjid);
            visitnum.entry(x.visit).or_insert_with(|| {
                windows
                    .iter()
                    .find(|w| w.name.eq_ignore_ascii_case(&x.visit))
                    .map(|w| w.number)
            });
            if let Some(d) = x.collection_date {
                lbdtc.entry(d).or_insert_with(|| Ustr::from(&d.to_string()));
            }
        }
        SdtmLb {
            study: Ustr::from(study),
            usubjid: acc_usubjid,
            lbseq: acc_lbseq,
            rows: accepted.clone(),
            ranges: acc_ranges,
            stresc: acc_stresc,
            visitnum,
            lbdtc,
            test_name: p
                .labs
                .iter()
                .map(|t| (Ustr::from(&t.code), Ustr::from(&t.name)))
                .collect(),
        }
    };
    laps.lap("SDTM LB table");
    // The ADLB chain is one core's work from start to end, so it runs here at once; writing SDTM
    // LB (its columns encoded in parallel) is left for the other core to take up, and this one
    // joins in when the chain is done. The other way round, the chain could wait for the whole
    // write while the other core is still busy elsewhere (validate's outputs, ADSL).
    let ((rows, flags, adrs), with_lb) = rayon::join(
        || {
            adlb_rows(
                lp,
                input,
                subjects,
                &subject_of,
                &accepted,
                &lbseq,
                &lb,
                (&panel, &panel_u),
                (&usubjid_rank, &files),
                laps,
            )
        },
        || with_lb(&lb),
    );
    ((lb, rows, flags, adrs), with_lb)
}

/// The lab panel by test code: each test's position in the panel and its definition.
type Panel<'a, K> = FxHashMap<K, (usize, &'a crate::spec::LabTest)>;

/// The ADLB rows made from the accepted lab records (`accepted`, in LBSEQ order, with the
/// LBSEQ, reference range and LBSTRESC SDTM LB gave each), the scores, baseline and change,
/// worst flags and LOCF rows, in ADLB order; the responder flags and ADRS.
#[allow(clippy::too_many_arguments)]
fn adlb_rows(
    lp: &LoadedPipeline,
    input: &DeriveInput<'_>,
    subjects: &BTreeMap<&str, SubjectInfo>,
    subject_of: &FxHashMap<Ustr, &SubjectInfo>,
    accepted: &[usize],
    lbseq: &[Option<i64>],
    lb: &SdtmLb,
    (panel, panel_u): (&Panel<'_, &str>, &Panel<'_, Ustr>),
    (usubjid_rank, files): (&FxHashMap<Ustr, u32>, &[Ustr]),
    mut laps: crate::timing::Laps,
) -> (Vec<AdlbRow>, Vec<crate::response::ResponseFlag>, Table) {
    let p = &lp.pipeline;
    let (data, v) = (input.data, input.validation);
    let windows = &p.visits.windows;
    let baseline_w = p.visits.baseline_index();
    // ADLB: numeric parameters of the panel, accepted records with a standard value.
    // PARAMCD, PARAM and AVALU per panel test, and window names, interned once.
    let param_text: Vec<(Ustr, Ustr, Ustr)> = p
        .labs
        .iter()
        .map(|t| {
            let param = match t.result {
                crate::spec::ResultKind::Numeric => format!("{} ({})", t.name, t.unit),
                crate::spec::ResultKind::Qualitative => t.name.clone(),
            };
            (Ustr::from(&t.code), Ustr::from(&param), Ustr::from(&t.unit))
        })
        .collect();
    let window_name: Vec<Ustr> = windows.iter().map(|w| Ustr::from(&w.name)).collect();
    let mut info_of = crate::group::LastKey::new(subject_of);
    let mut rows: Vec<AdlbRow> = Vec::with_capacity(accepted.len());
    for (k, &i) in accepted.iter().enumerate() {
        let r = &data.labs[i];
        let Some((pi, _)) = panel_u.get(&r.test_code).copied() else {
            continue;
        };
        if !r.has_value() {
            continue;
        }
        let s = *info_of
            .get(r.subject_id)
            .expect("accepted records are of known subjects");
        let pl = v.placement[i];
        let w = pl.window.map(|k| &windows[k as usize]);
        let (lo, hi) = lb.ranges[k];
        let (paramcd, param, avalu) = param_text[pi];
        let aval = r.std_value;
        rows.push(AdlbRow {
            usubjid: s.usubjid,
            subjid: r.subject_id,
            siteid: s.siteid,
            trtp: s.trtp,
            armcd: s.armcd,
            trta: s.trta,
            paramcd,
            param,
            paramn: pi as i64 + 1,
            aval,
            avalc: lb.stresc[k],
            avalu,
            adt: r.collection_date,
            ady: r.study_day,
            avisit: pl.window.map(|k| window_name[k as usize]),
            avisitn: w.map(|w| w.number),
            awtarget: w.map(|w| w.target),
            awlo: w.map(|w| w.low),
            awhi: w.map(|w| w.high),
            ablfl: (pl.selected && pl.window == Some(baseline_w as u32)).then_some(Y),
            base: None,
            chg: None,
            pchg: None,
            anrlo: lo,
            anrhi: hi,
            anrind: aval.and_then(|x| nrind(x, lo, hi)),
            bnrind: None,
            shift1: None,
            anl01fl: pl.selected.then_some(Y),
            worsthfl: None,
            worstlfl: None,
            dtype: None,
            lbseq: lbseq[i],
            srcfile: r.lineage.file,
            srcline: r.lineage.line as i64,
        });
    }
    laps.lap("ADLB rows");
    // Derived scores as their own parameters, from same-date standardized values.
    let scored = score_rows(lp, &rows, panel, subjects, input.assessments);
    // The ranks of the source files for the ADLB sort: the lab files and the scores' "(derived:
    // ...)" sources (LOCF rows repeat their record's).
    let file_rank = crate::group::ranks(
        files
            .iter()
            .copied()
            .chain(scored.iter().map(|r| r.srcfile)),
    );
    rows.extend(scored);

    laps.lap("scores");
    // Baseline, change, shift, worst flags per subject and parameter.
    // (Rows are sorted below by a total order, so the order groups are visited in is free.)
    let groups = crate::group::Groups::by(rows.len(), |k| Some((rows[k].usubjid, rows[k].paramcd)));
    // "BNRIND to ANRIND", made once per pair of indicators.
    let mut shift_text: FxHashMap<(NrInd, NrInd), Ustr> = FxHashMap::default();
    for idx in groups.iter() {
        let idx: Vec<usize> = idx.iter().map(|&k| k as usize).collect();
        let base = idx
            .iter()
            .find(|&&k| rows[k].ablfl.is_some())
            .map(|&k| (rows[k].aval, rows[k].anrind, rows[k].ady));
        let Some((base_val, base_ind, base_day)) = base else {
            continue;
        };
        let mut post: Vec<usize> = Vec::new();
        for &k in &idx {
            let row = &mut rows[k];
            row.base = base_val;
            row.bnrind = base_ind;
            let after = match (row.ady, base_day) {
                (Some(d), Some(b)) => d > b && row.ablfl.is_none(),
                _ => false,
            };
            if after {
                post.push(k);
                if let (Some(a), Some(b)) = (row.aval, base_val) {
                    row.chg = Some(a - b);
                    row.pchg = (b != 0.0).then(|| (a - b) / b * 100.0);
                }
                if let (Some(b), Some(a)) = (base_ind, row.anrind) {
                    row.shift1 = Some(*shift_text.entry((b, a)).or_insert_with(|| {
                        Ustr::from(&format!("{} to {}", b.as_str(), a.as_str()))
                    }));
                }
            }
        }
        // Worst post-baseline: highest and lowest AVAL; on ties the earliest record (rows are in
        // date, then source file and line order here).
        let pick = |cmp: &dyn Fn(f64, f64) -> bool| {
            let mut best: Option<usize> = None;
            for &k in &post {
                if let Some(a) = rows[k].aval
                    && best.is_none_or(|b| cmp(a, rows[b].aval.unwrap_or(f64::NAN)))
                {
                    best = Some(k);
                }
            }
            best
        };
        let (hi, lo) = (pick(&|a, b| a > b), pick(&|a, b| a < b));
        if let Some(k) = hi {
            rows[k].worsthfl = Some(Y);
        }
        if let Some(k) = lo {
            rows[k].worstlfl = Some(Y);
        }
    }
    // LOCF rows for post-baseline windows without an analysed record.
    if p.derive.missing_visits == MissingVisitPolicy::Locf {
        let mut extra = Vec::new();
        for idx in groups.iter() {
            let mut last: Option<&AdlbRow> = None;
            for (wi, w) in windows.iter().enumerate() {
                if wi == baseline_w || w.number <= windows[baseline_w].number {
                    continue;
                }
                let here = idx
                    .iter()
                    .map(|&k| &rows[k as usize])
                    .find(|r| r.anl01fl.is_some() && r.avisit.as_deref() == Some(&w.name));
                match (here, last) {
                    (Some(r), _) => last = Some(r),
                    (None, Some(prev)) => {
                        let mut c = prev.clone();
                        c.avisit = Some(Ustr::from(&w.name));
                        c.avisitn = Some(w.number);
                        c.awtarget = Some(w.target);
                        c.awlo = Some(w.low);
                        c.awhi = Some(w.high);
                        c.anl01fl = None;
                        c.worsthfl = None;
                        c.worstlfl = None;
                        c.dtype = Some(Dtype::Locf);
                        extra.push(c);
                    }
                    (None, None) => {}
                }
            }
        }
        rows.extend(extra);
    }
    laps.lap("baseline, change, worst, LOCF");
    // Sort an index, not the rows themselves (moving 1.8 million wide rows costs more than the
    // comparisons), by USUBJID, PARAMN, AVISITN, ADT, DTYPE, source file and line. USUBJID and
    // the file compare by rank (their order as strings): USUBJID's ranks are those of every
    // subject, made for SDTM LB, and a rank's order is the order of its strings whichever
    // others are ranked beside them. The row index last makes every key distinct, so the
    // unstable sort gives the order of a stable sort. One pass over the rows makes the keys.
    let mut subject_rank = crate::group::LastKey::new(usubjid_rank);
    let mut source_rank = crate::group::LastKey::new(&file_rank);
    let mut keyed: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(k, r)| {
            (
                *subject_rank
                    .get(r.usubjid)
                    .expect("ADLB rows are of ranked subjects"),
                r.paramn,
                r.avisitn.map(OrdF64),
                r.adt,
                r.dtype,
                *source_rank
                    .get(r.srcfile)
                    .expect("ADLB rows come from ranked sources"),
                r.srcline,
                k,
            )
        })
        .collect();
    rayon::slice::ParallelSliceMut::par_sort_unstable(&mut keyed[..]);
    let order: Vec<usize> = keyed.into_iter().map(|k| k.7).collect();
    crate::group::permute(&mut rows, order);
    laps.lap("sort ADLB");
    let flags = crate::response::evaluate(&p.responses, &rows, windows[baseline_w].number);
    let adrs = adrs_table(lp, &flags);
    laps.lap("responses, ADRS");
    (rows, flags, adrs)
}

/// ADLB rows of the clinical scores the pipeline asks for (`[derive] scores`), one per subject
/// and date on which every input has an analysis value, placed in windows and selected by the
/// window rule like any parameter. `HYSLAW` rows exist on post-baseline dates only (study day
/// after the baseline window's last day) and only where the criterion is decided.
fn score_rows(
    lp: &LoadedPipeline,
    rows: &[AdlbRow],
    panel: &FxHashMap<&str, (usize, &crate::spec::LabTest)>,
    subjects: &BTreeMap<&str, SubjectInfo>,
    assessments: &crate::assessments::AssessmentIndex,
) -> Vec<AdlbRow> {
    let p = &lp.pipeline;
    if p.derive.scores.is_empty() {
        return Vec::new();
    }
    // Each test's registry with the conversions the pipeline declares for it, as ingest uses.
    let regs: FxHashMap<&str, crate::units::Registry> = panel
        .iter()
        .map(|(code, (_, t))| (*code, t.registry_or_builtin()))
        .collect();
    // Value of `code` converted from its standard unit to `unit`.
    let conv = |code: &str, v: f64, unit: &str| -> Option<f64> {
        let (_, t) = panel.get(code)?;
        regs[code].conversion(code, &t.unit, unit).ok()?.apply(v)
    };
    // (usubjid, date) -> code -> (value, template row)
    type ByCode<'r> = BTreeMap<String, (f64, &'r AdlbRow)>;
    let mut by_date: BTreeMap<(String, NaiveDate), ByCode> = BTreeMap::new();
    for r in rows {
        if let (Some(adt), Some(v)) = (r.adt, r.aval) {
            by_date
                .entry((r.usubjid.to_string(), adt))
                .or_default()
                .entry(r.paramcd.to_string())
                .or_insert((v, r));
        }
    }
    let windows = &p.visits.windows;
    let baseline_w = p.visits.baseline_index();
    let baseline_end = windows.get(baseline_w).map_or(1, |w| i64::from(w.high));
    let in_panel = |code: &str| panel.contains_key(code);
    let match_days = p.inputs.assessments.as_ref().map_or(0, |a| a.match_days);
    let mut out: Vec<AdlbRow> = Vec::new();
    for ((_, adt), vals) in &by_date {
        let get = |code: &str, unit: &str| vals.get(code).and_then(|(v, _)| conv(code, *v, unit));
        // Value as a multiple of the record's upper limit of normal (sex-specific when declared).
        let xuln = |code: &str| {
            vals.get(code)
                .and_then(|(v, r)| r.anrhi.filter(|h| *h > 0.0).map(|h| v / h))
        };
        let Some((_, template)) = vals.values().next() else {
            continue;
        };
        let subject = subjects.get(template.subjid.as_str());
        for (k, score) in p.derive.scores.iter().enumerate() {
            // (AVAL, AVALC)
            let num = |v: f64, decimals: u32| (v, fmt_value(v, Some(decimals)));
            let value: Option<(f64, String)> = match score.as_str() {
                "MELD" => match (
                    get("CREAT", "mg/dL"),
                    get("BILI", "mg/dL"),
                    get("INR", "ratio"),
                ) {
                    (Some(c), Some(b), Some(i)) => crate::scores::meld(c, b, i).ok(),
                    _ => None,
                }
                .map(|v| num(v, 0)),
                "MELDNA" => match (
                    get("CREAT", "mg/dL"),
                    get("BILI", "mg/dL"),
                    get("INR", "ratio"),
                    get("SODIUM", "mmol/L"),
                ) {
                    (Some(c), Some(b), Some(i), Some(n)) => crate::scores::meld_na(c, b, i, n).ok(),
                    _ => None,
                }
                .map(|v| num(v, 0)),
                "ALBI" | "ALBIGR" => match (get("BILI", "umol/L"), get("ALB", "g/L")) {
                    (Some(b), Some(a)) => crate::scores::albi(b, a).ok().map(|s| {
                        if score == "ALBIGR" {
                            num(f64::from(crate::scores::albi_grade(s)), 0)
                        } else {
                            num(s, 2)
                        }
                    }),
                    _ => None,
                },
                "APRI" => {
                    // AST and its ULN are both in the standard unit, so the ratio needs no
                    // conversion.
                    let ast = vals.get("AST").and_then(|(v, r)| Some((*v, r.anrhi?)));
                    match (ast, get("PLAT", "10^9/L")) {
                        (Some((a, uln)), Some(plt)) => crate::scores::apri(a, uln, plt).ok(),
                        _ => None,
                    }
                    .map(|v| num(v, 2))
                }
                "FIB4" => {
                    // Age at the date: age at randomization plus the years since.
                    let age = subject
                        .and_then(|s| Some(s.age? + (*adt - s.randdt?).num_days() as f64 / 365.25));
                    match (
                        age,
                        get("AST", "U/L"),
                        get("ALT", "U/L"),
                        get("PLAT", "10^9/L"),
                    ) {
                        (Some(y), Some(ast), Some(alt), Some(plt)) => {
                            crate::scores::fib4(y, ast, alt, plt).ok()
                        }
                        _ => None,
                    }
                    .map(|v| num(v, 2))
                }
                "CPS" | "CPSCL" => {
                    let grades = crate::assessments::matching(
                        assessments,
                        &template.subjid,
                        *adt,
                        match_days,
                    )
                    .and_then(|a| Some((a.ascites?, a.encephalopathy?)));
                    match (
                        get("BILI", "mg/dL"),
                        get("ALB", "g/dL"),
                        get("INR", "ratio"),
                        grades,
                    ) {
                        (Some(b), Some(a), Some(i), Some((asc, enc))) => crate::scores::child_pugh(
                            b,
                            a,
                            crate::scores::Coagulation::Inr(i),
                            asc,
                            enc,
                        )
                        .ok(),
                        _ => None,
                    }
                    .map(|s| {
                        if score == "CPS" {
                            num(f64::from(s), 0)
                        } else {
                            let c = crate::scores::child_pugh_class(s);
                            (f64::from(c as u8 - b'A' + 1), c.to_string())
                        }
                    })
                }
                "HYSLAW" => {
                    let post = template.ady.is_some_and(|d| d > baseline_end);
                    let amino: Vec<Option<f64>> = ["ALT", "AST"]
                        .into_iter()
                        .filter(|c| in_panel(c))
                        .map(xuln)
                        .collect();
                    post.then(|| {
                        crate::scores::hys_law(
                            &amino,
                            xuln("BILI"),
                            xuln("ALP"),
                            p.derive.hyslaw_alp,
                        )
                    })
                    .flatten()
                    .map(|y| {
                        if y {
                            (1.0, "Y".into())
                        } else {
                            (0.0, "N".into())
                        }
                    })
                }
                _ => None,
            };
            let Some((aval, avalc)) = value else { continue };
            let w = template
                .ady
                .and_then(|d| crate::windows::window_of(d, windows));
            out.push(AdlbRow {
                paramcd: Ustr::from(score),
                param: Ustr::from(score_param(score, p.derive.hyslaw_alp)),
                paramn: (panel.len() + k + 1) as i64,
                aval: Some(aval),
                avalc: Some(Ustr::from(&avalc)),
                avalu: "1".into(),
                avisit: w.map(|i| Ustr::from(&windows[i].name)),
                avisitn: w.map(|i| windows[i].number),
                awtarget: w.map(|i| windows[i].target),
                awlo: w.map(|i| windows[i].low),
                awhi: w.map(|i| windows[i].high),
                ablfl: None,
                base: None,
                chg: None,
                pchg: None,
                anrlo: None,
                anrhi: None,
                anrind: None,
                bnrind: None,
                shift1: None,
                anl01fl: None,
                worsthfl: None,
                worstlfl: None,
                dtype: None,
                lbseq: None,
                srcfile: Ustr::from(&format!(
                    "(derived: {})",
                    score_inputs(score, &in_panel, p.derive.hyslaw_alp)
                )),
                srcline: 0,
                ..(*template).clone()
            });
        }
    }
    // The window rule picks one record per subject, score and window.
    let mut cells: BTreeMap<(String, String, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in out.iter().enumerate() {
        if let Some(v) = &r.avisit {
            cells
                .entry((r.usubjid.to_string(), r.paramcd.to_string(), v.to_string()))
                .or_default()
                .push(i);
        }
    }
    for ((_, _, visit), idx) in cells {
        let Some(wi) = windows.iter().position(|w| w.name == visit) else {
            continue;
        };
        let cands: Vec<crate::windows::Candidate> = idx
            .iter()
            .map(|&i| crate::windows::Candidate {
                day: out[i].ady.unwrap_or(0),
                order: i,
            })
            .collect();
        if let Some(k) = crate::windows::select(&cands, &windows[wi], p.visits.rule, p.visits.tie) {
            let i = idx[k];
            out[i].anl01fl = Some(Y);
            if wi == baseline_w {
                out[i].ablfl = Some(Y);
            }
        }
    }
    out
}

/// PARAM of a score.
fn score_param(score: &str, alp: crate::scores::HysLawAlp) -> &'static str {
    match score {
        "MELD" => "MELD Score (UNOS)",
        "MELDNA" => "MELD-Na Score (UNOS 2016)",
        "ALBI" => "ALBI Score",
        "ALBIGR" => "ALBI Grade",
        "APRI" => "AST to Platelet Ratio Index",
        "FIB4" => "Fibrosis-4 Index",
        "CPS" => "Child-Pugh Score",
        "CPSCL" => "Child-Pugh Class",
        _ => match alp {
            crate::scores::HysLawAlp::NotApplied => {
                "Hy's Law: ALT or AST >= 3xULN and BILI >= 2xULN"
            }
            crate::scores::HysLawAlp::Below2Uln => {
                "Hy's Law: ALT or AST >= 3xULN, BILI >= 2xULN, ALP < 2xULN"
            }
        },
    }
}

/// The inputs a score row names in `SRCFILE`.
fn score_inputs(
    score: &str,
    in_panel: &dyn Fn(&str) -> bool,
    alp: crate::scores::HysLawAlp,
) -> String {
    let mut v: Vec<&str> = crate::scores::needs(score).unwrap_or(&[]).to_vec();
    match score {
        "FIB4" => v.push("age"),
        "CPS" | "CPSCL" => v.extend(["ascites", "encephalopathy"]),
        "HYSLAW" => {
            v.extend(["ALT", "AST"].into_iter().filter(|c| in_panel(c)));
            if alp == crate::scores::HysLawAlp::Below2Uln {
                v.push("ALP");
            }
        }
        _ => {}
    }
    v.sort_by_key(|c| (c.chars().next().is_some_and(char::is_lowercase), *c));
    v.join(", ")
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF64(f64);
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Column names and labels of the stratification factors, in the order of
/// `inputs.subjects.strata` (at most nine; `spec::check` enforces it).
pub const STRATA: [(&str, &str); 9] = [
    ("STRAT1", "Stratification Factor 1"),
    ("STRAT2", "Stratification Factor 2"),
    ("STRAT3", "Stratification Factor 3"),
    ("STRAT4", "Stratification Factor 4"),
    ("STRAT5", "Stratification Factor 5"),
    ("STRAT6", "Stratification Factor 6"),
    ("STRAT7", "Stratification Factor 7"),
    ("STRAT8", "Stratification Factor 8"),
    ("STRAT9", "Stratification Factor 9"),
];

/// Text columns holding codes are written as categoricals (dictionary strings for Arrow).
fn cat(c: ColumnData) -> ColumnData {
    match c {
        ColumnData::Str(v) => ColumnData::Cat(v),
        other => other,
    }
}

fn col(name: &'static str, label: &'static str, data: ColumnData) -> Column {
    Column { name, label, data }
}

/// The ADLB dataset of the typed rows (built when it is written, so that the table and the large
/// SDTM LB are not in memory together).
pub fn adlb_table(study: &str, rows: &[AdlbRow]) -> Table {
    // One pass over the rows fills every column: each wide row is read once, not once per
    // column. Text columns hold the rows' interned values; fixed codes are interned once.
    let text = TextCache::new();
    let flag = |t: Option<&'static str>| t.map(|t| text.fixed(t));
    let study = Ustr::from(study);
    let n = rows.len();
    // Text, numbers and integers, each in the order of its columns below.
    let mut s: [Vec<Option<Ustr>>; 21] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut f: [Vec<Option<f64>>; 7] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut i: [Vec<Option<i64>>; 7] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut adt = Vec::with_capacity(n);
    for r in rows {
        let text_values = [
            Some(study),
            Some(r.usubjid),
            Some(r.subjid),
            Some(r.siteid),
            r.armcd,
            r.trtp,
            r.trta,
            Some(r.paramcd),
            Some(r.param),
            r.avalc,
            Some(r.avalu),
            r.avisit,
            flag(r.ablfl.map(Y::as_str)),
            flag(r.anrind.map(NrInd::as_str)),
            flag(r.bnrind.map(NrInd::as_str)),
            r.shift1,
            flag(r.anl01fl.map(Y::as_str)),
            flag(r.worsthfl.map(Y::as_str)),
            flag(r.worstlfl.map(Y::as_str)),
            flag(r.dtype.map(Dtype::as_str)),
            Some(r.srcfile),
        ];
        for (c, v) in s.iter_mut().zip(text_values) {
            c.push(v);
        }
        let numbers = [r.aval, r.avisitn, r.base, r.chg, r.pchg, r.anrlo, r.anrhi];
        for (c, v) in f.iter_mut().zip(numbers) {
            c.push(v);
        }
        let integers = [
            Some(r.paramn),
            r.ady,
            r.awtarget.map(i64::from),
            r.awlo.map(i64::from),
            r.awhi.map(i64::from),
            r.lbseq,
            Some(r.srcline),
        ];
        for (c, v) in i.iter_mut().zip(integers) {
            c.push(v);
        }
        adt.push(r.adt);
    }
    let [
        studyid,
        usubjid,
        subjid,
        siteid,
        armcd,
        trtp,
        trta,
        paramcd,
        param,
        avalc,
        avalu,
        avisit,
        ablfl,
        anrind,
        bnrind,
        shift1,
        anl01fl,
        worsthfl,
        worstlfl,
        dtype,
        srcfile,
    ] = s.map(|v| ColumnData::Str(v.into_iter().collect()));
    let [aval, avisitn, base, chg, pchg, anrlo, anrhi] = f.map(ColumnData::F64);
    let [paramn, ady, awtarget, awlo, awhi, lbseq, srcline] = i.map(ColumnData::I64);
    Table {
        columns: vec![
            col("STUDYID", "Study Identifier", studyid),
            col("USUBJID", "Unique Subject Identifier", usubjid),
            col("SUBJID", "Subject Identifier for the Study", subjid),
            col("SITEID", "Study Site Identifier", siteid),
            col("ARMCD", "Planned Arm Code", cat(armcd)),
            col("TRTP", "Planned Treatment", cat(trtp)),
            col("TRTA", "Actual Treatment", cat(trta)),
            col("PARAMCD", "Parameter Code", cat(paramcd)),
            col("PARAM", "Parameter", cat(param)),
            col("PARAMN", "Parameter (N)", paramn),
            col("AVAL", "Analysis Value", aval),
            col("AVALC", "Analysis Value (C)", avalc),
            col("AVALU", "Analysis Value Unit", avalu),
            col("ADT", "Analysis Date", ColumnData::Date(adt)),
            col("ADY", "Analysis Relative Day", ady),
            col("AVISIT", "Analysis Visit", cat(avisit)),
            col("AVISITN", "Analysis Visit (N)", avisitn),
            col("AWTARGET", "Analysis Window Target", awtarget),
            col("AWLO", "Analysis Window Beginning Timepoint", awlo),
            col("AWHI", "Analysis Window Ending Timepoint", awhi),
            col("ABLFL", "Baseline Record Flag", ablfl),
            col("BASE", "Baseline Value", base),
            col("CHG", "Change from Baseline", chg),
            col("PCHG", "Percent Change from Baseline", pchg),
            col("ANRLO", "Analysis Normal Range Lower Limit", anrlo),
            col("ANRHI", "Analysis Normal Range Upper Limit", anrhi),
            col("ANRIND", "Analysis Reference Range Indicator", anrind),
            col("BNRIND", "Baseline Reference Range Indicator", bnrind),
            col("SHIFT1", "Shift 1 (Baseline to Analysis)", shift1),
            col(
                "ANL01FL",
                "Analysis Flag 01 (Selected by Window Rule)",
                anl01fl,
            ),
            col("WORSTHFL", "Worst (Highest) Post-baseline Flag", worsthfl),
            col("WORSTLFL", "Worst (Lowest) Post-baseline Flag", worstlfl),
            col("DTYPE", "Derivation Type", dtype),
            col("LBSEQ", "Sequence Number (SDTM LB)", lbseq),
            col("SRCFILE", "Source File", srcfile),
            col("SRCLINE", "Source Line", srcline),
        ],
    }
}

fn adrs_table(lp: &LoadedPipeline, flags: &[crate::response::ResponseFlag]) -> Table {
    let p = &lp.pipeline;
    let desc: HashMap<&str, &str> = p
        .responses
        .iter()
        .map(|r| (r.id.as_str(), r.description.as_str()))
        .collect();
    let s = |f: &dyn Fn(&crate::response::ResponseFlag) -> Option<String>| {
        ColumnData::Str(flags.iter().map(f).collect())
    };
    Table {
        columns: vec![
            col(
                "STUDYID",
                "Study Identifier",
                s(&|_| Some(p.study.id.clone())),
            ),
            col(
                "USUBJID",
                "Unique Subject Identifier",
                s(&|r| Some(r.usubjid.clone())),
            ),
            col("ARMCD", "Planned Arm Code", cat(s(&|r| r.armcd.clone()))),
            col("TRTP", "Planned Treatment", cat(s(&|r| r.trtp.clone()))),
            col(
                "PARAMCD",
                "Parameter Code (Response Rule Id)",
                cat(s(&|r| Some(r.id.clone()))),
            ),
            col(
                "PARAM",
                "Parameter (Response Rule Description)",
                cat(s(&|r| desc.get(r.id.as_str()).map(|d| d.to_string()))),
            ),
            col(
                "AVISIT",
                "Analysis Visit",
                cat(s(&|r| Some(r.avisit.clone()))),
            ),
            col(
                "AVISITN",
                "Analysis Visit (N)",
                ColumnData::F64(flags.iter().map(|r| Some(r.avisitn)).collect()),
            ),
            col(
                "AVALC",
                "Responder (Y/N, null when the data cannot show it)",
                s(&|r| r.value.map(|b| if b { "Y".into() } else { "N".into() })),
            ),
            col(
                "AVAL",
                "Responder (1/0)",
                ColumnData::F64(
                    flags
                        .iter()
                        .map(|r| r.value.map(|b| if b { 1.0 } else { 0.0 }))
                        .collect(),
                ),
            ),
            col("DETAIL", "Values Used", s(&|r| Some(r.detail.clone()))),
            col("ERROR", "Evaluation Error", s(&|r| r.error.clone())),
        ],
    }
}

struct EventDates {
    death: Option<NaiveDate>,
    transplant: Option<NaiveDate>,
    withdrawal: Option<NaiveDate>,
    last_contact: Option<NaiveDate>,
}

/// The first subjects-file row of each subject id.
fn first_records<'a>(
    input: &DeriveInput<'a>,
) -> FxHashMap<&'a str, &'a crate::ingest::SubjectRecord> {
    let mut out = FxHashMap::default();
    for s in &input.data.subjects {
        out.entry(s.subject_id.as_str()).or_insert(s);
    }
    out
}

fn event_dates<'a>(input: &DeriveInput<'a>) -> FxHashMap<&'a str, EventDates> {
    let mut out: FxHashMap<&'a str, EventDates> = FxHashMap::default();
    let min = |a: Option<NaiveDate>, b: NaiveDate| Some(a.map_or(b, |a| a.min(b)));
    let max = |a: Option<NaiveDate>, b: NaiveDate| Some(a.map_or(b, |a| a.max(b)));
    for (e, d) in input.data.events.iter().zip(&input.validation.events) {
        let (true, Some(date)) = (d.accepted(), e.event_date) else {
            continue;
        };
        let x = out.entry(e.subject_id.as_str()).or_insert(EventDates {
            death: None,
            transplant: None,
            withdrawal: None,
            last_contact: None,
        });
        match e.event.as_str() {
            "DEATH" => x.death = min(x.death, date),
            "TRANSPLANT" => x.transplant = min(x.transplant, date),
            "WITHDRAWAL" => x.withdrawal = min(x.withdrawal, date),
            _ => {}
        }
        x.last_contact = max(x.last_contact, date);
    }
    // Any accepted lab collection is contact too, also for subjects without events. A subject's
    // records mostly come in a run: the latest date of the run is kept and entered once.
    let mut enter = |id: Ustr, date: NaiveDate| {
        let x = out.entry(id.as_str()).or_insert(EventDates {
            death: None,
            transplant: None,
            withdrawal: None,
            last_contact: None,
        });
        x.last_contact = max(x.last_contact, date);
    };
    let mut run: Option<(Ustr, NaiveDate)> = None;
    for (r, d) in input.data.labs.iter().zip(&input.validation.labs) {
        if let (true, Some(date)) = (d.accepted(), r.collection_date) {
            run = match run {
                Some((id, latest)) if id == r.subject_id => Some((id, latest.max(date))),
                Some((id, latest)) => {
                    enter(id, latest);
                    Some((r.subject_id, date))
                }
                None => Some((r.subject_id, date)),
            };
        }
    }
    if let Some((id, latest)) = run {
        enter(id, latest);
    }
    out
}

fn adsl_table(
    lp: &LoadedPipeline,
    input: &DeriveInput<'_>,
    subjects: &BTreeMap<&str, SubjectInfo>,
    ev: &FxHashMap<&str, EventDates>,
    first: &FxHashMap<&str, &crate::ingest::SubjectRecord>,
) -> Table {
    let p = &lp.pipeline;
    // Interned, as the closures below must return text that lives as long as any row does.
    let study = Ustr::from(&p.study.id).as_str();
    let elig: FxHashMap<&str, &SubjectEligibility> = input
        .validation
        .eligibility
        .iter()
        .map(|e| (e.subject_id.as_str(), e))
        .collect();
    // Each subject's record, derived facts, event dates and eligibility, looked up once; the
    // columns below borrow their text from these instead of making a string per cell.
    struct Subject<'a> {
        r: &'a crate::ingest::SubjectRecord,
        info: &'a SubjectInfo,
        ev: Option<&'a EventDates>,
        verdict: Option<EligVerdict>,
    }
    let recs: Vec<Subject<'_>> = subjects
        .iter()
        .filter_map(|(id, info)| {
            let r = first.get(id).copied()?;
            Some(Subject {
                r,
                info,
                ev: ev.get(r.subject_id.as_str()),
                verdict: elig.get(r.subject_id.as_str()).map(|e| e.verdict),
            })
        })
        .collect();
    let s = |f: &dyn for<'x> Fn(&'x Subject<'_>) -> Option<&'x str>| {
        ColumnData::Str(recs.iter().map(f).collect())
    };
    let d = |f: &dyn Fn(&Subject<'_>) -> Option<NaiveDate>| {
        ColumnData::Date(recs.iter().map(f).collect())
    };
    fn y(b: bool) -> Option<&'static str> {
        b.then_some("Y")
    }
    fn arm_of(x: &Subject<'_>) -> Option<&'static str> {
        x.info.armcd.map(|a| a.as_str())
    }
    fn dosed(x: &Subject<'_>) -> bool {
        x.r.doses_received.is_some_and(|n| n > 0) || x.r.first_dose_date.is_some()
    }
    fn randomized(x: &Subject<'_>) -> Option<&'static str> {
        y(arm_of(x).is_some() && x.r.randomization_date.is_some())
    }
    let mut columns = vec![
        col("STUDYID", "Study Identifier", s(&|_| Some(study))),
        col(
            "USUBJID",
            "Unique Subject Identifier",
            s(&|x| Some(x.info.usubjid.as_str())),
        ),
        col(
            "SUBJID",
            "Subject Identifier for the Study",
            s(&|x| Some(x.r.subject_id.as_str())),
        ),
        col(
            "SITEID",
            "Study Site Identifier",
            s(&|x| Some(x.r.site_id.as_str())),
        ),
        col("ARMCD", "Planned Arm Code", cat(s(&|x| arm_of(x)))),
        col(
            "ARM",
            "Description of Planned Arm",
            s(&|x| x.info.trtp.map(|t| t.as_str())),
        ),
        col(
            "TRT01P",
            "Planned Treatment for Period 01",
            s(&|x| x.info.trtp.map(|t| t.as_str())),
        ),
        col(
            "TRT01A",
            "Actual Treatment for Period 01",
            s(&|x| x.info.trta.map(|t| t.as_str())),
        ),
        col(
            "RANDDT",
            "Date of Randomization",
            d(&|x| x.r.randomization_date),
        ),
        col(
            "RFICDT",
            "Date of Informed Consent",
            d(&|x| x.r.consent_date),
        ),
        col(
            "TRTSDT",
            "Date of First Exposure to Treatment",
            d(&|x| x.r.first_dose_date),
        ),
        col(
            "DOSES",
            "Number of Doses Received",
            ColumnData::I64(recs.iter().map(|x| x.r.doses_received).collect()),
        ),
        col(
            "AGE",
            "Age",
            ColumnData::F64(recs.iter().map(|x| x.r.age).collect()),
        ),
        col("AGEU", "Age Units", s(&|x| x.r.age.map(|_| "YEARS"))),
        col("SEX", "Sex", cat(s(&|x| x.r.sex.as_deref()))),
    ];
    for (k, st) in p
        .inputs
        .subjects
        .strata
        .iter()
        .enumerate()
        .take(STRATA.len())
    {
        columns.push(col(
            STRATA[k].0,
            STRATA[k].1,
            s(&|x| x.r.strata.get(st).map(String::as_str)),
        ));
    }
    columns.extend([
        col(
            "RANDFL",
            "Randomized Population Flag",
            s(&|x| randomized(x)),
        ),
        col(
            "ITTFL",
            "Intent-To-Treat Population Flag",
            s(&|x| randomized(x)),
        ),
        col(
            "SAFFL",
            "Safety Population Flag (Received Any Dose)",
            s(&|x| y(arm_of(x).is_some() && dosed(x))),
        ),
        col(
            "ELIGFL",
            "Eligibility Criteria Met Flag",
            s(&|x| match x.verdict {
                Some(EligVerdict::Eligible) => Some("Y"),
                Some(EligVerdict::Ineligible) => Some("N"),
                _ => None,
            }),
        ),
        col("DTHDT", "Date of Death", d(&|x| x.ev.and_then(|e| e.death))),
        col(
            "DTHFL",
            "Subject Death Flag",
            s(&|x| y(x.ev.and_then(|e| e.death).is_some())),
        ),
        col(
            "TRANSDT",
            "Date of Liver Transplant",
            d(&|x| x.ev.and_then(|e| e.transplant)),
        ),
        col(
            "WDDT",
            "Date of Withdrawal",
            d(&|x| x.ev.and_then(|e| e.withdrawal)),
        ),
        col(
            "LSTCNDT",
            "Date of Last Contact",
            d(&|x| x.ev.and_then(|e| e.last_contact)),
        ),
    ]);
    Table { columns }
}

/// One ADTTE row, kept typed for the analyses.
#[derive(Debug, Clone, PartialEq)]
pub struct TteRow {
    /// USUBJID.
    pub usubjid: String,
    /// Planned arm code.
    pub armcd: Option<String>,
    /// Planned treatment.
    pub trtp: Option<String>,
    /// Endpoint code (OS, TFS, or a `tte` input's paramcd).
    pub paramcd: String,
    /// Endpoint description.
    pub param: String,
    /// Origin (the reference date).
    pub startdt: Option<NaiveDate>,
    /// Event or censoring date, when known.
    pub adt: Option<NaiveDate>,
    /// Time in days.
    pub aval: f64,
    /// 0 event, 1 censored.
    pub cnsr: i64,
    /// Event description.
    pub evntdesc: Option<String>,
    /// Censoring description.
    pub cnsdtdsc: Option<String>,
    /// Stratification factors by column name (the subject's, shared).
    pub strata: crate::ingest::Strata,
}

fn adtte_rows(
    lp: &LoadedPipeline,
    input: &DeriveInput<'_>,
    subjects: &BTreeMap<&str, SubjectInfo>,
    ev: &FxHashMap<&str, EventDates>,
    first: &FxHashMap<&str, &crate::ingest::SubjectRecord>,
) -> Vec<TteRow> {
    let mut rows = Vec::new();
    // OS and TFS come from an events file; without one there is nothing to derive them from.
    let has_events = lp
        .pipeline
        .inputs
        .events
        .as_ref()
        .is_some_and(|e| e.layout == crate::spec::EventsLayout::Events);
    for (id, info) in subjects.iter().filter(|_| has_events) {
        let Some(rec) = first.get(id).copied() else {
            continue;
        };
        let (Some(start), Some(e)) = (rec.reference_date, ev.get(*id)) else {
            continue;
        };
        let Some(last) = e.last_contact else { continue };
        let base = |paramcd: &str,
                    param: &str,
                    adt: NaiveDate,
                    cnsr,
                    evntdesc: Option<&str>,
                    cnsdtdsc: Option<&str>| TteRow {
            usubjid: info.usubjid.to_string(),
            armcd: info.armcd.map(|x| x.to_string()),
            trtp: info.trtp.map(|x| x.to_string()),
            paramcd: paramcd.to_string(),
            param: param.to_string(),
            startdt: Some(start),
            adt: Some(adt),
            aval: ((adt - start).num_days() + 1) as f64,
            cnsr,
            evntdesc: evntdesc.map(str::to_string),
            cnsdtdsc: cnsdtdsc.map(str::to_string),
            strata: rec.strata.clone(),
        };
        // Overall survival: death, else censored at last contact.
        rows.push(match e.death {
            Some(d) => base("OS", "Overall Survival (days)", d, 0, Some("DEATH"), None),
            None => base(
                "OS",
                "Overall Survival (days)",
                last,
                1,
                None,
                Some("LAST CONTACT"),
            ),
        });
        // Transplant-free survival: the first of death and transplant.
        let first = match (e.death, e.transplant) {
            (Some(d), Some(t)) if t <= d => Some((t, "TRANSPLANT")),
            (Some(d), _) => Some((d, "DEATH")),
            (None, Some(t)) => Some((t, "TRANSPLANT")),
            (None, None) => None,
        };
        rows.push(match first {
            Some((d, what)) => base(
                "TFS",
                "Transplant-free Survival (days)",
                d,
                0,
                Some(what),
                None,
            ),
            None => base(
                "TFS",
                "Transplant-free Survival (days)",
                last,
                1,
                None,
                Some("LAST CONTACT"),
            ),
        });
    }
    // Endpoints given as time and status columns (`tte` layout).
    for (t, disp) in input.data.tte.iter().zip(&input.validation.tte) {
        let (true, Some(info), Some(time), Some(event)) = (
            disp.accepted(),
            subjects.get(t.subject_id.as_str()),
            t.time_days,
            t.event,
        ) else {
            continue;
        };
        let rec = first.get(t.subject_id.as_str()).copied();
        let start = rec.and_then(|r| r.reference_date);
        rows.push(TteRow {
            usubjid: info.usubjid.to_string(),
            armcd: info.armcd.map(|x| x.to_string()),
            trtp: info.trtp.map(|x| x.to_string()),
            paramcd: t.paramcd.clone(),
            param: format!("{} (days)", t.paramcd),
            startdt: start,
            adt: start.and_then(|s| {
                s.checked_add_signed(chrono::TimeDelta::days(time.ceil() as i64 - 1))
            }),
            aval: time,
            cnsr: if event { 0 } else { 1 },
            evntdesc: event.then(|| format!("{} EVENT (status {})", t.paramcd, t.status_raw)),
            cnsdtdsc: (!event).then(|| format!("CENSORED (status {})", t.status_raw)),
            strata: rec.map(|r| r.strata.clone()).unwrap_or_default(),
        });
    }
    rows.sort_by(|a, b| (&a.usubjid, &a.paramcd).cmp(&(&b.usubjid, &b.paramcd)));
    rows
}

fn adtte_table(lp: &LoadedPipeline, rows: &[TteRow]) -> Table {
    let p = &lp.pipeline;
    // Interned, as the closures below must return text that lives as long as any row does.
    let study = Ustr::from(&p.study.id).as_str();
    // Text borrowed from the rows: no string made per cell.
    let s = |f: &dyn for<'x> Fn(&'x TteRow) -> Option<&'x str>| {
        ColumnData::Str(rows.iter().map(f).collect())
    };
    let mut columns = vec![
        col("STUDYID", "Study Identifier", s(&|_| Some(study))),
        col(
            "USUBJID",
            "Unique Subject Identifier",
            s(&|r| Some(r.usubjid.as_str())),
        ),
        col("ARMCD", "Planned Arm Code", cat(s(&|r| r.armcd.as_deref()))),
        col("TRTP", "Planned Treatment", cat(s(&|r| r.trtp.as_deref()))),
        col(
            "PARAMCD",
            "Parameter Code",
            cat(s(&|r| Some(r.paramcd.as_str()))),
        ),
        col("PARAM", "Parameter", cat(s(&|r| Some(r.param.as_str())))),
        col(
            "STARTDT",
            "Time to Event Origin Date (Reference Date)",
            ColumnData::Date(rows.iter().map(|r| r.startdt).collect()),
        ),
        col(
            "ADT",
            "Analysis Date (Event or Censoring)",
            ColumnData::Date(rows.iter().map(|r| r.adt).collect()),
        ),
        col(
            "AVAL",
            "Analysis Value (Days, ADT - STARTDT + 1)",
            ColumnData::F64(rows.iter().map(|r| Some(r.aval)).collect()),
        ),
        col("AVALU", "Analysis Value Unit", cat(s(&|_| Some("DAYS")))),
        col(
            "CNSR",
            "Censor (0 = Event, 1 = Censored)",
            ColumnData::I64(rows.iter().map(|r| Some(r.cnsr)).collect()),
        ),
        col(
            "EVNTDESC",
            "Event Description",
            s(&|r| r.evntdesc.as_deref()),
        ),
        col(
            "CNSDTDSC",
            "Censor Date Description",
            s(&|r| r.cnsdtdsc.as_deref()),
        ),
    ];
    for (k, st) in p
        .inputs
        .subjects
        .strata
        .iter()
        .enumerate()
        .take(STRATA.len())
    {
        columns.push(col(
            STRATA[k].0,
            STRATA[k].1,
            s(&|r| r.strata.get(st).map(String::as_str)),
        ));
    }
    Table { columns }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ADLB holds a row per lab record (millions in a large trial) at once: its size is part of
    /// the memory budget of `derive` (`docs/benchmarks.md`).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_adlb_row_stays_small() {
        assert_eq!(std::mem::size_of::<AdlbRow>(), 304);
        assert_eq!(std::mem::size_of::<Option<Y>>(), 1);
        assert_eq!(std::mem::size_of::<Option<NrInd>>(), 1);
    }
}
