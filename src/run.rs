//! The pipeline runner: the only place that knows the order of the stages, the output directory
//! and the manifest.
//!
//! `run` checks the pipeline file, runs every stage that exists in order, writes each stage's
//! outputs atomically, and finishes with `manifest.json`: tool version, pipeline SHA-256, every
//! input file with size and SHA-256, every output with SHA-256, rows read per file and per stage,
//! start and end time, and exit status. Stages built so far: ingest, validate, derive and analyze
//! (see [`Stage::BUILT`]); the report stage plugs in here when it is built. A run takes the output
//! directory's lock and does nothing when its inputs, pipeline file and tool version are unchanged
//! since the last successful run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ingest::{self, IngestError, IngestOutput};
use crate::spec::{self, FileCheck, LoadedPipeline, Problem};
use crate::store::{self, ColumnData, FileRecord, StoreError, Table};
use crate::timing::timed;
use crate::validate::{self, ValidationOutput, Verdict};

/// The stages in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Raw exports → standardized records.
    Ingest,
    /// Rules, findings, quarantine.
    Validate,
    /// SDTM and ADaM datasets.
    Derive,
    /// Arm comparisons.
    Analyze,
    /// HTML report.
    Report,
}

impl Stage {
    /// Stages implemented in this version, in run order.
    pub const BUILT: &'static [Stage] = &[
        Stage::Ingest,
        Stage::Validate,
        Stage::Derive,
        Stage::Analyze,
    ];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Validate => "validate",
            Stage::Derive => "derive",
            Stage::Analyze => "analyze",
            Stage::Report => "report",
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The pipeline file has problems.
    #[error("the pipeline file has {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Check(Vec<Problem>),
    /// Ingest could not read an input.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Writing outputs failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The report could not be rendered (a bug: please report it).
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// Subject ids could not be pseudonymized (no key, or a short one).
    #[error(transparent)]
    Pseudonym(#[from] crate::pseudonym::PseudonymError),
    /// Another run holds the output directory.
    #[error("{}: another trialpipe run holds this output directory ({holder}); it is released when that run ends", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote: PID and start time.
        holder: String,
    },
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Output directory (else the pipeline's).
    pub out_dir: Option<PathBuf>,
    /// Run even when nothing changed since the last successful run.
    pub force: bool,
}

/// Row counts of one stage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StageRecord {
    /// Stage name.
    pub stage: &'static str,
    /// Named row counts (e.g. `lab_rows_read`).
    pub rows: std::collections::BTreeMap<String, u64>,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Always `trialpipe`.
    pub tool: &'static str,
    /// Tool version.
    pub version: &'static str,
    /// Study id.
    pub study_id: String,
    /// The pipeline file with its SHA-256.
    pub pipeline: FileRecord,
    /// Every input file.
    pub inputs: Vec<FileRecord>,
    /// Every output file (paths relative to the output directory).
    pub outputs: Vec<FileRecord>,
    /// Row accounting per input file: read = accepted + quarantined.
    pub files: Vec<validate::FileAccounting>,
    /// Row counts per stage.
    pub stages: Vec<StageRecord>,
    /// Start time, RFC 3339 UTC.
    pub started: String,
    /// End time, RFC 3339 UTC.
    pub finished: String,
    /// The process exit status this run ended with.
    pub exit_status: i32,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The output directory.
    pub out_dir: PathBuf,
    /// Whether it ran or found everything up to date.
    pub kind: RunKind,
    /// Row counts of the stages that ran.
    pub stages: Vec<StageRecord>,
    /// Exit status.
    pub exit_status: i32,
    /// The validation result (for the human summary), when the stages ran.
    pub validation: Option<ValidationOutput>,
    /// For an up-to-date run, the exit status the last run ended with.
    pub previous_exit_status: Option<i32>,
    /// Analyses not run, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// The output directory of a run.
pub fn out_dir(lp: &LoadedPipeline, opts: &RunOptions) -> PathBuf {
    opts.out_dir.clone().unwrap_or_else(|| lp.output_dir())
}

/// Check the pipeline file against the file system; problems stop the run.
pub fn preflight(lp: &LoadedPipeline) -> Result<(), RunError> {
    let problems = spec::check(lp, FileCheck::RequireInputs);
    if !problems.is_empty() {
        return Err(RunError::Check(problems));
    }
    // A missing pseudonymization key stops the run before anything is read or locked.
    pseudonymizer(lp)?;
    Ok(())
}

/// The pseudonymizer the pipeline asks for, with its key from the environment.
fn pseudonymizer(lp: &LoadedPipeline) -> Result<Option<crate::pseudonym::Pseudonymizer>, RunError> {
    Ok(match &lp.pipeline.output.pseudonymize {
        Some(ps) => Some(crate::pseudonym::Pseudonymizer::from_env(&ps.key_env)?),
        None => None,
    })
}

/// Run the ingest stage and write `ingest/*.parquet`.
pub fn run_ingest(
    lp: &LoadedPipeline,
    out: &Path,
    on_file: ingest::OnFile<'_>,
) -> Result<(IngestOutput, Vec<FileRecord>, StageRecord), RunError> {
    let data = read_ingest(lp, on_file)?;
    let labs = write_ingest_labs(lp, out, &data)?;
    let (outputs, stage) = write_ingest_rest(lp, out, &data, labs)?;
    Ok((data, outputs, stage))
}

/// What [`run_ingest_validate`] returns: the ingested data and the validation, and the ingest
/// stage's outputs and record. Validate's own outputs are written by
/// [`order_and_write_validation`].
pub struct IngestValidate {
    /// Everything ingest read.
    pub data: IngestOutput,
    /// Everything validate decided.
    pub validation: ValidationOutput,
    /// `ingest/*.parquet`.
    pub ingest_outputs: Vec<FileRecord>,
    /// The ingest stage's record.
    pub ingest_stage: StageRecord,
}

/// Run ingest and validate's rules, writing ingest's outputs, then `after_rules` with the data,
/// the validation and, held apart from it, its findings in the order the rules made them
/// (where a caller orders and writes them with [`order_and_write_validation`], and may derive
/// meanwhile). `ingest/labs.parquet` is written while the rules and then `after_rules` run
/// (they only read the ingested records). The returned validation has its findings back, as
/// `after_rules` left them. With [`order_and_write_validation`] in `after_rules`, the same
/// outputs as [`run_ingest`] followed by [`run_validate`]. `on_validate` is called when reading
/// is done and validation starts.
pub fn run_ingest_validate<R: Send>(
    lp: &LoadedPipeline,
    out: &Path,
    on_file: ingest::OnFile<'_>,
    on_validate: &dyn Fn(),
    after_rules: impl FnOnce(&IngestOutput, &ValidationOutput, &mut Vec<validate::Finding>) -> R + Send,
) -> Result<(IngestValidate, R), RunError> {
    let data = read_ingest(lp, on_file)?;
    on_validate();
    // ingest/ is written while the rules run.
    let (ingest, (v, after)) = rayon::join(
        || {
            let labs = write_ingest_labs(lp, out, &data)?;
            write_ingest_rest(lp, out, &data, labs)
        },
        || {
            // The findings are handed to `after_rules` apart from the rest of the validation
            // output, in the order the rules made them: derive, which needs only the
            // dispositions, can start at once, while the findings are put in order
            // ([`order_and_write_validation`]). They are back in place, in order, on return.
            let mut v = timed("validate: rules", || {
                validate::validate_unordered(lp, &data)
            });
            let after = with_findings_apart(&mut v, |v, findings| after_rules(&data, v, findings));
            (v, after)
        },
    );
    let (ingest_outputs, ingest_stage) = ingest?;
    Ok((
        IngestValidate {
            data,
            validation: v,
            ingest_outputs,
            ingest_stage,
        },
        after,
    ))
}

/// Read every input (pseudonymizing subject ids when the pipeline asks).
fn read_ingest(lp: &LoadedPipeline, on_file: ingest::OnFile<'_>) -> Result<IngestOutput, RunError> {
    let mut data = timed("ingest: read and standardize", || {
        ingest::ingest_observed(lp, on_file)
    })?;
    if let Some(p) = pseudonymizer(lp)? {
        crate::pseudonym::apply(&mut data, &p)?;
    }
    Ok(data)
}

/// Write `ingest/labs.parquet`, one row group at a time.
fn write_ingest_labs(
    lp: &LoadedPipeline,
    out: &Path,
    data: &IngestOutput,
) -> Result<FileRecord, RunError> {
    let kv = pipeline_kv(lp)?;
    Ok(timed("ingest: write labs.parquet", || {
        store::write_parquet_chunked(
            &out.join("ingest/labs.parquet"),
            data.labs.len(),
            &|range| ingest::labs_table(&data.labs[range]),
            "ingest_labs",
            &kv,
        )
    })?)
}

/// Write the rest of `ingest/` after `labs` (already written) and make the stage's record.
fn write_ingest_rest(
    lp: &LoadedPipeline,
    out: &Path,
    data: &IngestOutput,
    labs: FileRecord,
) -> Result<(Vec<FileRecord>, StageRecord), RunError> {
    let kv = pipeline_kv(lp)?;
    let outputs = vec![
        labs,
        store::write_parquet(
            &out.join("ingest/subjects.parquet"),
            subjects_table(data),
            "ingest_subjects",
            &kv,
        )?,
        store::write_parquet(
            &out.join("ingest/events.parquet"),
            events_table(data),
            "ingest_events",
            &kv,
        )?,
    ];
    let mut rows = std::collections::BTreeMap::new();
    for kind in ["subjects", "labs", "events"] {
        let n: u64 = data
            .files
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.rows_read)
            .sum();
        rows.insert(format!("{kind}_rows_read"), n);
    }
    rows.insert(
        "lab_rows_parsed_ok".into(),
        data.labs
            .iter()
            .filter(|r| r.status == ingest::ParseStatus::Ok)
            .count() as u64,
    );
    Ok((
        outputs,
        StageRecord {
            stage: Stage::Ingest.name(),
            rows,
        },
    ))
}

/// File-level Parquet metadata every dataset carries: the SHA-256 of the pipeline file.
fn pipeline_kv(lp: &LoadedPipeline) -> Result<Vec<(String, String)>, RunError> {
    Ok(vec![(
        "trialpipe.pipeline_sha256".to_string(),
        store::file_record(&lp.path)?.sha256,
    )])
}

/// Exit status for a validation verdict.
pub fn verdict_exit(v: Verdict) -> i32 {
    match v {
        Verdict::Clean => crate::exit::OK,
        Verdict::Warnings => crate::exit::WARNINGS,
        Verdict::ErrorsOverThreshold => crate::exit::DATA_ERRORS,
    }
}

/// Run the validate stage on ingested data and write findings, quarantine and summary.
pub fn run_validate(
    lp: &LoadedPipeline,
    out: &Path,
    data: &IngestOutput,
) -> Result<(ValidationOutput, Vec<FileRecord>, StageRecord), RunError> {
    let mut v = timed("validate: rules", || validate::validate_unordered(lp, data));
    let (outputs, stage) = with_findings_apart(&mut v, |v, findings| {
        order_and_write_validation(lp, out, data, v, findings)
    })?;
    Ok((v, outputs, stage))
}

/// `f` with `v` and, held apart from it, its findings (so that `f` may reorder them while it
/// reads `v`); the findings are back in `v`, as `f` left them, on return.
fn with_findings_apart<R>(
    v: &mut ValidationOutput,
    f: impl FnOnce(&ValidationOutput, &mut Vec<validate::Finding>) -> R,
) -> R {
    let mut findings = std::mem::take(&mut v.findings);
    let out = f(v, &mut findings);
    v.findings = findings;
    out
}

/// The full source rows of the quarantined rows, as [`ingest::raw_rows`] reads them.
pub type RawRows = rustc_hash::FxHashMap<ingest::RowKey, String>;

/// Read the quarantined rows' full source rows again from the inputs, with ids pseudonymized
/// as the records are (for `quarantine/rejected.parquet`).
pub fn read_quarantined(
    lp: &LoadedPipeline,
    data: &IngestOutput,
    v: &ValidationOutput,
) -> Result<RawRows, RunError> {
    timed("validate: read quarantined rows again", || {
        let pseudo = pseudonymizer(lp)?;
        let map_id = |id: &str| match &pseudo {
            Some(p) if !id.is_empty() => p.pseudonym(id),
            _ => id.to_string(),
        };
        Ok(ingest::raw_rows(
            lp,
            &validate::quarantined_rows(data, v),
            &map_id,
        )?)
    })
}

/// Write validate's outputs and make the stage's record: the findings (`v`'s, held apart from
/// it so that derive can read `v` meanwhile) are put in order ([`validate::order_findings`]) and
/// written while the quarantined rows are read again ([`read_quarantined`]) and written, so
/// neither waits for the other.
pub fn order_and_write_validation(
    lp: &LoadedPipeline,
    out: &Path,
    data: &IngestOutput,
    v: &ValidationOutput,
    findings: &mut [validate::Finding],
) -> ValidationWritten {
    let kv = pipeline_kv(lp)?;
    let write_findings = |findings: &mut [validate::Finding]| {
        timed("validate: order findings", || {
            validate::order_findings(findings)
        });
        let findings = &*findings;
        timed("validate: write findings.parquet", || {
            store::write_parquet_chunked(
                &out.join("validation/findings.parquet"),
                findings.len(),
                &|range| validate::findings_table(&findings[range]),
                "validation_findings",
                &kv,
            )
        })
    };
    let write_quarantine = || {
        let raw = read_quarantined(lp, data, v)?;
        timed("validate: write rejected.parquet", || {
            Ok::<_, RunError>(store::write_parquet(
                &out.join("quarantine/rejected.parquet"),
                validate::quarantine_table(data, v, &raw),
                "quarantine_rejected",
                &kv,
            )?)
        })
    };
    let (findings_file, quarantine) =
        rayon::join(|| write_findings(&mut *findings), write_quarantine);
    let findings = &*findings;
    let outputs = vec![
        findings_file?,
        quarantine?,
        store::write_parquet(
            &out.join("validation/eligibility.parquet"),
            validate::eligibility_table(&v.criteria),
            "validation_eligibility",
            &kv,
        )?,
        store::write_bytes(
            &out.join("validation/summary.json"),
            format!(
                "{}\n",
                serde_json::to_string_pretty(&v.summary).expect("summary serializes")
            )
            .as_bytes(),
        )?,
    ];
    let mut rows = std::collections::BTreeMap::new();
    let sum =
        |f: &dyn Fn(&validate::FileAccounting) -> u64| v.summary.files.iter().map(f).sum::<u64>();
    rows.insert("rows_read".to_string(), sum(&|f| f.rows_read));
    rows.insert("rows_accepted".to_string(), sum(&|f| f.rows_accepted));
    rows.insert("rows_quarantined".to_string(), sum(&|f| f.rows_quarantined));
    rows.insert("findings".to_string(), findings.len() as u64);
    Ok((
        outputs,
        StageRecord {
            stage: Stage::Validate.name(),
            rows,
        },
    ))
}

/// What derive returns: the datasets, the files written and the stage's record.
pub type DeriveResult = Result<(crate::derive::Derived, Vec<FileRecord>, StageRecord), RunError>;

/// What writing validate's outputs returns: the files written and the stage's record.
pub type ValidationWritten = Result<(Vec<FileRecord>, StageRecord), RunError>;

/// Order and write validate's outputs ([`order_and_write_validation`]; `findings` are `v`'s,
/// held apart from it) and, when `derive_now`, derive beside them ([`run_derive`], which reads
/// the dispositions, not the findings). Derive, the longer chain, starts on this thread as soon
/// as the rules end; the findings are put in order and the validation outputs written by the
/// other core when it is free (on a slow day it is still writing `labs.parquet` then).
pub fn write_validation_beside_derive(
    lp: &LoadedPipeline,
    out: &Path,
    data: &IngestOutput,
    v: &ValidationOutput,
    findings: &mut [validate::Finding],
    derive_now: bool,
) -> (ValidationWritten, Option<DeriveResult>) {
    let (derived, written) = rayon::join(
        || derive_now.then(|| run_derive(lp, out, data, v)),
        || order_and_write_validation(lp, out, data, v, findings),
    );
    (written, derived)
}

/// Run the derive stage and write `sdtm/lb.parquet` and `adam/*.parquet`.
pub fn run_derive(
    lp: &LoadedPipeline,
    out: &Path,
    data: &IngestOutput,
    v: &ValidationOutput,
) -> DeriveResult {
    let kv = pipeline_kv(lp)?;
    // The large datasets, SDTM LB and ADLB, are built a row group at a time as they are
    // written, so neither is ever in memory as a whole table. SDTM LB is written as soon as it
    // exists, beside the making of ADLB (which leaves the second core mostly idle).
    let write_lb = |lb: &crate::derive::SdtmLb| {
        timed("derive: write sdtm/lb.parquet", || {
            store::write_parquet_chunked(
                &out.join("sdtm/lb.parquet"),
                lb.len(),
                &|range| lb.table(&data.labs, range),
                "LB",
                &kv,
            )
        })
    };
    let (derived, lb) = timed("derive: datasets (and writing SDTM LB)", || {
        crate::derive::derive_then(
            lp,
            &crate::derive::DeriveInput {
                data,
                validation: v,
                assessments: &data.assessments.index,
            },
            write_lb,
        )
    });
    let mut outputs = vec![lb?];
    let mut rows = std::collections::BTreeMap::new();
    let study = &lp.pipeline.study.id;
    // ADLB, the largest dataset, is written beside the three small ones: its row groups are
    // encoded column by column on both cores, which leaves gaps the small ones fill.
    let small = |rel: &str, name: &str, table: Table| {
        let n = table.rows() as u64;
        let written = timed(&format!("derive: write {rel}"), || {
            store::write_parquet(&out.join(rel), table, name, &kv)
        });
        (format!("{}_rows", name.to_lowercase()), n, written)
    };
    let (adlb, [adsl, adtte, adrs]) = rayon::join(
        || -> Result<Vec<FileRecord>, StoreError> {
            if lp.pipeline.output.partition_adlb {
                let table = timed("derive: build ADLB table", || {
                    crate::derive::adlb_table(study, &derived.adlb)
                });
                store::write_parquet_partitioned(
                    &out.join("adam/adlb"),
                    table,
                    "ADLB",
                    &kv,
                    "PARAMCD",
                )
            } else {
                // Built a row group at a time as it is written.
                timed("derive: write adam/adlb.parquet", || {
                    store::write_parquet_chunked(
                        &out.join("adam/adlb.parquet"),
                        derived.adlb.len(),
                        &|range| crate::derive::adlb_table(study, &derived.adlb[range]),
                        "ADLB",
                        &kv,
                    )
                })
                .map(|f| vec![f])
            }
        },
        || {
            [
                small("adam/adsl.parquet", "ADSL", derived.output.adsl.clone()),
                small("adam/adtte.parquet", "ADTTE", derived.output.adtte.clone()),
                small("adam/adrs.parquet", "ADRS", derived.output.adrs.clone()),
            ]
        },
    );
    // In the datasets' usual order: ADSL, ADLB, ADTTE, ADRS.
    let (key, n, written) = adsl;
    rows.insert(key, n);
    outputs.push(written?);
    rows.insert("adlb_rows".to_string(), derived.adlb.len() as u64);
    outputs.extend(adlb?);
    for (key, n, written) in [adtte, adrs] {
        rows.insert(key, n);
        outputs.push(written?);
    }
    rows.insert("lb_rows".to_string(), derived.output.lb.len() as u64);
    Ok((
        derived,
        outputs,
        StageRecord {
            stage: Stage::Derive.name(),
            rows,
        },
    ))
}

/// Run the analyze stage and write `results/*.parquet` and `results/*.csv`.
pub fn run_analyze(
    lp: &LoadedPipeline,
    out: &Path,
    derived: &crate::derive::Derived,
) -> Result<(crate::analyze::AnalyzeOutput, Vec<FileRecord>, StageRecord), RunError> {
    let a = crate::analyze::analyze(lp, derived);
    let kv = pipeline_kv(lp)?;
    let mut outputs = Vec::new();
    let comparisons = crate::analyze::results_table(&a.results);
    let descriptive = crate::analyze::descriptive_table(&a.descriptive);
    for (name, table) in [("comparisons", &comparisons), ("descriptive", &descriptive)] {
        outputs.push(store::write_parquet(
            &out.join(format!("results/{name}.parquet")),
            table.clone(),
            name,
            &kv,
        )?);
        outputs.push(store::write_csv(
            &out.join(format!("results/{name}.csv")),
            table,
        )?);
    }
    let mut rows = std::collections::BTreeMap::new();
    rows.insert("result_rows".to_string(), a.results.len() as u64);
    rows.insert("descriptive_rows".to_string(), a.descriptive.len() as u64);
    rows.insert("analyses_skipped".to_string(), a.skipped.len() as u64);
    Ok((
        a,
        outputs,
        StageRecord {
            stage: Stage::Analyze.name(),
            rows,
        },
    ))
}

/// Everything the report stage needs from the stages before it.
pub struct ReportStageInput<'a> {
    /// Ingested records.
    pub data: &'a IngestOutput,
    /// Validation decisions.
    pub validation: &'a ValidationOutput,
    /// Derived rows.
    pub derived: &'a crate::derive::Derived,
    /// Analysis results.
    pub analysis: &'a crate::analyze::AnalyzeOutput,
    /// Run start, RFC 3339.
    pub run_started: &'a str,
}

/// Run the report stage: `report/index.html`, `report/summary.md`, `report/figures/*.svg`.
pub fn run_report(
    lp: &LoadedPipeline,
    out: &Path,
    input: &ReportStageInput<'_>,
) -> Result<(Vec<FileRecord>, StageRecord), RunError> {
    let pipeline = store::file_record(&lp.path)?;
    let inputs = lp
        .input_files()
        .iter()
        .map(|p| store::file_record(p))
        .collect::<Result<Vec<_>, _>>()?;
    let report = crate::report::render(&crate::report::ReportInput {
        lp,
        data: input.data,
        validation: input.validation,
        derived: input.derived,
        analysis: input.analysis,
        pipeline_sha256: &pipeline.sha256,
        inputs: &inputs,
        run_started: input.run_started,
    })?;
    let mut outputs = vec![
        store::write_bytes(&out.join("report/index.html"), report.html.as_bytes())?,
        store::write_bytes(&out.join("report/summary.md"), report.summary_md.as_bytes())?,
    ];
    for (name, svg) in &report.figures {
        outputs.push(store::write_bytes(
            &out.join("report/figures").join(name),
            svg.as_bytes(),
        )?);
    }
    let mut rows = std::collections::BTreeMap::new();
    rows.insert("figures".to_string(), report.figures.len() as u64);
    Ok((
        outputs,
        StageRecord {
            stage: Stage::Report.name(),
            rows,
        },
    ))
}

fn subjects_table(d: &IngestOutput) -> Table {
    use crate::store::Column;
    let s = &d.subjects;
    let txt = |f: &dyn Fn(&ingest::SubjectRecord) -> Option<String>| {
        ColumnData::Str(s.iter().map(f).collect())
    };
    Table {
        columns: vec![
            Column {
                name: "SRCFILE",
                label: "Source file",
                data: txt(&|r| Some(r.lineage.file.to_string())),
            },
            Column {
                name: "SRCLINE",
                label: "Source line",
                data: ColumnData::I64(s.iter().map(|r| Some(r.lineage.line as i64)).collect()),
            },
            Column {
                name: "STUDYID",
                label: "Study Identifier",
                data: txt(&|r| Some(r.study_id.clone())),
            },
            Column {
                name: "SITEID",
                label: "Study Site Identifier",
                data: txt(&|r| Some(r.site_id.clone())),
            },
            Column {
                name: "SUBJID",
                label: "Subject Identifier for the Study",
                data: txt(&|r| Some(r.subject_id.clone())),
            },
            Column {
                name: "ARMCD",
                label: "Planned Arm Code",
                data: txt(&|r| r.arm.clone()),
            },
            Column {
                name: "RANDDT",
                label: "Date of Randomization",
                data: ColumnData::Date(s.iter().map(|r| r.randomization_date).collect()),
            },
            Column {
                name: "RFICDT",
                label: "Date of Informed Consent",
                data: ColumnData::Date(s.iter().map(|r| r.consent_date).collect()),
            },
            Column {
                name: "TRTSDT",
                label: "Date of First Exposure to Treatment",
                data: ColumnData::Date(s.iter().map(|r| r.first_dose_date).collect()),
            },
            Column {
                name: "DOSES",
                label: "Number of Doses Received",
                data: ColumnData::I64(s.iter().map(|r| r.doses_received).collect()),
            },
            Column {
                name: "SEX",
                label: "Sex",
                data: txt(&|r| r.sex.clone()),
            },
            Column {
                name: "AGE",
                label: "Age",
                data: ColumnData::F64(s.iter().map(|r| r.age).collect()),
            },
            Column {
                name: "REFDT",
                label: "Reference Date (Study Day 1)",
                data: ColumnData::Date(s.iter().map(|r| r.reference_date).collect()),
            },
        ],
    }
}

fn events_table(d: &IngestOutput) -> Table {
    use crate::store::Column;
    let e = &d.events;
    Table {
        columns: vec![
            Column {
                name: "SRCFILE",
                label: "Source file",
                data: ColumnData::Str(e.iter().map(|r| Some(r.lineage.file.to_string())).collect()),
            },
            Column {
                name: "SRCLINE",
                label: "Source line",
                data: ColumnData::I64(e.iter().map(|r| Some(r.lineage.line as i64)).collect()),
            },
            Column {
                name: "STUDYID",
                label: "Study Identifier",
                data: ColumnData::Str(e.iter().map(|r| Some(r.study_id.clone())).collect()),
            },
            Column {
                name: "SUBJID",
                label: "Subject Identifier for the Study",
                data: ColumnData::Str(e.iter().map(|r| Some(r.subject_id.clone())).collect()),
            },
            Column {
                name: "EVENT",
                label: "Event",
                data: ColumnData::Str(e.iter().map(|r| Some(r.event.clone())).collect()),
            },
            Column {
                name: "EVENTDT",
                label: "Event Date",
                data: ColumnData::Date(e.iter().map(|r| r.event_date).collect()),
            },
            Column {
                name: "EVENTDTC",
                label: "Event Date as Reported",
                data: ColumnData::Str(e.iter().map(|r| Some(r.date_raw.clone())).collect()),
            },
        ],
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Why `run` did nothing, or what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Every stage ran.
    Ran,
    /// Inputs, pipeline file and tool version are unchanged since the last successful run and
    /// its outputs are intact: nothing was done.
    UpToDate,
}

/// The output directory's lock: held for the whole run, released when the process ends (even
/// when it is killed, since the operating system drops the lock with the file descriptor).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Take the output directory's lock, or say who holds it.
pub fn lock(out: &Path) -> Result<RunLock, RunError> {
    use std::io::{Read, Seek, Write};
    let (parent, name) = split_out(out);
    store::create_dir(&parent)?;
    // Beside the output directory, not in it: the directory itself is swapped at publication.
    let path = parent.join(format!(".{name}.lock"));
    let io = |source| {
        RunError::Store(StoreError::Io {
            path: path.clone(),
            action: "cannot open the lock file",
            source,
        })
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    // The lock file holds only a PID and a time, but stays owner/group-only like every output.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640));
    }
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            return Err(RunError::Locked {
                path,
                holder: holder.trim().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    let note = format!("pid {} since {}\n", std::process::id(), now());
    f.set_len(0)
        .and_then(|_| f.rewind())
        .and_then(|_| f.write_all(note.as_bytes()))
        .map_err(io)?;
    Ok(RunLock { _file: f })
}

fn split_out(out: &Path) -> (PathBuf, String) {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    (parent, name)
}

/// Where a run writes before it publishes: `<parent>/.<name>.runs/<run id>/`. The output
/// directory `<parent>/<name>` is a symbolic link to the published run; publication replaces the
/// link with one atomic rename, so a reader sees either the previous set of outputs or the new
/// one, never a mix, and a run killed at any point leaves the previous outputs in place.
#[derive(Debug)]
pub struct Staging {
    /// The directory the stages write into.
    pub dir: PathBuf,
    out: PathBuf,
    runs: PathBuf,
}

/// Prepare a staging directory for a run into `out`.
pub fn stage(out: &Path) -> Result<Staging, RunError> {
    let (parent, name) = split_out(out);
    let runs = parent.join(format!(".{name}.runs"));
    store::create_dir(&runs)?;
    let io = |path: &Path, action, source| {
        RunError::Store(StoreError::Io {
            path: path.to_path_buf(),
            action,
            source,
        })
    };
    // An output directory left by a version without staging becomes a run of its own.
    if let Ok(meta) = std::fs::symlink_metadata(out)
        && meta.is_dir()
    {
        let legacy = runs.join(format!("legacy-{}", std::process::id()));
        std::fs::rename(out, &legacy)
            .map_err(|e| io(out, "cannot move the old output directory", e))?;
        make_link(&legacy, &runs, out)?;
    }
    let id = format!(
        "run-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    );
    let dir = runs.join(&id);
    store::create_dir(&dir)?;
    Ok(Staging {
        dir,
        out: out.to_path_buf(),
        runs,
    })
}

#[cfg(unix)]
fn make_link(target: &Path, runs: &Path, link: &Path) -> Result<(), RunError> {
    // Relative target, so the output tree can be moved as a whole.
    let rel = PathBuf::from(runs.file_name().unwrap_or_default())
        .join(target.file_name().unwrap_or_default());
    let tmp = link.with_file_name(format!(
        ".{}.link-{}",
        link.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&rel, &tmp)
        .and_then(|_| std::fs::rename(&tmp, link))
        .map_err(|source| {
            RunError::Store(StoreError::Io {
                path: link.to_path_buf(),
                action: "cannot publish the run (symbolic link)",
                source,
            })
        })
}

#[cfg(not(unix))]
fn make_link(target: &Path, _runs: &Path, link: &Path) -> Result<(), RunError> {
    let _ = std::fs::remove_dir_all(link);
    std::fs::rename(target, link).map_err(|source| {
        RunError::Store(StoreError::Io {
            path: link.to_path_buf(),
            action: "cannot publish the run",
            source,
        })
    })
}

impl Staging {
    /// Publish the staged outputs as the output directory, atomically, and remove runs older
    /// than the one it replaces (and any left by killed runs).
    pub fn publish(self) -> Result<(), RunError> {
        let previous = std::fs::read_link(&self.out).ok();
        make_link(&self.dir, &self.runs, &self.out)?;
        let keep_prev = previous.and_then(|p| p.file_name().map(|n| n.to_os_string()));
        if let Ok(entries) = std::fs::read_dir(&self.runs) {
            for e in entries.flatten() {
                let n = e.file_name();
                if Some(&n) != self.dir.file_name().map(|x| x.to_os_string()).as_ref()
                    && Some(&n) != keep_prev.as_ref()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }
}

/// Whether the last run's manifest shows the same inputs, pipeline and version, ended
/// successfully, and its outputs are still the files it wrote.
fn up_to_date(out: &Path, pipeline: &FileRecord, inputs: &[FileRecord]) -> bool {
    let Ok(text) = std::fs::read_to_string(out.join("manifest.json")) else {
        return false;
    };
    let Ok(m) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let same = |v: &serde_json::Value, r: &FileRecord| {
        v["sha256"] == r.sha256.as_str() && v["path"] == r.path.as_str()
    };
    let status_ok = matches!(m["exit_status"].as_i64(), Some(0) | Some(1));
    let version_ok = m["version"] == env!("CARGO_PKG_VERSION");
    let pipeline_ok = m["pipeline"]["sha256"] == pipeline.sha256.as_str();
    let inputs_ok = m["inputs"]
        .as_array()
        .is_some_and(|a| a.len() == inputs.len() && a.iter().zip(inputs).all(|(v, r)| same(v, r)));
    let outputs_ok = m["outputs"].as_array().is_some_and(|a| {
        a.iter().all(|o| {
            o["path"].as_str().is_some_and(|p| {
                store::file_record(&out.join(p)).is_ok_and(|r| o["sha256"] == r.sha256.as_str())
            })
        })
    });
    status_ok && version_ok && pipeline_ok && inputs_ok && outputs_ok
}

/// Free `value` on a thread of its own. A large run's data are millions of allocations, and
/// freeing them one by one takes a few tenths of a second that a caller about to finish need
/// not wait for; a process that ends first just ends, its memory going back with it. When no
/// thread can be started, `value` is freed here.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    // On failure the closure, and `value` with it, is dropped by `spawn` itself.
    let _ = std::thread::Builder::new()
        .name("drop".into())
        .spawn(move || drop(value));
}

/// Run every built stage and write the manifest.
pub fn run(lp: &LoadedPipeline, opts: &RunOptions) -> Result<RunOutcome, RunError> {
    run_observed(lp, opts, &())
}

/// What a run tells as it goes (the command line draws progress from it). Both methods do
/// nothing by default; `()` observes nothing.
pub trait Observer: Sync {
    /// A stage starts.
    fn stage(&self, _stage: Stage) {}
    /// Reading a lab file advanced (called from the thread reading it).
    fn file(&self, _progress: ingest::FileProgress<'_>) {}
}

impl Observer for () {}

/// [`run`], telling `observer` as each stage starts and as each lab file is read.
pub fn run_observed(
    lp: &LoadedPipeline,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunOutcome, RunError> {
    let on_stage = |s: Stage| observer.stage(s);
    let started = now();
    preflight(lp)?;
    let out = out_dir(lp, opts);
    let _lock = lock(&out)?;
    let inputs = lp
        .input_files()
        .iter()
        .map(|p| store::file_record(p))
        .collect::<Result<Vec<_>, _>>()?;
    let pipeline = store::file_record(&lp.path)?;
    if !opts.force && up_to_date(&out, &pipeline, &inputs) {
        let text = std::fs::read_to_string(out.join("manifest.json")).unwrap_or_default();
        let m: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        return Ok(RunOutcome {
            out_dir: out,
            kind: RunKind::UpToDate,
            stages: Vec::new(),
            exit_status: crate::exit::OK,
            validation: None,
            previous_exit_status: m["exit_status"].as_i64().map(|x| x as i32),
            skipped: Vec::new(),
        });
    }
    let staging = stage(&out)?;
    let work = staging.dir.clone();
    on_stage(Stage::Ingest);
    // Error findings over the threshold stop the run before anything is derived from the data.
    // Otherwise derive runs while validate's outputs are written.
    let (
        IngestValidate {
            data,
            validation,
            ingest_outputs: mut outputs,
            ingest_stage,
        },
        (written, derived),
    ) = run_ingest_validate(
        lp,
        &work,
        &|p| observer.file(p),
        &|| on_stage(Stage::Validate),
        |data, validation, findings| {
            let derive_now = validation.summary.verdict != Verdict::ErrorsOverThreshold;
            if derive_now {
                on_stage(Stage::Derive);
            }
            write_validation_beside_derive(lp, &work, data, validation, findings, derive_now)
        },
    )?;
    let (validate_outputs, validate_stage) = written?;
    outputs.extend(validate_outputs);
    let mut stages = vec![ingest_stage, validate_stage];
    let mut skipped = Vec::new();
    if let Some(derived) = derived {
        let (derived, d_outputs, derive_stage) = derived?;
        outputs.extend(d_outputs);
        stages.push(derive_stage);
        on_stage(Stage::Analyze);
        let (analysis, a_outputs, analyze_stage) = run_analyze(lp, &work, &derived)?;
        outputs.extend(a_outputs);
        stages.push(analyze_stage);
        on_stage(Stage::Report);
        let (r_outputs, report_stage) = run_report(
            lp,
            &work,
            &ReportStageInput {
                data: &data,
                validation: &validation,
                derived: &derived,
                analysis: &analysis,
                run_started: &started,
            },
        )?;
        outputs.extend(r_outputs);
        stages.push(report_stage);
        skipped = analysis.skipped;
        drop_in_background(derived);
    }
    drop_in_background(data);
    let outputs = outputs
        .into_iter()
        .map(|mut r| {
            r.path = Path::new(&r.path)
                .strip_prefix(&work)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or(r.path);
            r
        })
        .collect();
    let exit_status = verdict_exit(validation.summary.verdict);
    let manifest = Manifest {
        tool: "trialpipe",
        version: env!("CARGO_PKG_VERSION"),
        study_id: lp.pipeline.study.id.clone(),
        pipeline,
        inputs,
        outputs,
        files: validation.summary.files.clone(),
        stages: stages.clone(),
        started,
        finished: now(),
        exit_status,
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    store::write_bytes(&work.join("manifest.json"), format!("{json}\n").as_bytes())?;
    staging.publish()?;
    Ok(RunOutcome {
        out_dir: out,
        kind: RunKind::Ran,
        stages,
        exit_status,
        validation: Some(validation),
        previous_exit_status: None,
        skipped,
    })
}
