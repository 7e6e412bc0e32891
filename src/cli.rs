//! The command line: argument definitions, logging set-up, dispatch to the library, and the
//! mapping of every outcome to an exit code (`crate::exit`, `docs/exit-codes.md`).
//!
//! This is the edge of the library: the only module that prints. stdout carries only what a
//! user asked for (`check`'s verdict); progress and summaries go to stderr through `tracing`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::exit;
use crate::run::{self, RunError, RunOptions, Stage};
use crate::simulate::{self, SimulateError, SimulateOptions};
use crate::spec::{self, FileCheck, LoadedPipeline, SpecError};

/// Clinical-trial lab exports → validated CDISC-shaped Parquet and arm-versus-arm results.
#[derive(Debug, Parser)]
#[command(
    name = "trialpipe",
    version,
    about,
    after_help = "Example:\n  trialpipe run pipelines/msc_cirrhosis.toml\n\nExit codes: docs/exit-codes.md"
)]
pub struct Cli {
    /// Only warnings and errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More detail on stderr (-v debug, -vv trace).
    #[arg(long, short, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a pipeline file without touching data: keys, windows, units, files.
    #[command(after_help = "Example:\n  trialpipe check pipelines/msc_cirrhosis.toml")]
    Check {
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Write a synthetic trial's raw exports from the pipeline's [simulation] model.
    #[command(
        after_help = "Example:\n  trialpipe simulate pipelines/msc_cirrhosis.toml --subjects 60 --seed 1 --out sample_data/msc_cirrhosis"
    )]
    Simulate {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Number of subjects (default: the pipeline's).
        #[arg(long)]
        subjects: Option<usize>,
        /// Random seed (default: the pipeline's); same seed → byte-identical files.
        #[arg(long)]
        seed: Option<u64>,
        /// Directory for the raw files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run every stage in order and write manifest.json.
    #[command(after_help = "Example:\n  trialpipe run pipelines/msc_cirrhosis.toml --out /tmp/msc")]
    Run {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Output directory (default: the pipeline's [output] dir).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Rerun even when inputs, pipeline file and tool version are unchanged.
        #[arg(long)]
        force: bool,
    },
    /// Read the raw exports into standardized records (ingest/*.parquet).
    #[command(after_help = "Example:\n  trialpipe ingest pipelines/msc_cirrhosis.toml")]
    Ingest {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Output directory (default: the pipeline's [output] dir).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Ingest, then apply the validation rules: findings, quarantine, row accounting.
    #[command(
        after_help = "Example:\n  trialpipe validate pipelines/msc_cirrhosis.toml\n\nExit 0 clean, 1 warnings (or errors under the threshold), 3 errors over validation.max_error_percent."
    )]
    Validate {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Output directory (default: the pipeline's [output] dir).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Ingest, validate, then derive SDTM LB and ADaM ADSL/ADLB/ADTTE Parquet.
    #[command(after_help = "Example:\n  trialpipe derive pipelines/msc_cirrhosis.toml")]
    Derive {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Output directory (default: the pipeline's [output] dir).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Ingest, validate, derive, then run the analyses the pipeline lists (results/*).
    #[command(after_help = "Example:\n  trialpipe analyze pipelines/msc_cirrhosis.toml")]
    Analyze {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Output directory (default: the pipeline's [output] dir).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run every stage and write the HTML report (report/index.html, figures, summary.md).
    #[command(after_help = "Example:\n  trialpipe report pipelines/msc_cirrhosis.toml")]
    Report {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Output directory (default: the pipeline's [output] dir).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Everything that ends a command with a non-zero exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The pipeline file could not be loaded.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// `check` found problems.
    #[error("{} problem(s) in the pipeline file", .0)]
    CheckFailed(usize),
    /// A run or stage failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The simulator failed.
    #[error(transparent)]
    Simulate(#[from] SimulateError),
}

impl CliError {
    /// The documented exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Spec(_) | CliError::CheckFailed(_) => exit::INVALID_INPUT,
            CliError::Run(RunError::Check(_))
            | CliError::Run(RunError::Ingest(_))
            | CliError::Run(RunError::Pseudonym(_)) => exit::INVALID_INPUT,
            CliError::Run(RunError::Store(_)) => exit::OUTPUT_FAILED,
            CliError::Run(RunError::Report(_)) => exit::INTERNAL,
            CliError::Run(RunError::Locked { .. }) => exit::LOCKED,
            CliError::Simulate(SimulateError::Write { .. }) => exit::OUTPUT_FAILED,
            CliError::Simulate(_) => exit::INVALID_INPUT,
        }
    }
}

fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        tracing::Level::WARN
    } else {
        match cli.verbose {
            0 => tracing::Level::INFO,
            1 => tracing::Level::DEBUG,
            _ => tracing::Level::TRACE,
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .without_time()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// Run a parsed command line; returns the exit code for success paths.
pub fn execute(cli: Cli) -> Result<i32, CliError> {
    init_logging(&cli);
    let quiet = cli.quiet;
    match cli.command {
        Command::Check { pipeline } => {
            let lp = LoadedPipeline::load(&pipeline)?;
            let problems = spec::check(&lp, FileCheck::RequireInputs);
            if problems.is_empty() {
                let p = &lp.pipeline;
                println!(
                    "{}: ok ({} arms, {} lab tests, {} visit windows, {} analyses, {} input files)",
                    pipeline.display(),
                    p.arms.len(),
                    p.labs.len(),
                    p.visits.windows.len(),
                    p.analyses.len(),
                    lp.input_files().len()
                );
                Ok(exit::OK)
            } else {
                for pr in &problems {
                    eprintln!("{pr}");
                }
                Err(CliError::CheckFailed(problems.len()))
            }
        }
        Command::Simulate {
            pipeline,
            subjects,
            seed,
            out,
        } => {
            let lp = LoadedPipeline::load(&pipeline)?;
            let problems = spec::check(&lp, FileCheck::Skip);
            if !problems.is_empty() {
                for pr in &problems {
                    eprintln!("{pr}");
                }
                return Err(CliError::CheckFailed(problems.len()));
            }
            let opts = SimulateOptions {
                subjects,
                seed,
                out_dir: out.clone(),
            };
            let s = simulate::simulate(&lp, &opts)?;
            tracing::info!(
                subjects = s.subjects,
                lab_rows = s.lab_rows,
                events = s.events,
                seed = s.seed,
                "simulated trial written to {}",
                out.display()
            );
            Ok(exit::OK)
        }
        Command::Run {
            pipeline,
            out,
            force,
        } => {
            let lp = LoadedPipeline::load(&pipeline)?;
            let bar = Progress::new(quiet);
            let outcome = run::run_observed(
                &lp,
                &RunOptions {
                    out_dir: out,
                    force,
                },
                bar.as_ref().map_or(&() as &dyn run::Observer, |b| b),
            );
            if let Some(b) = &bar {
                b.finish();
            }
            let outcome = outcome?;
            if outcome.kind == run::RunKind::UpToDate {
                tracing::info!(
                    "nothing to do: inputs, pipeline file and tool version are unchanged since the last successful run (exit {}); --force reruns",
                    outcome.previous_exit_status.unwrap_or(0)
                );
                return Ok(exit::OK);
            }
            if let Some(v) = &outcome.validation {
                print_validation_summary(v, quiet);
            }
            for (id, why) in &outcome.skipped {
                tracing::warn!("analysis `{id}` not run: {why}");
            }
            for st in &outcome.stages {
                tracing::info!(stage = st.stage, rows = ?st.rows, "stage done");
            }
            tracing::info!(
                "outputs in {} (manifest.json lists every file)",
                outcome.out_dir.display()
            );
            Ok(outcome.exit_status)
        }
        Command::Ingest { pipeline, out } => {
            let lp = LoadedPipeline::load(&pipeline)?;
            run::preflight(&lp)?;
            let dir = run::out_dir(
                &lp,
                &RunOptions {
                    out_dir: out,
                    force: false,
                },
            );
            let _lock = run::lock(&dir)?;
            let staging = run::stage(&dir)?;
            let (_, files, stage) = ingest_with_progress(&lp, &staging.dir, quiet)?;
            staging.publish()?;
            tracing::info!(rows = ?stage.rows, files = files.len(), "ingest written to {}", dir.join("ingest").display());
            Ok(exit::OK)
        }
        Command::Validate { pipeline, out } => stages_until(&pipeline, out, Stage::Validate, quiet),
        Command::Derive { pipeline, out } => stages_until(&pipeline, out, Stage::Derive, quiet),
        Command::Analyze { pipeline, out } => stages_until(&pipeline, out, Stage::Analyze, quiet),
        Command::Report { pipeline, out } => stages_until(&pipeline, out, Stage::Report, quiet),
    }
}

/// Run the stages in order up to and including `last` (each stage needs the typed output of the
/// one before, so a stage command runs its upstream stages too), writing their outputs.
fn stages_until(
    pipeline: &std::path::Path,
    out: Option<PathBuf>,
    last: Stage,
    quiet: bool,
) -> Result<i32, CliError> {
    let lp = LoadedPipeline::load(pipeline)?;
    run::preflight(&lp)?;
    let dir = run::out_dir(
        &lp,
        &RunOptions {
            out_dir: out,
            force: false,
        },
    );
    let _lock = run::lock(&dir)?;
    let staging = run::stage(&dir)?;
    let work = staging.dir.clone();
    let bar = Progress::new(quiet);
    // Derive (when asked for and the errors allow) runs while validate's outputs are written.
    let ran = run::run_ingest_validate(
        &lp,
        &work,
        &|p| {
            if let Some(b) = &bar {
                run::Observer::file(b, p);
            }
        },
        &|| {
            if let Some(b) = &bar {
                b.finish();
            }
        },
        |data, v, findings| {
            let derive_now = last != Stage::Validate
                && v.summary.verdict != crate::validate::Verdict::ErrorsOverThreshold;
            run::write_validation_beside_derive(&lp, &work, data, v, findings, derive_now)
        },
    );
    if let Some(b) = &bar {
        b.finish();
    }
    let (
        run::IngestValidate {
            data,
            validation: v,
            ..
        },
        (written, derived),
    ) = ran?;
    print_validation_summary(&v, quiet);
    let status = run::verdict_exit(v.summary.verdict);
    written?;
    if let Some(derived) = derived {
        let (derived, files, stage) = derived?;
        tracing::info!(rows = ?stage.rows, files = files.len(), "datasets derived");
        if last != Stage::Derive {
            let (a, files, stage) = run::run_analyze(&lp, &work, &derived)?;
            for (id, why) in &a.skipped {
                tracing::warn!("analysis `{id}` not run: {why}");
            }
            tracing::info!(rows = ?stage.rows, files = files.len(), "analyses done");
            if last == Stage::Report {
                let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let (files, _) = run::run_report(
                    &lp,
                    &work,
                    &run::ReportStageInput {
                        data: &data,
                        validation: &v,
                        derived: &derived,
                        analysis: &a,
                        run_started: &started,
                    },
                )?;
                tracing::info!(files = files.len(), "report written");
            }
        }
        run::drop_in_background(derived);
    }
    let status = if v.summary.verdict == crate::validate::Verdict::ErrorsOverThreshold {
        exit::DATA_ERRORS
    } else {
        status
    };
    run::drop_in_background((data, v));
    staging.publish()?;
    tracing::info!("outputs published in {}", dir.display());
    Ok(status)
}

/// The ingest stage with a progress bar per large lab file (on a terminal only).
fn ingest_with_progress(
    lp: &LoadedPipeline,
    dir: &std::path::Path,
    quiet: bool,
) -> Result<
    (
        crate::ingest::IngestOutput,
        Vec<crate::store::FileRecord>,
        run::StageRecord,
    ),
    CliError,
> {
    let bar = Progress::new(quiet);
    let ingested = run::run_ingest(lp, dir, &|p| {
        if let Some(b) = &bar {
            run::Observer::file(b, p);
        }
    });
    if let Some(b) = &bar {
        b.finish();
    }
    Ok(ingested?)
}

/// Lab files smaller than this get no progress bar of their own (they are read in a blink).
const FILE_BAR_MIN_BYTES: u64 = 8 << 20;

/// Progress for humans: a spinner naming the running stage and a bar per large lab file, shown
/// only when stderr is an interactive terminal, the user did not ask for quiet, and no CI
/// variable is set: cron and CI logs stay clean.
struct Progress {
    multi: indicatif::MultiProgress,
    stage: indicatif::ProgressBar,
    files: std::sync::Mutex<std::collections::HashMap<PathBuf, indicatif::ProgressBar>>,
}

impl Progress {
    fn new(quiet: bool) -> Option<Progress> {
        let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
        if quiet || !interactive || std::env::var_os("CI").is_some() {
            return None;
        }
        let multi = indicatif::MultiProgress::new();
        let stage = multi.add(indicatif::ProgressBar::new_spinner());
        stage.enable_steady_tick(std::time::Duration::from_millis(120));
        stage.set_message("ingest");
        Some(Progress {
            multi,
            stage,
            files: Default::default(),
        })
    }

    fn finish(&self) {
        self.stage.finish_and_clear();
        for bar in self
            .files
            .lock()
            .map(|f| f.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            bar.finish_and_clear();
        }
    }
}

impl run::Observer for Progress {
    fn stage(&self, stage: Stage) {
        self.stage.set_message(stage.name());
    }

    fn file(&self, p: crate::ingest::FileProgress<'_>) {
        if p.total < FILE_BAR_MIN_BYTES {
            return;
        }
        let Ok(mut files) = self.files.lock() else {
            return;
        };
        let bar = files.entry(p.file.to_path_buf()).or_insert_with(|| {
            let bar = self.multi.add(indicatif::ProgressBar::new(p.total));
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "  {msg} [{bar:30}] {bytes}/{total_bytes} ({eta})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(
                p.file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            bar
        });
        // Parts of a file are read in parallel, each reporting how far it advanced.
        bar.inc(p.advanced);
        if bar.position() >= p.total {
            bar.finish_and_clear();
        }
    }
}

/// The human summary of a validation on stderr.
fn print_validation_summary(v: &crate::validate::ValidationOutput, quiet: bool) {
    if quiet && v.summary.verdict == crate::validate::Verdict::Clean {
        return;
    }
    let s = &v.summary;
    let total =
        |f: &dyn Fn(&crate::validate::FileAccounting) -> u64| s.files.iter().map(f).sum::<u64>();
    eprintln!(
        "validation: {} rows read, {} accepted, {} quarantined; {} findings ({})",
        total(&|f| f.rows_read),
        total(&|f| f.rows_accepted),
        total(&|f| f.rows_quarantined),
        v.findings.len(),
        s.findings_by_severity
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // The rule column is as wide as the longest rule id shown (at least 22 characters).
    let width = s
        .findings_by_rule
        .keys()
        .map(|r| r.len())
        .fold(22, usize::max);
    for (rule, n) in &s.findings_by_rule {
        let sev = v
            .findings
            .iter()
            .find(|f| f.rule == *rule)
            .map(|f| crate::validate::severity_name(f.severity))
            .unwrap_or("");
        eprintln!("  {rule:<width$} {sev:<8} {n}");
    }
    let threshold = s
        .max_error_percent
        .map(|t| format!("{t}%"))
        .unwrap_or_else(|| "none".into());
    eprintln!(
        "  lab rows with errors: {} ({:.2}%, threshold {threshold}) -> {:?}",
        s.lab_rows_with_errors, s.error_percent, s.verdict
    );
}
