//! Report: one self-contained HTML page (`report/index.html`: inline CSS and inline SVG, no
//! scripts, no network references), each figure as a standalone SVG file
//! (`report/figures/*.svg`) and a short plain-text digest for a cron e-mail (`summary.md`).
//!
//! The report computes no statistics. Every estimate, interval and p-value comes from the analyze
//! stage (`results`, `descriptive`, `km_curves`, `skipped`); findings and row accounting come
//! from validate; the only arithmetic here is counting (disposition, shift-table cells, events)
//! and unit conversion for display (days to months, proportions to percent).
//!
//! Markup lives in minijinja templates (`src/report/*.j2`, embedded with `include_str!`) with
//! HTML autoescaping; this module only builds plain view structs of preformatted strings. Figures
//! are drawn with plotters' SVG backend into strings at a fixed size; plotters' text measurement
//! here is its built-in estimate (no font files), so the same inputs give byte-identical SVG on
//! every machine. The only volatile values in the page are the run start time and the tool
//! version, each wrapped in `<span data-volatile="...">` so tests can redact them.
//!
//! Sections and rules (the shift-table rule, the headline comparison) are documented in
//! `docs/report.md`.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{Environment, UndefinedBehavior};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use crate::analyze::{AnalyzeOutput, DescRow, KmCurve, ResultRow};
use crate::derive::{AdlbRow, Derived};
use crate::ingest::IngestOutput;
use crate::spec::{ArmRole, LoadedPipeline, Method, Multiplicity};
use crate::store::{ColumnData, FileRecord, Table};
use crate::validate::{self, ValidationOutput, Verdict};

/// Days per month for time axes and medians shown in months (365.25 / 12, as analyze).
pub const DAYS_PER_MONTH: f64 = 30.4375;

const INDEX_TEMPLATE: &str = include_str!("report/index.html.j2");
const SUMMARY_TEMPLATE: &str = include_str!("report/summary.md.j2");

/// Everything the report reads.
pub struct ReportInput<'a> {
    /// The pipeline file.
    pub lp: &'a LoadedPipeline,
    /// What ingest read.
    pub data: &'a IngestOutput,
    /// Findings, dispositions, row accounting.
    pub validation: &'a ValidationOutput,
    /// Typed ADLB, ADTTE and ADRS rows and the dataset tables (ADSL).
    pub derived: &'a Derived,
    /// Results, descriptive summaries, Kaplan-Meier curves, skipped analyses.
    pub analysis: &'a AnalyzeOutput,
    /// SHA-256 of the pipeline file and of every input file (path, sha256), as in the manifest.
    pub pipeline_sha256: &'a str,
    /// Input files with size and SHA-256.
    pub inputs: &'a [FileRecord],
    /// Run start, RFC 3339 (the only volatile value in the report).
    pub run_started: &'a str,
}

/// The rendered report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `report/index.html`: self-contained, figures inlined.
    pub html: String,
    /// `summary.md`: plain-text digest for e-mail.
    pub summary_md: String,
    /// Standalone figures: (file name like `km_OS.svg`, SVG text), for `report/figures/`.
    pub figures: Vec<(String, String)>,
}

/// Why the report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A template failed to compile or render.
    #[error("report template `{template}`: {source:#}")]
    Template {
        /// Template name.
        template: &'static str,
        /// minijinja's error (names the template line).
        #[source]
        source: minijinja::Error,
    },
    /// A figure could not be drawn.
    #[error("report figure `{figure}`: {message}")]
    Figure {
        /// Figure file name.
        figure: String,
        /// What plotters said.
        message: String,
    },
    /// A derived dataset lacks a column the report needs.
    #[error("report: dataset {dataset} has no usable column {column}")]
    Dataset {
        /// Dataset name.
        dataset: &'static str,
        /// Column name.
        column: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

const DASH: &str = "—";

/// A number with `d` decimals; "—" when missing or not finite; no "-0.0".
fn num(x: Option<f64>, d: usize) -> String {
    match x {
        Some(v) if v.is_finite() => {
            let s = format!("{v:.d$}");
            if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
                s[1..].to_string()
            } else {
                s
            }
        }
        _ => DASH.to_string(),
    }
}

/// A p-value: "<0.001" below 0.001, else three decimals.
fn pval(p: Option<f64>) -> String {
    match p {
        Some(p) if p.is_finite() && p < 0.001 => "<0.001".to_string(),
        Some(p) if p.is_finite() => format!("{p:.3}"),
        _ => DASH.to_string(),
    }
}

/// "p = 0.123" or "p < 0.001", for prose.
fn p_prose(p: Option<f64>) -> String {
    let t = pval(p);
    match t.strip_prefix('<') {
        Some(rest) => format!("p < {rest}"),
        None => format!("p = {t}"),
    }
}

/// A confidence interval "(l, u)"; "—" when both limits are missing.
fn ci(l: Option<f64>, u: Option<f64>, d: usize) -> String {
    if l.is_none() && u.is_none() {
        DASH.to_string()
    } else {
        format!("({}, {})", num(l, d), num(u, d))
    }
}

fn pct(x: Option<f64>) -> String {
    num(x.map(|v| v * 100.0), 1)
}

fn months(days: Option<f64>) -> Option<f64> {
    days.map(|d| d / DAYS_PER_MONTH)
}

/// " (unit)" for labels; nothing for a dimensionless unit ("1") or none.
fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() || unit == "1" {
        String::new()
    } else {
        format!(" ({unit})")
    }
}

/// Decimals for tick labels when about `n` ticks span `lo..hi`.
fn tick_decimals(lo: f64, hi: f64, n: usize) -> usize {
    let step = (hi - lo).abs() / n.max(1) as f64;
    if step.is_finite() && step > 0.0 {
        (-step.log10().floor()).clamp(0.0, 4.0) as usize
    } else {
        1
    }
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn conf_label(levels: &BTreeSet<String>) -> String {
    match levels.iter().next() {
        Some(l) if levels.len() == 1 => format!("{l} CI"),
        _ => "CI".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// View structs (the template context; every number preformatted)
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct View {
    study_id: String,
    title: String,
    pipeline_path: String,
    version: &'static str,
    data_cut: String,
    run_started: String,
    pipeline_sha256: String,
    inputs: Vec<InputView>,
    arms: Vec<ArmView>,
    verdict: String,
    verdict_class: &'static str,
    disposition: DispositionView,
    quality: QualityView,
    params: Vec<ParamView>,
    responders: RespondersView,
    survival: Vec<EndpointView>,
    forest: ForestView,
    skipped: Vec<SkipView>,
    figure_count: usize,
}

#[derive(Serialize)]
struct InputView {
    path: String,
    bytes: u64,
    sha256: String,
}

#[derive(Serialize, Clone)]
struct ArmView {
    code: String,
    label: String,
    role: &'static str,
    color: String,
}

#[derive(Serialize)]
struct FigureView {
    id: String,
    file: String,
    title: String,
    caption: String,
    svg: String,
}

#[derive(Serialize)]
struct DispositionView {
    subjects_in_file: usize,
    subject_rows_read: usize,
    subjects_accepted: usize,
    randomized: usize,
    not_randomized: usize,
    eligibility: Option<EligView>,
    visits: Vec<String>,
    arms: Vec<ArmDispView>,
    total: ArmDispView,
}

#[derive(Serialize)]
struct EligView {
    eligible: usize,
    ineligible: usize,
    unknown: usize,
    not_evaluated: usize,
    /// The screening report: one row per criterion.
    criteria: Vec<CriterionView>,
    /// Subjects not shown eligible, with the criteria that excluded them or could not be shown.
    subjects: Vec<ScreenedView>,
}

#[derive(Serialize)]
struct CriterionView {
    id: String,
    kind: &'static str,
    description: String,
    met: usize,
    not_met: usize,
    unknown: usize,
}

#[derive(Serialize)]
struct ScreenedView {
    subject_id: String,
    verdict: &'static str,
    violated: String,
    unknown: String,
}

#[derive(Serialize, Default)]
struct ArmDispView {
    label: String,
    code: String,
    color: String,
    randomized: usize,
    dosed: usize,
    with_data: Vec<usize>,
    deaths: usize,
    transplants: usize,
    withdrawals: usize,
}

#[derive(Serialize)]
struct QualityView {
    verdict: String,
    verdict_class: &'static str,
    error_percent: String,
    threshold: String,
    lab_rows_read: u64,
    lab_rows_with_errors: u64,
    findings_total: usize,
    by_severity: Vec<(String, u64)>,
    by_rule: Vec<RuleView>,
    files: Vec<FileView>,
    files_total: FileView,
    sites: Vec<SiteView>,
}

#[derive(Serialize)]
struct RuleView {
    rule: String,
    severity: String,
    action: &'static str,
    count: usize,
    description: String,
}

#[derive(Serialize)]
struct FileView {
    file: String,
    kind: String,
    read: u64,
    accepted: u64,
    quarantined: u64,
}

#[derive(Serialize)]
struct SiteView {
    site: String,
    read: usize,
    accepted: usize,
    quarantined: usize,
    with_errors: usize,
}

#[derive(Serialize)]
struct ParamView {
    code: String,
    name: String,
    unit: String,
    /// " (unit)", or nothing for a dimensionless parameter.
    unit_label: String,
    anchor: String,
    aval: Vec<DescView>,
    chg: Vec<DescView>,
    comparisons: Vec<CompGroupView>,
    conf: String,
    primary_note: Option<String>,
    figures: Vec<FigureView>,
    shift: ShiftView,
}

#[derive(Serialize)]
struct DescView {
    visit: String,
    arm: String,
    color: String,
    first_of_visit: bool,
    n: String,
    mean: String,
    sd: String,
    median: String,
    q1: String,
    q3: String,
    min: String,
    max: String,
}

#[derive(Serialize)]
struct CompGroupView {
    analysis: String,
    method: &'static str,
    role: &'static str,
    /// The note every row of the group shares (then left out of the rows).
    note: String,
    rows: Vec<CompView>,
}

#[derive(Serialize)]
struct CompView {
    method: String,
    visit: String,
    group: String,
    n: String,
    estimate: String,
    ci: String,
    p: String,
    p_adjusted: String,
    note: String,
}

#[derive(Serialize)]
struct ShiftView {
    /// Whether any subject has a reference-range category (baseline or post-baseline).
    available: bool,
    post: Vec<&'static str>,
    arms: Vec<ShiftArmView>,
    rows: Vec<ShiftRowView>,
    totals: Vec<Vec<usize>>,
    both_high_low: usize,
}

#[derive(Serialize)]
struct ShiftArmView {
    label: String,
    color: String,
}

#[derive(Serialize)]
struct ShiftRowView {
    baseline: &'static str,
    /// Per arm: counts per post-baseline category, then the row total.
    cells: Vec<Vec<usize>>,
}

#[derive(Serialize)]
struct RespondersView {
    conf: String,
    arms: Vec<ArmView>,
    rules: Vec<RuleBlockView>,
}

#[derive(Serialize)]
struct RuleBlockView {
    id: String,
    description: String,
    rows: Vec<RespRowView>,
}

#[derive(Serialize)]
struct RespRowView {
    visit: String,
    arms: Vec<RespCellView>,
    contrasts: Vec<RespContrastView>,
}

#[derive(Serialize)]
struct RespCellView {
    count: String,
    percent: String,
    ci: String,
}

#[derive(Serialize)]
struct RespContrastView {
    group: String,
    rd: String,
    rd_ci: String,
    odds_ratio: String,
    or_ci: String,
    p: String,
    note: String,
}

#[derive(Serialize)]
struct EndpointView {
    code: String,
    name: String,
    analysis: String,
    anchor: String,
    conf: String,
    figure: FigureView,
    arms: Vec<KmArmView>,
    landmarks: Vec<String>,
    contrasts: Vec<HrView>,
    log_rank: LogRankView,
}

#[derive(Serialize)]
struct KmArmView {
    code: String,
    label: String,
    color: String,
    n: String,
    events: usize,
    median: String,
    median_ci: String,
    landmarks: Vec<String>,
}

#[derive(Serialize)]
struct HrView {
    group: String,
    hr: String,
    ci: String,
    p: String,
    p_prose: String,
    note: String,
}

#[derive(Serialize)]
struct LogRankView {
    group: String,
    chisq: String,
    df: String,
    p: String,
    p_prose: String,
    note: String,
}

#[derive(Serialize)]
struct ForestView {
    figure: Option<FigureView>,
    conf: String,
    rows: Vec<ForestRowView>,
    adjusted: Vec<AdjView>,
}

#[derive(Serialize)]
struct ForestRowView {
    param: String,
    visit: String,
    group: String,
    method: String,
    estimate: String,
    ci: String,
    p: String,
}

#[derive(Serialize)]
struct AdjView {
    analysis: String,
    adjustment: String,
    method: String,
    param: String,
    visit: String,
    group: String,
    p: String,
    p_adjusted: String,
}

#[derive(Serialize)]
struct SkipView {
    analysis: String,
    method: String,
    reason: String,
}

#[derive(Serialize)]
struct SummaryView {
    study_id: String,
    title: String,
    version: &'static str,
    data_cut: String,
    run_started: String,
    verdict: String,
    error_percent: String,
    threshold: String,
    rows_read: u64,
    rows_accepted: u64,
    rows_quarantined: u64,
    severities: Vec<(String, u64)>,
    headlines: Vec<String>,
    survival: Vec<String>,
    skipped: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Context shared by the builders
// ---------------------------------------------------------------------------------------------

const PALETTE: [(u8, u8, u8); 6] = [
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (230, 159, 0),
];

#[derive(Clone)]
struct Arm {
    code: String,
    label: String,
    role: ArmRole,
    rgb: RGBColor,
}

impl Arm {
    fn css(&self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.rgb.0, self.rgb.1, self.rgb.2)
    }
    fn view(&self) -> ArmView {
        ArmView {
            code: self.code.clone(),
            label: self.label.clone(),
            role: match self.role {
                ArmRole::Control => "control",
                ArmRole::Experimental => "experimental",
            },
            color: self.css(),
        }
    }
}

struct Ctx<'a> {
    input: &'a ReportInput<'a>,
    arms: Vec<Arm>,
    /// "Experimental label - Control label" (as analyze writes contrasts) → "EXP − CTL" codes.
    contrasts: BTreeMap<String, String>,
    /// Analysis id → (method, confidence level as "95%", adjustment).
    analyses: BTreeMap<String, (Method, String, Option<Multiplicity>)>,
}

impl<'a> Ctx<'a> {
    fn new(input: &'a ReportInput<'a>) -> Self {
        let p = &input.lp.pipeline;
        let arms: Vec<Arm> = p
            .arms
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let (r, g, b) = PALETTE[i % PALETTE.len()];
                Arm {
                    code: a.code.clone(),
                    label: a.label.clone(),
                    role: a.role,
                    rgb: RGBColor(r, g, b),
                }
            })
            .collect();
        let mut contrasts = BTreeMap::new();
        for e in arms.iter().filter(|a| a.role == ArmRole::Experimental) {
            for c in arms.iter().filter(|a| a.role == ArmRole::Control) {
                contrasts.insert(
                    format!("{} - {}", e.label, c.label),
                    format!("{} − {}", e.code, c.code),
                );
            }
        }
        let analyses = p
            .analyses
            .iter()
            .map(|a| {
                let level = a.conf_level.unwrap_or(0.95) * 100.0;
                let level = if (level - level.round()).abs() < 1e-9 {
                    format!("{level:.0}%")
                } else {
                    format!("{level}%")
                };
                (a.id.clone(), (a.method, level, a.adjust))
            })
            .collect();
        Ctx {
            input,
            arms,
            contrasts,
            analyses,
        }
    }

    fn arm_by_label(&self, label: &str) -> Option<&Arm> {
        self.arms.iter().find(|a| a.label == label)
    }

    fn arm_index_by_label(&self, label: &str) -> usize {
        self.arms
            .iter()
            .position(|a| a.label == label)
            .unwrap_or(usize::MAX)
    }

    /// A contrast or arm label shortened to arm codes for tables and figures.
    fn group(&self, g: &str) -> String {
        if let Some(c) = self.contrasts.get(g) {
            return c.clone();
        }
        if let Some(a) = self.arm_by_label(g) {
            return a.code.clone();
        }
        g.split("; ")
            .map(|part| {
                self.contrasts
                    .get(part)
                    .cloned()
                    .unwrap_or(part.to_string())
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn is_contrast(&self, g: &str) -> bool {
        self.contrasts.contains_key(g) || g.contains(" - ")
    }

    fn method_of(&self, analysis: &str) -> Option<Method> {
        self.analyses.get(analysis).map(|a| a.0)
    }

    fn level_of(&self, analysis: &str) -> String {
        self.analyses
            .get(analysis)
            .map_or("95%".to_string(), |a| a.1.clone())
    }

    fn conf_for<'r>(&self, rows: impl Iterator<Item = &'r ResultRow>) -> String {
        let levels: BTreeSet<String> = rows.map(|r| self.level_of(&r.analysis)).collect();
        conf_label(&levels)
    }
}

fn method_name(m: &str) -> String {
    match m {
        "ancova_lsmean" => "ANCOVA LS-mean".into(),
        "mmrm_lsmean" => "MMRM LS-mean".into(),
        "mmrm_difference" => "MMRM difference".into(),
        "ancova_difference" => "ANCOVA difference".into(),
        "t_welch" => "Welch t test".into(),
        "t_pooled" => "Pooled t test".into(),
        "t_paired" => "Paired t test".into(),
        "wilcoxon_rank_sum" => "Wilcoxon rank-sum (HL shift)".into(),
        "wilcoxon_signed_rank" => "Wilcoxon signed-rank".into(),
        "proportion_wilson" => "Proportion (Wilson)".into(),
        "proportion_clopper_pearson" => "Proportion (Clopper-Pearson)".into(),
        "risk_difference_newcombe" => "Risk difference (Newcombe)".into(),
        "fisher_exact_or" => "Fisher exact (odds ratio)".into(),
        "km_median" => "Kaplan-Meier median".into(),
        "km_survival" => "Kaplan-Meier survival".into(),
        "log_rank" => "Log-rank".into(),
        "cox_hr" => "Cox hazard ratio".into(),
        other if other.starts_with("mmrm") => format!("MMRM {}", other.trim_start_matches("mmrm_")),
        other => other.to_string(),
    }
}

fn analysis_method_name(m: Method) -> &'static str {
    match m {
        Method::Descriptive => "descriptive",
        Method::TTest => "t test",
        Method::Wilcoxon => "Wilcoxon",
        Method::Ancova => "ANCOVA",
        Method::Mmrm => "MMRM",
        Method::Responders => "responders",
        Method::Survival => "survival",
    }
}

fn adjustment_name(m: Option<Multiplicity>) -> &'static str {
    match m {
        Some(Multiplicity::Holm) => "Holm",
        Some(Multiplicity::Hochberg) => "Hochberg",
        Some(Multiplicity::Bh) => "Benjamini-Hochberg",
        Some(Multiplicity::Bonferroni) => "Bonferroni",
        None => DASH,
    }
}

fn verdict_text(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Clean => ("clean", "clean"),
        Verdict::Warnings => ("warnings", "warnings"),
        Verdict::ErrorsOverThreshold => ("errors over threshold", "errors"),
    }
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/// Render the report: the HTML page, the e-mail digest and the standalone figures.
pub fn render(input: &ReportInput<'_>) -> Result<Report, ReportError> {
    let ctx = Ctx::new(input);
    let lp = input.lp;
    let v = input.validation;
    let (verdict, verdict_class) = verdict_text(v.summary.verdict);

    let data_cut = input
        .data
        .labs
        .iter()
        .zip(&v.labs)
        .filter(|(_, d)| d.accepted())
        .filter_map(|(r, _)| r.collection_date)
        .max()
        .map_or_else(|| DASH.to_string(), |d| d.to_string());

    let mut figures: Vec<(String, String)> = Vec::new();
    let disposition = disposition(&ctx)?;
    let quality = quality(&ctx);
    let params = params(&ctx, &mut figures)?;
    let responders = responders(&ctx);
    let survival = survival(&ctx, &mut figures)?;
    let forest = forest(&ctx, &mut figures)?;
    let skipped = input
        .analysis
        .skipped
        .iter()
        .map(|(a, reason)| SkipView {
            analysis: a.clone(),
            method: ctx
                .method_of(a)
                .map_or(DASH, analysis_method_name)
                .to_string(),
            reason: reason.clone(),
        })
        .collect();

    let view = View {
        study_id: lp.pipeline.study.id.clone(),
        title: lp.pipeline.study.title.clone(),
        pipeline_path: lp.path.display().to_string(),
        version: env!("CARGO_PKG_VERSION"),
        data_cut: data_cut.clone(),
        run_started: input.run_started.to_string(),
        pipeline_sha256: input.pipeline_sha256.to_string(),
        inputs: input
            .inputs
            .iter()
            .map(|f| InputView {
                path: f.path.clone(),
                bytes: f.bytes,
                sha256: f.sha256.clone(),
            })
            .collect(),
        arms: ctx.arms.iter().map(Arm::view).collect(),
        verdict: verdict.to_string(),
        verdict_class,
        disposition,
        quality,
        params,
        responders,
        survival,
        forest,
        skipped,
        figure_count: figures.len(),
    };
    let summary = summary_view(&ctx, &view);

    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Autoescaping by file name: `.html.j2` escapes HTML, `.md.j2` (plain text) does not.
    env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
    for (name, src) in [
        ("index.html.j2", INDEX_TEMPLATE),
        ("summary.md.j2", SUMMARY_TEMPLATE),
    ] {
        env.add_template(name, src)
            .map_err(|source| ReportError::Template {
                template: name,
                source,
            })?;
    }
    let html = render_template(&env, "index.html.j2", &view)?;
    let summary_md = render_template(&env, "summary.md.j2", &summary)?;
    Ok(Report {
        html,
        summary_md,
        figures,
    })
}

fn render_template<S: Serialize>(
    env: &Environment<'_>,
    name: &'static str,
    ctx: &S,
) -> Result<String, ReportError> {
    env.get_template(name)
        .and_then(|t| t.render(minijinja::value::Serde(ctx)))
        .map_err(|source| ReportError::Template {
            template: name,
            source,
        })
}

// ---------------------------------------------------------------------------------------------
// Disposition
// ---------------------------------------------------------------------------------------------

fn text_column(t: &Table, name: &'static str) -> Result<Vec<Option<String>>, ReportError> {
    let col = t
        .columns
        .iter()
        .find(|c| c.name == name)
        .ok_or(ReportError::Dataset {
            dataset: "ADSL",
            column: name,
        })?;
    Ok(match &col.data {
        ColumnData::Str(v) | ColumnData::Cat(v) => v.to_vec(),
        ColumnData::Date(v) => v.iter().map(|d| d.map(|d| d.to_string())).collect(),
        ColumnData::I64(v) => v.iter().map(|x| x.map(|x| x.to_string())).collect(),
        ColumnData::F64(v) => v.iter().map(|x| x.map(|x| x.to_string())).collect(),
    })
}

fn disposition(ctx: &Ctx<'_>) -> Result<DispositionView, ReportError> {
    let input = ctx.input;
    let adsl = &input.derived.output.adsl;
    let usubjid = text_column(adsl, "USUBJID")?;
    let armcd = text_column(adsl, "ARMCD")?;
    let randfl = text_column(adsl, "RANDFL")?;
    let saffl = text_column(adsl, "SAFFL")?;
    let dthfl = text_column(adsl, "DTHFL")?;
    let transdt = text_column(adsl, "TRANSDT")?;
    let wddt = text_column(adsl, "WDDT")?;
    let windows = &input.lp.pipeline.visits.windows;
    let visits: Vec<String> = windows.iter().map(|w| w.name.clone()).collect();

    // Subjects with an analysed record (ANL01FL) at each window, any parameter.
    let mut at_visit: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for r in input.derived.adlb.iter().filter(|r| r.anl01fl.is_some()) {
        if let (Some(a), Some(v)) = (r.armcd.as_deref(), r.avisit.as_deref()) {
            at_visit
                .entry((a, v))
                .or_default()
                .insert(r.usubjid.as_str());
        }
    }

    let y = |v: &Option<String>| v.as_deref() == Some("Y");
    let mut arms = Vec::new();
    let mut total = ArmDispView {
        label: "Total".into(),
        with_data: vec![0; visits.len()],
        ..Default::default()
    };
    for arm in &ctx.arms {
        let rows: Vec<usize> = (0..usubjid.len())
            .filter(|&i| armcd[i].as_deref() == Some(arm.code.as_str()) && y(&randfl[i]))
            .collect();
        let randomized: BTreeSet<&str> =
            rows.iter().filter_map(|&i| usubjid[i].as_deref()).collect();
        let with_data: Vec<usize> = visits
            .iter()
            .map(|v| {
                at_visit
                    .get(&(arm.code.as_str(), v.as_str()))
                    .map_or(0, |s| s.iter().filter(|u| randomized.contains(*u)).count())
            })
            .collect();
        let d = ArmDispView {
            label: arm.label.clone(),
            code: arm.code.clone(),
            color: arm.css(),
            randomized: rows.len(),
            dosed: rows.iter().filter(|&&i| y(&saffl[i])).count(),
            with_data,
            deaths: rows.iter().filter(|&&i| y(&dthfl[i])).count(),
            transplants: rows.iter().filter(|&&i| transdt[i].is_some()).count(),
            withdrawals: rows.iter().filter(|&&i| wddt[i].is_some()).count(),
        };
        total.randomized += d.randomized;
        total.dosed += d.dosed;
        total.deaths += d.deaths;
        total.transplants += d.transplants;
        total.withdrawals += d.withdrawals;
        for (t, x) in total.with_data.iter_mut().zip(&d.with_data) {
            *t += x;
        }
        arms.push(d);
    }

    let ids: BTreeSet<&str> = input
        .data
        .subjects
        .iter()
        .map(|s| s.subject_id.as_str())
        .collect();
    let eligibility = (!input.lp.pipeline.eligibility.is_empty()).then(|| {
        use crate::eligibility::Verdict as E;
        let count = |v: E| {
            input
                .validation
                .eligibility
                .iter()
                .filter(|e| e.verdict == v)
                .count()
        };
        let evaluated: BTreeSet<&str> = input
            .validation
            .eligibility
            .iter()
            .map(|e| e.subject_id.as_str())
            .collect();
        let results = &input.validation.criteria;
        let criteria = input
            .lp
            .pipeline
            .eligibility
            .iter()
            .map(|c| {
                let of = |v: Option<bool>| {
                    results
                        .iter()
                        .filter(|r| r.criterion == c.id && r.satisfied == v)
                        .count()
                };
                CriterionView {
                    id: c.id.clone(),
                    kind: match c.kind {
                        crate::spec::CriterionKind::Inclusion => "inclusion",
                        crate::spec::CriterionKind::Exclusion => "exclusion",
                    },
                    description: c.description.clone(),
                    met: of(Some(true)),
                    not_met: of(Some(false)),
                    unknown: of(None),
                }
            })
            .collect();
        let subjects = input
            .validation
            .eligibility
            .iter()
            .filter(|e| e.verdict != E::Eligible)
            .map(|e| ScreenedView {
                subject_id: e.subject_id.clone(),
                verdict: if e.verdict == E::Ineligible {
                    "ineligible"
                } else {
                    "unknown"
                },
                violated: e.violated.join(", "),
                unknown: e.unknown.join(", "),
            })
            .collect();
        EligView {
            eligible: count(E::Eligible),
            ineligible: count(E::Ineligible),
            unknown: count(E::Unknown),
            not_evaluated: ids.iter().filter(|i| !evaluated.contains(*i)).count(),
            criteria,
            subjects,
        }
    });
    let accepted = usubjid.len();
    Ok(DispositionView {
        subjects_in_file: ids.len(),
        subject_rows_read: input.data.subjects.len(),
        subjects_accepted: accepted,
        randomized: total.randomized,
        not_randomized: accepted.saturating_sub(total.randomized),
        eligibility,
        visits,
        arms,
        total,
    })
}

// ---------------------------------------------------------------------------------------------
// Data quality
// ---------------------------------------------------------------------------------------------

fn severity_rank(s: &str) -> u8 {
    match s {
        "error" => 0,
        "warning" => 1,
        "note" => 2,
        _ => 3,
    }
}

fn quality(ctx: &Ctx<'_>) -> QualityView {
    let v = ctx.input.validation;
    let s = &v.summary;
    let (verdict, verdict_class) = verdict_text(s.verdict);

    let mut by_rule: BTreeMap<(u8, &str, &str), usize> = BTreeMap::new();
    for f in &v.findings {
        let sev = validate::severity_name(f.severity);
        *by_rule
            .entry((severity_rank(sev), f.rule, sev))
            .or_default() += 1;
    }
    let by_rule = by_rule
        .into_iter()
        .map(|((_, rule, sev), count)| {
            let r = validate::rule_by_id(rule);
            RuleView {
                rule: rule.to_string(),
                severity: sev.to_string(),
                action: match r.map(|r| r.action) {
                    Some(validate::Action::Quarantine) => "quarantine",
                    Some(validate::Action::Flag) => "flag",
                    None => DASH,
                },
                count,
                description: r.map_or(String::new(), |r| r.description.to_string()),
            }
        })
        .collect();
    let mut by_severity: Vec<(String, u64)> = s
        .findings_by_severity
        .iter()
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    by_severity.sort_by_key(|(k, _)| (severity_rank(k), k.clone()));

    let files: Vec<FileView> = s
        .files
        .iter()
        .map(|f| FileView {
            file: f.file.clone(),
            kind: f.kind.to_string(),
            read: f.rows_read,
            accepted: f.rows_accepted,
            quarantined: f.rows_quarantined,
        })
        .collect();
    let files_total = FileView {
        file: "Total".into(),
        kind: String::new(),
        read: files.iter().map(|f| f.read).sum(),
        accepted: files.iter().map(|f| f.accepted).sum(),
        quarantined: files.iter().map(|f| f.quarantined).sum(),
    };

    let mut sites: BTreeMap<&str, SiteView> = BTreeMap::new();
    for (r, d) in ctx.input.data.labs.iter().zip(&v.labs) {
        let e = sites.entry(r.site_id.as_str()).or_insert(SiteView {
            site: r.site_id.to_string(),
            read: 0,
            accepted: 0,
            quarantined: 0,
            with_errors: 0,
        });
        e.read += 1;
        if d.accepted() {
            e.accepted += 1;
        } else {
            e.quarantined += 1;
        }
        if d.errors {
            e.with_errors += 1;
        }
    }
    QualityView {
        verdict: verdict.to_string(),
        verdict_class,
        error_percent: format!("{:.2}%", s.error_percent),
        threshold: s
            .max_error_percent
            .map_or("none".to_string(), |t| format!("{t}%")),
        lab_rows_read: s.lab_rows_read,
        lab_rows_with_errors: s.lab_rows_with_errors,
        findings_total: v.findings.len(),
        by_severity,
        by_rule,
        files,
        files_total,
        sites: sites.into_values().collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Lab parameters
// ---------------------------------------------------------------------------------------------

struct ParamMeta {
    code: String,
    name: String,
    unit: String,
    decimals: usize,
}

fn param_list(ctx: &Ctx<'_>) -> Vec<ParamMeta> {
    let input = ctx.input;
    let p = &input.lp.pipeline;
    let mut codes: Vec<&str> = Vec::new();
    for d in &input.analysis.descriptive {
        if !codes.contains(&d.paramcd.as_str()) {
            codes.push(&d.paramcd);
        }
    }
    // Panel order first, then anything else in the order analyze produced it.
    let order = |c: &str| {
        p.labs
            .iter()
            .position(|t| t.code == c)
            .unwrap_or(usize::MAX)
    };
    let mut idx: Vec<(usize, usize)> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| (order(c), i))
        .collect();
    idx.sort();
    idx.into_iter()
        .map(|(_, i)| {
            let code = codes[i];
            let lab = p.labs.iter().find(|t| t.code == code);
            let first = input.derived.adlb.iter().find(|r| r.paramcd == code);
            let unit = first
                .map(|r| r.avalu.to_string())
                .or_else(|| lab.map(|t| t.unit.clone()))
                .unwrap_or_default();
            // Panel tests by their name; derived parameters (scores) by their ADLB PARAM.
            let name = lab.map(|t| t.name.clone()).or_else(|| {
                first.map(|r| {
                    r.param
                        .strip_suffix(&format!(" ({unit})"))
                        .unwrap_or(&r.param)
                        .to_string()
                })
            });
            ParamMeta {
                code: code.to_string(),
                name: name.unwrap_or_else(|| code.to_string()),
                unit,
                decimals: lab.and_then(|t| t.decimals).map_or(2, |d| d as usize),
            }
        })
        .collect()
}

/// Lab comparison methods (the analyses that compare lab values between or within arms).
fn is_lab_comparison(m: Option<Method>) -> bool {
    matches!(
        m,
        Some(Method::Mmrm | Method::Ancova | Method::TTest | Method::Wilcoxon)
    )
}

/// Rank of a result row as the headline comparison: MMRM contrast, else ANCOVA difference, else
/// Welch t (paired t for a single arm), else Wilcoxon; `None` for rows that are not contrasts.
fn headline_rank(ctx: &Ctx<'_>, r: &ResultRow) -> Option<u8> {
    match (ctx.method_of(&r.analysis), r.method.as_str()) {
        (Some(Method::Mmrm), _) if ctx.is_contrast(&r.group) => Some(0),
        (_, "ancova_difference") => Some(1),
        (_, "t_welch" | "t_paired") => Some(2),
        (_, "wilcoxon_rank_sum" | "wilcoxon_signed_rank") => Some(3),
        _ => None,
    }
}

fn desc_views(ctx: &Ctx<'_>, rows: &[&DescRow], d: usize) -> Vec<DescView> {
    let mut rows: Vec<&DescRow> = rows.to_vec();
    rows.sort_by(|a, b| {
        a.avisitn.total_cmp(&b.avisitn).then(
            ctx.arm_index_by_label(&a.arm)
                .cmp(&ctx.arm_index_by_label(&b.arm)),
        )
    });
    let mut last_visit: Option<&str> = None;
    rows.iter()
        .map(|r| {
            let first = last_visit != Some(r.avisit.as_str());
            last_visit = Some(r.avisit.as_str());
            let arm = ctx.arm_by_label(&r.arm);
            let base = DescView {
                visit: r.avisit.clone(),
                arm: r.arm.clone(),
                color: arm.map_or(String::new(), Arm::css),
                first_of_visit: first,
                n: "0".into(),
                mean: DASH.into(),
                sd: DASH.into(),
                median: DASH.into(),
                q1: DASH.into(),
                q3: DASH.into(),
                min: DASH.into(),
                max: DASH.into(),
            };
            match &r.summary {
                Ok(s) => DescView {
                    n: s.n.to_string(),
                    mean: num(Some(s.mean), d + 1),
                    sd: num(s.sd, d + 2),
                    median: num(Some(s.median), d + 1),
                    q1: num(Some(s.q1), d + 1),
                    q3: num(Some(s.q3), d + 1),
                    min: num(Some(s.min), d),
                    max: num(Some(s.max), d),
                    ..base
                },
                Err(_) => base,
            }
        })
        .collect()
}

fn params(
    ctx: &Ctx<'_>,
    figures: &mut Vec<(String, String)>,
) -> Result<Vec<ParamView>, ReportError> {
    let input = ctx.input;
    let mut out = Vec::new();
    for pm in param_list(ctx) {
        let code = pm.code.as_str();
        let d = pm.decimals;
        // Descriptive rows of the first descriptive analysis that has this parameter.
        let first_analysis = input
            .analysis
            .descriptive
            .iter()
            .find(|r| r.paramcd == code)
            .map(|r| r.analysis.clone())
            .unwrap_or_default();
        let desc: Vec<&DescRow> = input
            .analysis
            .descriptive
            .iter()
            .filter(|r| r.paramcd == code && r.analysis == first_analysis)
            .collect();
        let by_var = |v: &str| -> Vec<&DescRow> {
            desc.iter().copied().filter(|r| r.variable == v).collect()
        };
        let aval = desc_views(ctx, &by_var("AVAL"), d);
        let chg_rows = by_var("CHG");
        let chg = desc_views(ctx, &chg_rows, d);

        let comps: Vec<&ResultRow> = input
            .analysis
            .results
            .iter()
            .filter(|r| {
                r.paramcd.as_deref() == Some(code) && is_lab_comparison(ctx.method_of(&r.analysis))
            })
            .collect();
        let has_mmrm = comps
            .iter()
            .any(|r| ctx.method_of(&r.analysis) == Some(Method::Mmrm));
        let mmrm_declared = input.lp.pipeline.analyses.iter().any(|a| {
            a.method == Method::Mmrm && (a.params.is_empty() || a.params.iter().any(|p| p == code))
        });
        let primary_note = (!has_mmrm && mmrm_declared && !comps.is_empty()).then(|| {
            "The MMRM analysis declared as primary was not run (see Analyses not run); \
             ANCOVA is the headline comparison and the other methods are sensitivity analyses."
                .to_string()
        });
        let mut comparisons: Vec<CompGroupView> = Vec::new();
        for r in &comps {
            let m = ctx.method_of(&r.analysis);
            if comparisons.last().is_none_or(|g| g.analysis != r.analysis) {
                let notes: BTreeSet<Option<&str>> = comps
                    .iter()
                    .filter(|x| x.analysis == r.analysis)
                    .map(|x| x.note.as_deref())
                    .collect();
                comparisons.push(CompGroupView {
                    analysis: r.analysis.clone(),
                    method: m.map_or(DASH, analysis_method_name),
                    role: if m == Some(Method::Mmrm) {
                        "primary"
                    } else {
                        "sensitivity"
                    },
                    note: match notes.iter().next() {
                        Some(Some(n)) if notes.len() == 1 => n.to_string(),
                        _ => String::new(),
                    },
                    rows: Vec::new(),
                });
            }
            let g = comparisons.last_mut().expect("pushed above");
            let shared = !g.note.is_empty();
            g.rows.push(CompView {
                method: method_name(&r.method),
                visit: r.avisit.clone().unwrap_or_default(),
                group: ctx.group(&r.group),
                n: r.n.map_or(DASH.to_string(), |n| n.to_string()),
                estimate: num(r.estimate, d + 1),
                ci: ci(r.lcl, r.ucl, d + 1),
                p: pval(r.p_value),
                p_adjusted: pval(r.p_adjusted),
                note: if shared {
                    String::new()
                } else {
                    r.note.clone().unwrap_or_default()
                },
            });
        }
        let conf = ctx.conf_for(comps.iter().copied());

        let mut figs = Vec::new();
        if !chg_rows.is_empty() {
            let file = format!("mean_chg_{}.svg", safe_name(code));
            let svg = chart_mean_change(ctx, &file, &pm, &chg_rows)?;
            figs.push(figure(
                figures,
                file,
                format!("{code}: mean change from baseline by visit"),
                format!(
                    "Mean ± SE of change from baseline{} by analysis visit and arm, \
                     from the descriptive statistics.",
                    unit_suffix(&pm.unit)
                ),
                svg,
            ));
        }
        let traj: Vec<&AdlbRow> = input
            .derived
            .adlb
            .iter()
            .filter(|r| {
                r.paramcd == code
                    && r.anl01fl.is_some()
                    && r.dtype.is_none()
                    && r.aval.is_some()
                    && r.ady.is_some()
            })
            .collect();
        if !traj.is_empty() {
            let file = format!("spaghetti_{}.svg", safe_name(code));
            let svg = chart_spaghetti(ctx, &file, &pm, &traj)?;
            figs.push(figure(
                figures,
                file,
                format!("{code}: individual trajectories"),
                format!(
                    "{}{} by study day for each subject, analysed records (ANL01FL) only, \
                     one panel per arm.",
                    pm.name,
                    unit_suffix(&pm.unit)
                ),
                svg,
            ));
        }
        out.push(ParamView {
            code: pm.code.clone(),
            name: pm.name.clone(),
            unit: pm.unit.clone(),
            unit_label: unit_suffix(&pm.unit),
            anchor: format!("param-{}", safe_name(code)),
            aval,
            chg,
            comparisons,
            conf,
            primary_note,
            figures: figs,
            shift: shift_table(ctx, code),
        });
    }
    Ok(out)
}

fn figure(
    all: &mut Vec<(String, String)>,
    file: String,
    title: String,
    caption: String,
    svg: String,
) -> FigureView {
    // Inline copies drop the namespace declaration (HTML5 knows <svg>), so the page holds no
    // URL at all; the standalone files keep it, as SVG files must.
    let inline = svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1);
    all.push((file.clone(), svg));
    FigureView {
        id: format!("fig-{}", file.trim_end_matches(".svg")),
        file,
        title,
        caption,
        svg: inline,
    }
}

/// Baseline category (BNRIND) against worst post-baseline category per subject: LOW when the
/// subject's lowest post-baseline value (WORSTLFL) is LOW, else the ANRIND of the highest
/// post-baseline value (WORSTHFL). Subjects with no post-baseline value are not counted.
fn shift_table(ctx: &Ctx<'_>, code: &str) -> ShiftView {
    const BASE: [&str; 4] = ["LOW", "NORMAL", "HIGH", "MISSING"];
    const POST: [&str; 4] = ["LOW", "NORMAL", "HIGH", "MISSING"];
    // usubjid → (arm code, bnrind, worst-high anrind, worst-low anrind)
    type Worst<'r> = (
        Option<&'r str>,
        Option<&'r str>,
        Option<&'r str>,
        Option<&'r str>,
    );
    let mut subj: BTreeMap<&str, Worst> = BTreeMap::new();
    for r in ctx
        .input
        .derived
        .adlb
        .iter()
        .filter(|r| r.paramcd == code && (r.worsthfl.is_some() || r.worstlfl.is_some()))
    {
        let e = subj.entry(r.usubjid.as_str()).or_insert((
            r.armcd.as_deref(),
            r.bnrind.map(crate::derive::NrInd::as_str),
            None,
            None,
        ));
        if r.worsthfl.is_some() && e.2.is_none() {
            e.2 = Some(r.anrind.map_or("MISSING", crate::derive::NrInd::as_str));
        }
        if r.worstlfl.is_some() && e.3.is_none() {
            e.3 = Some(r.anrind.map_or("MISSING", crate::derive::NrInd::as_str));
        }
    }
    let mut counts = vec![[[0usize; 4]; 4]; ctx.arms.len()];
    let mut both = 0;
    for (arm, bnr, hi, lo) in subj.values() {
        let Some(k) = ctx.arms.iter().position(|a| Some(a.code.as_str()) == *arm) else {
            continue;
        };
        if *hi == Some("HIGH") && *lo == Some("LOW") {
            both += 1;
        }
        let worst = if *lo == Some("LOW") {
            "LOW"
        } else {
            hi.or(*lo).unwrap_or("MISSING")
        };
        let b = BASE.iter().position(|x| Some(*x) == *bnr).unwrap_or(3);
        let w = POST.iter().position(|x| *x == worst).unwrap_or(3);
        counts[k][b][w] += 1;
    }
    let post_used: Vec<usize> = (0..4)
        .filter(|&w| w < 3 || counts.iter().any(|a| a.iter().any(|row| row[w] > 0)))
        .collect();
    let base_used: Vec<usize> = (0..4)
        .filter(|&b| b < 3 || counts.iter().any(|a| a[b].iter().any(|&x| x > 0)))
        .collect();
    let rows = base_used
        .iter()
        .map(|&b| ShiftRowView {
            baseline: BASE[b],
            cells: counts
                .iter()
                .map(|a| {
                    let mut c: Vec<usize> = post_used.iter().map(|&w| a[b][w]).collect();
                    c.push(c.iter().sum());
                    c
                })
                .collect(),
        })
        .collect();
    let totals = counts
        .iter()
        .map(|a| {
            let mut c: Vec<usize> = post_used
                .iter()
                .map(|&w| base_used.iter().map(|&b| a[b][w]).sum())
                .collect();
            c.push(c.iter().sum());
            c
        })
        .collect();
    let available = counts
        .iter()
        .any(|a| (0..3).any(|i| (0..4).any(|j| a[i][j] > 0 || a[j][i] > 0)));
    ShiftView {
        available,
        post: post_used.iter().map(|&w| POST[w]).collect(),
        arms: ctx
            .arms
            .iter()
            .map(|a| ShiftArmView {
                label: a.label.clone(),
                color: a.css(),
            })
            .collect(),
        rows,
        totals,
        both_high_low: both,
    }
}

// ---------------------------------------------------------------------------------------------
// Responders
// ---------------------------------------------------------------------------------------------

fn responders(ctx: &Ctx<'_>) -> RespondersView {
    let input = ctx.input;
    let rows: Vec<&ResultRow> = input
        .analysis
        .results
        .iter()
        .filter(|r| ctx.method_of(&r.analysis) == Some(Method::Responders))
        .collect();
    let mut ids: Vec<&str> = Vec::new();
    for r in &rows {
        if let Some(p) = r.paramcd.as_deref()
            && !ids.contains(&p)
        {
            ids.push(p);
        }
    }
    let rules = ids
        .iter()
        .map(|id| {
            let mine: Vec<&&ResultRow> = rows
                .iter()
                .filter(|r| r.paramcd.as_deref() == Some(*id))
                .collect();
            let mut visits: Vec<(f64, String)> = Vec::new();
            for r in &mine {
                if let (Some(n), Some(v)) = (r.avisitn, &r.avisit)
                    && !visits.iter().any(|x| &x.1 == v)
                {
                    visits.push((n, v.clone()));
                }
            }
            visits.sort_by(|a, b| a.0.total_cmp(&b.0));
            let rows = visits
                .iter()
                .map(|(_, visit)| {
                    let at: Vec<&&&ResultRow> = mine
                        .iter()
                        .filter(|r| r.avisit.as_deref() == Some(visit.as_str()))
                        .collect();
                    let arms = ctx
                        .arms
                        .iter()
                        .map(|a| {
                            match at
                                .iter()
                                .find(|r| r.method == "proportion_wilson" && r.group == a.label)
                            {
                                Some(r) => RespCellView {
                                    count: match (r.estimate, r.n) {
                                        (Some(e), Some(n)) => {
                                            format!("{}/{n}", (e * n as f64).round() as i64)
                                        }
                                        (None, Some(n)) => format!("–/{n}"),
                                        _ => DASH.into(),
                                    },
                                    percent: pct(r.estimate),
                                    ci: ci(r.lcl.map(|x| x * 100.0), r.ucl.map(|x| x * 100.0), 1),
                                },
                                None => RespCellView {
                                    count: DASH.into(),
                                    percent: DASH.into(),
                                    ci: DASH.into(),
                                },
                            }
                        })
                        .collect();
                    let mut groups: Vec<&str> = Vec::new();
                    for r in &at {
                        if ctx.is_contrast(&r.group) && !groups.contains(&r.group.as_str()) {
                            groups.push(&r.group);
                        }
                    }
                    let contrasts = groups
                        .iter()
                        .map(|g| {
                            let find = |m: &str| {
                                at.iter()
                                    .find(|r| r.method == m && r.group == *g)
                                    .map(|r| ***r)
                            };
                            let rd = find("risk_difference_newcombe");
                            let fe = find("fisher_exact_or");
                            let notes: Vec<String> = [rd, fe]
                                .iter()
                                .flatten()
                                .filter_map(|r| r.note.clone())
                                .collect();
                            RespContrastView {
                                group: ctx.group(g),
                                rd: rd.map_or(DASH.into(), |r| pct(r.estimate)),
                                rd_ci: rd.map_or(DASH.into(), |r| {
                                    ci(r.lcl.map(|x| x * 100.0), r.ucl.map(|x| x * 100.0), 1)
                                }),
                                odds_ratio: fe.map_or(DASH.into(), |r| num(r.estimate, 2)),
                                or_ci: fe.map_or(DASH.into(), |r| ci(r.lcl, r.ucl, 2)),
                                p: fe.map_or(DASH.into(), |r| pval(r.p_value)),
                                note: notes.join("; "),
                            }
                        })
                        .collect();
                    RespRowView {
                        visit: visit.clone(),
                        arms,
                        contrasts,
                    }
                })
                .collect();
            RuleBlockView {
                id: id.to_string(),
                description: input
                    .lp
                    .pipeline
                    .responses
                    .iter()
                    .find(|r| r.id == *id)
                    .map_or(String::new(), |r| r.description.clone()),
                rows,
            }
        })
        .collect();
    RespondersView {
        conf: ctx.conf_for(rows.iter().copied()),
        arms: ctx.arms.iter().map(Arm::view).collect(),
        rules,
    }
}

// ---------------------------------------------------------------------------------------------
// Survival
// ---------------------------------------------------------------------------------------------

fn survival(
    ctx: &Ctx<'_>,
    figures: &mut Vec<(String, String)>,
) -> Result<Vec<EndpointView>, ReportError> {
    let input = ctx.input;
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for c in &input.analysis.km_curves {
        let k = (c.analysis.as_str(), c.paramcd.as_str());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let several = keys.iter().map(|k| k.0).collect::<BTreeSet<_>>().len() > 1;
    let mut out = Vec::new();
    for (analysis, code) in keys {
        let curves: Vec<&KmCurve> = input
            .analysis
            .km_curves
            .iter()
            .filter(|c| c.analysis == analysis && c.paramcd == code)
            .collect();
        let rows: Vec<&ResultRow> = input
            .analysis
            .results
            .iter()
            .filter(|r| r.analysis == analysis && r.paramcd.as_deref() == Some(code))
            .collect();
        let name = input
            .derived
            .adtte
            .iter()
            .find(|r| r.paramcd == code)
            .map_or(code.to_string(), |r| {
                r.param.trim_end_matches(" (days)").to_string()
            });
        let file = if several {
            format!("km_{}_{}.svg", safe_name(analysis), safe_name(code))
        } else {
            format!("km_{}.svg", safe_name(code))
        };
        let svg = chart_km(ctx, &file, &name, &curves)?;
        let fig = figure(
            figures,
            file,
            format!("{code}: Kaplan-Meier estimate by arm"),
            format!(
                "{name}: Kaplan-Meier curves by arm (time in months = days / {DAYS_PER_MONTH}); \
                 tick marks are censored observations; numbers at risk below the axis."
            ),
            svg,
        );
        let mut landmarks: Vec<(f64, String)> = Vec::new();
        for r in rows.iter().filter(|r| r.method == "km_survival") {
            if let (Some(n), Some(v)) = (r.avisitn, &r.avisit)
                && !landmarks.iter().any(|x| &x.1 == v)
            {
                landmarks.push((n, v.clone()));
            }
        }
        landmarks.sort_by(|a, b| a.0.total_cmp(&b.0));
        let arms = ctx
            .arms
            .iter()
            .filter(|a| curves.iter().any(|c| c.arm == a.label))
            .map(|a| {
                let med = rows
                    .iter()
                    .find(|r| r.method == "km_median" && r.group == a.label);
                let events = input
                    .derived
                    .adtte
                    .iter()
                    .filter(|t| {
                        t.paramcd == code
                            && t.armcd.as_deref() == Some(a.code.as_str())
                            && t.cnsr == 0
                    })
                    .count();
                KmArmView {
                    code: a.code.clone(),
                    label: a.label.clone(),
                    color: a.css(),
                    n: med
                        .and_then(|r| r.n)
                        .map_or(DASH.to_string(), |n| n.to_string()),
                    events,
                    median: med.map_or(DASH.to_string(), |r| {
                        r.estimate
                            .map_or("not reached".to_string(), |e| num(months(Some(e)), 1))
                    }),
                    median_ci: med.map_or(DASH.to_string(), |r| {
                        if r.lcl.is_none() && r.ucl.is_none() {
                            DASH.to_string()
                        } else {
                            format!(
                                "({}, {})",
                                r.lcl.map_or("NR".to_string(), |l| num(months(Some(l)), 1)),
                                r.ucl.map_or("NR".to_string(), |u| num(months(Some(u)), 1))
                            )
                        }
                    }),
                    landmarks: landmarks
                        .iter()
                        .map(|(_, v)| {
                            rows.iter()
                                .find(|r| {
                                    r.method == "km_survival"
                                        && r.group == a.label
                                        && r.avisit.as_deref() == Some(v.as_str())
                                })
                                .map_or(DASH.to_string(), |r| {
                                    if r.estimate.is_none() {
                                        if r.note.as_deref().is_some_and(|n| n.contains("beyond")) {
                                            "beyond follow-up".to_string()
                                        } else {
                                            DASH.to_string()
                                        }
                                    } else {
                                        format!(
                                            "{}% {}",
                                            pct(r.estimate),
                                            ci(
                                                r.lcl.map(|x| x * 100.0),
                                                r.ucl.map(|x| x * 100.0),
                                                1
                                            )
                                        )
                                    }
                                })
                        })
                        .collect(),
                }
            })
            .collect();
        let contrasts = rows
            .iter()
            .filter(|r| r.method == "cox_hr")
            .map(|r| HrView {
                group: ctx.group(&r.group).replace(" − ", " vs "),
                hr: num(r.estimate, 2),
                ci: ci(r.lcl, r.ucl, 2),
                p: pval(r.p_value),
                p_prose: p_prose(r.p_value),
                note: r.note.clone().unwrap_or_default(),
            })
            .collect();
        let lr = rows.iter().find(|r| r.method == "log_rank");
        out.push(EndpointView {
            code: code.to_string(),
            name,
            analysis: analysis.to_string(),
            anchor: format!("surv-{}-{}", safe_name(analysis), safe_name(code)),
            conf: ctx.conf_for(rows.iter().copied()),
            figure: fig,
            arms,
            landmarks: landmarks
                .iter()
                .map(|(m, _)| format!("{m:.0} months"))
                .collect(),
            contrasts,
            log_rank: LogRankView {
                group: lr.map_or(DASH.to_string(), |r| {
                    ctx.group(&r.group).replace(" − ", " vs ")
                }),
                chisq: num(lr.and_then(|r| r.statistic), 2),
                df: num(lr.and_then(|r| r.df), 0),
                p: pval(lr.and_then(|r| r.p_value)),
                p_prose: p_prose(lr.and_then(|r| r.p_value)),
                note: lr.and_then(|r| r.note.clone()).unwrap_or_default(),
            },
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Forest plot and multiplicity
// ---------------------------------------------------------------------------------------------

struct ForestPanel {
    code: String,
    axis: String,
    method: String,
    /// (row label, estimate, lower, upper, "estimate (lower, upper)", p)
    rows: Vec<(String, f64, f64, f64, String, String)>,
}

fn forest(ctx: &Ctx<'_>, figures: &mut Vec<(String, String)>) -> Result<ForestView, ReportError> {
    let input = ctx.input;
    let metas = param_list(ctx);
    let mut panels = Vec::new();
    let mut table = Vec::new();
    let mut used: Vec<&ResultRow> = Vec::new();
    for pm in &metas {
        let code = pm.code.as_str();
        let d = pm.decimals + 1;
        let cands: Vec<&ResultRow> = input
            .analysis
            .results
            .iter()
            .filter(|r| r.paramcd.as_deref() == Some(code) && ctx.is_contrast(&r.group))
            .filter(|r| {
                matches!(
                    r.method.as_str(),
                    "mmrm_difference" | "ancova_difference" | "t_welch"
                )
            })
            .collect();
        // (visit number, visit, group) in visit order.
        let mut cells: Vec<(f64, &str, &str)> = Vec::new();
        for r in &cands {
            if let (Some(n), Some(v)) = (r.avisitn, r.avisit.as_deref())
                && !cells.iter().any(|c| c.1 == v && c.2 == r.group)
            {
                cells.push((n, v, &r.group));
            }
        }
        cells.sort_by(|a, b| a.0.total_cmp(&b.0));
        let several = cells.iter().map(|c| c.2).collect::<BTreeSet<_>>().len() > 1;
        let mut prow = Vec::new();
        let mut methods = BTreeSet::new();
        for (_, visit, group) in &cells {
            let pick = |m: &str| {
                cands.iter().copied().find(|r| {
                    r.method == m
                        && r.avisit.as_deref() == Some(*visit)
                        && r.group == *group
                        && r.estimate.is_some()
                        && r.lcl.is_some()
                        && r.ucl.is_some()
                })
            };
            // The primary analysis first: MMRM, then ANCOVA, then Welch t.
            let Some(r) = pick("mmrm_difference")
                .or_else(|| pick("ancova_difference"))
                .or_else(|| pick("t_welch"))
            else {
                continue;
            };
            used.push(r);
            methods.insert(method_name(&r.method));
            let label = if several {
                format!("{visit} · {}", ctx.group(group))
            } else {
                visit.to_string()
            };
            let text = format!("{} {}", num(r.estimate, d), ci(r.lcl, r.ucl, d));
            if let (Some(e), Some(l), Some(u)) = (r.estimate, r.lcl, r.ucl) {
                prow.push((label, e, l, u, text, pval(r.p_value)));
            }
            table.push(ForestRowView {
                param: code.to_string(),
                visit: visit.to_string(),
                group: ctx.group(group),
                method: method_name(&r.method),
                estimate: num(r.estimate, d),
                ci: ci(r.lcl, r.ucl, d),
                p: pval(r.p_value),
            });
        }
        if !prow.is_empty() {
            let contrast = cells.first().map_or(String::new(), |c| ctx.group(c.2));
            panels.push(ForestPanel {
                code: code.to_string(),
                axis: format!(
                    "Difference in change from baseline{}",
                    unit_suffix(&pm.unit)
                ),
                method: format!(
                    "{} · {}",
                    methods.into_iter().collect::<Vec<_>>().join(" / "),
                    if several { "arm contrasts" } else { &contrast }
                ),
                rows: prow,
            });
        }
    }
    let figure_view = if panels.is_empty() {
        None
    } else {
        let file = "forest.svg".to_string();
        let svg = chart_forest(&file, &panels, &ctx.conf_for(used.iter().copied()))?;
        Some(figure(
            figures,
            file,
            "Arm differences across parameters and visits".to_string(),
            "Difference in mean change from baseline (experimental − control) with confidence \
             interval: ANCOVA (CHG ~ BASE + ARM) where available, else Welch t. Each panel has \
             its own scale in the parameter's unit; the dashed line is no difference."
                .to_string(),
            svg,
        ))
    };
    let adjusted = input
        .analysis
        .results
        .iter()
        .filter(|r| r.p_adjusted.is_some())
        .map(|r| AdjView {
            analysis: r.analysis.clone(),
            adjustment: adjustment_name(ctx.analyses.get(&r.analysis).and_then(|a| a.2))
                .to_string(),
            method: method_name(&r.method),
            param: r.paramcd.clone().unwrap_or_default(),
            visit: r.avisit.clone().unwrap_or_default(),
            group: ctx.group(&r.group),
            p: pval(r.p_value),
            p_adjusted: pval(r.p_adjusted),
        })
        .collect();
    Ok(ForestView {
        figure: figure_view,
        conf: ctx.conf_for(used.iter().copied()),
        rows: table,
        adjusted,
    })
}

// ---------------------------------------------------------------------------------------------
// Summary (e-mail digest)
// ---------------------------------------------------------------------------------------------

fn summary_view(ctx: &Ctx<'_>, view: &View) -> SummaryView {
    let input = ctx.input;
    let s = &input.validation.summary;
    let mut headlines = Vec::new();
    for pm in param_list(ctx) {
        let rows: Vec<&ResultRow> = input
            .analysis
            .results
            .iter()
            .filter(|r| r.paramcd.as_deref() == Some(pm.code.as_str()))
            .filter(|r| headline_rank(ctx, r).is_some())
            .collect();
        let Some(last) = rows
            .iter()
            .filter_map(|r| r.avisitn)
            .max_by(|a, b| a.total_cmp(b))
        else {
            continue;
        };
        let mut at_last: Vec<&&ResultRow> =
            rows.iter().filter(|r| r.avisitn == Some(last)).collect();
        at_last.sort_by_key(|r| headline_rank(ctx, r));
        let Some(best) = at_last
            .iter()
            .find(|r| r.estimate.is_some())
            .or(at_last.first())
        else {
            continue;
        };
        let d = pm.decimals + 1;
        let level = ctx.level_of(&best.analysis);
        headlines.push(format!(
            "{} {}{}: {} {} = {} ({level} CI {}, {}), {}{}",
            pm.code,
            best.avisit.as_deref().unwrap_or(""),
            unit_suffix(&pm.unit),
            method_name(&best.method),
            ctx.group(&best.group),
            num(best.estimate, d),
            num(best.lcl, d),
            num(best.ucl, d),
            p_prose(best.p_value),
            best.note
                .as_deref()
                .filter(|_| best.estimate.is_none())
                .map_or(String::new(), |n| format!(" [{n}]"))
        ));
    }
    let mut survival = Vec::new();
    for e in &view.survival {
        for h in &e.contrasts {
            survival.push(format!(
                "{} ({}): HR {} = {} ({} CI {}), Cox {}; log-rank {}",
                e.code,
                e.name,
                h.group,
                h.hr,
                e.conf.trim_end_matches(" CI"),
                h.ci.trim_start_matches('(').trim_end_matches(')'),
                h.p_prose,
                e.log_rank.p_prose
            ));
        }
        if e.contrasts.is_empty() {
            survival.push(format!(
                "{} ({}): log-rank {}",
                e.code, e.name, e.log_rank.p_prose
            ));
        }
    }
    SummaryView {
        study_id: view.study_id.clone(),
        title: view.title.clone(),
        version: view.version,
        data_cut: view.data_cut.clone(),
        run_started: view.run_started.clone(),
        verdict: view.verdict.clone(),
        error_percent: view.quality.error_percent.clone(),
        threshold: view.quality.threshold.clone(),
        rows_read: s.files.iter().map(|f| f.rows_read).sum(),
        rows_accepted: s.files.iter().map(|f| f.rows_accepted).sum(),
        rows_quarantined: s.files.iter().map(|f| f.rows_quarantined).sum(),
        severities: view.quality.by_severity.clone(),
        headlines,
        survival,
        skipped: view
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.analysis, s.reason))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Figures (plotters, SVG backend into a String)
// ---------------------------------------------------------------------------------------------

type DrawResult<T = ()> = Result<T, Box<dyn std::error::Error>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

const FONT: &str = "Helvetica, Arial, sans-serif";
const INK: RGBColor = RGBColor(29, 36, 48);
const MUTED: RGBColor = RGBColor(91, 102, 118);
const GRID: RGBColor = RGBColor(228, 232, 238);

/// plotters writes `font-size = size / 1.24`; this takes the pixel size wanted in the SVG.
fn font(px: f64) -> TextStyle<'static> {
    (FONT, px * 1.24).into_font().color(&INK)
}

fn bold(px: f64) -> TextStyle<'static> {
    (FONT, px * 1.24, FontStyle::Bold).into_font().color(&INK)
}

fn draw_svg(
    file: &str,
    size: (u32, u32),
    f: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<String, ReportError> {
    let err = |e: &dyn std::fmt::Display| ReportError::Figure {
        figure: file.to_string(),
        message: e.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        f(&root).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// Title and a legend of arms in a band at the top of a figure.
fn header_band(area: &Area<'_>, title: &str, arms: &[&Arm]) -> DrawResult {
    area.draw(&Text::new(title.to_string(), (16, 10), font(15.0)))?;
    let mut x = 16;
    for a in arms {
        area.draw(&Rectangle::new(
            [(x, 36), (x + 18, 40)],
            a.rgb.filled().stroke_width(1),
        ))?;
        let label = format!("{} ({})", a.label, a.code);
        area.draw(&Text::new(label.clone(), (x + 24, 31), font(12.5)))?;
        // A generous estimate of the label's width in a sans-serif face, plus a gap.
        x += 24 + (label.chars().count() as f64 * 12.5 * 0.58) as i32 + 28;
    }
    Ok(())
}

/// A linear axis whose tick marks are exactly the given values (visit numbers, months, rows):
/// plotters' own tick choice would not land on the visits.
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        Ticked {
            inner: (lo..hi).into(),
            ticks,
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(1e-9);
    (lo - span * frac, hi + span * frac)
}

fn chart_mean_change(
    ctx: &Ctx<'_>,
    file: &str,
    pm: &ParamMeta,
    rows: &[&DescRow],
) -> Result<String, ReportError> {
    // Visits with a summary, in order.
    let mut visits: Vec<(f64, String)> = Vec::new();
    for r in rows {
        if !visits.iter().any(|v| v.1 == r.avisit) {
            visits.push((r.avisitn, r.avisit.clone()));
        }
    }
    visits.sort_by(|a, b| a.0.total_cmp(&b.0));
    let arms: Vec<&Arm> = ctx
        .arms
        .iter()
        .filter(|a| rows.iter().any(|r| r.arm == a.label))
        .collect();
    // (arm index, visit number, mean, se)
    let mut pts: Vec<(usize, f64, f64, Option<f64>)> = Vec::new();
    for (k, a) in arms.iter().enumerate() {
        for (vn, v) in &visits {
            if let Some(Ok(s)) = rows
                .iter()
                .find(|r| r.arm == a.label && &r.avisit == v)
                .map(|r| &r.summary)
            {
                pts.push((k, *vn, s.mean, s.se));
            }
        }
    }
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for &(_, _, m, se) in &pts {
        lo = lo.min(m - se.unwrap_or(0.0));
        hi = hi.max(m + se.unwrap_or(0.0));
    }
    let (ylo, yhi) = padded(lo, hi, 0.12);
    let xs: Vec<f64> = visits.iter().map(|v| v.0).collect();
    let (x0, x1) = match (xs.first(), xs.last()) {
        (Some(a), Some(b)) if b > a => (*a, *b),
        (Some(a), _) => (*a - 1.0, *a + 1.0),
        _ => (0.0, 1.0),
    };
    let (xlo, xhi) = padded(x0, x1, 0.1);
    let dodge = (xhi - xlo) * 0.012;
    let n_arms = arms.len();
    let names = visits.clone();
    let title = format!("{} — mean change from baseline (± SE)", pm.name);
    let unit = unit_suffix(&pm.unit);
    let yd = tick_decimals(ylo, yhi, 8);
    draw_svg(file, (960, 400), |root| {
        let (top, body) = root.split_vertically(52);
        header_band(&top, &title, &arms)?;
        let mut chart = ChartBuilder::on(&body)
            .margin_left(12)
            .margin_right(24)
            .margin_bottom(8)
            .x_label_area_size(46)
            .y_label_area_size(72)
            .build_cartesian_2d(Ticked::new(xlo, xhi, xs.clone()), ylo..yhi)?;
        let label_of = |x: &f64| {
            names
                .iter()
                .find(|v| (v.0 - *x).abs() < 1e-9)
                .map_or(String::new(), |v| v.1.clone())
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID)
            .max_light_lines(0)
            .axis_style(MUTED)
            .x_label_formatter(&label_of)
            .y_labels(8)
            .y_label_formatter(&|y| num(Some(*y), yd))
            .label_style(font(12.0))
            .axis_desc_style(font(13.0))
            .x_desc("Analysis visit")
            .y_desc(format!("Change from baseline{unit}"))
            .draw()?;
        chart.draw_series(LineSeries::new(
            vec![(xlo, 0.0), (xhi, 0.0)],
            MUTED.stroke_width(1),
        ))?;
        for (k, a) in arms.iter().enumerate() {
            let off = dodge * (k as f64 - (n_arms as f64 - 1.0) / 2.0);
            let mine: Vec<&(usize, f64, f64, Option<f64>)> =
                pts.iter().filter(|p| p.0 == k).collect();
            chart.draw_series(LineSeries::new(
                mine.iter().map(|p| (p.1 + off, p.2)),
                a.rgb.stroke_width(2),
            ))?;
            chart.draw_series(mine.iter().filter_map(|p| {
                p.3.map(|se| {
                    ErrorBar::new_vertical(
                        p.1 + off,
                        p.2 - se,
                        p.2,
                        p.2 + se,
                        a.rgb.stroke_width(2),
                        10,
                    )
                })
            }))?;
            chart.draw_series(
                mine.iter()
                    .map(|p| Circle::new((p.1 + off, p.2), 4, a.rgb.filled())),
            )?;
        }
        Ok(())
    })
}

fn chart_spaghetti(
    ctx: &Ctx<'_>,
    file: &str,
    pm: &ParamMeta,
    rows: &[&AdlbRow],
) -> Result<String, ReportError> {
    let arms: Vec<&Arm> = ctx
        .arms
        .iter()
        .filter(|a| {
            rows.iter()
                .any(|r| r.armcd.as_deref() == Some(a.code.as_str()))
        })
        .collect();
    let (mut xlo, mut xhi, mut ylo, mut yhi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for r in rows {
        let (Some(x), Some(y)) = (r.ady, r.aval) else {
            continue;
        };
        xlo = xlo.min(x as f64);
        xhi = xhi.max(x as f64);
        ylo = ylo.min(y);
        yhi = yhi.max(y);
    }
    let (xlo, xhi) = padded(xlo, xhi, 0.03);
    let (ylo, yhi) = padded(ylo, yhi, 0.06);
    // Subject → points (study day, value) per arm, in study-day order.
    let mut by_subject: BTreeMap<(&str, &str), Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows {
        if let (Some(a), Some(x), Some(y)) = (r.armcd.as_deref(), r.ady, r.aval) {
            by_subject
                .entry((a, r.usubjid.as_str()))
                .or_default()
                .push((x as f64, y));
        }
    }
    for v in by_subject.values_mut() {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let title = format!("{} — individual values by study day", pm.name);
    let unit = unit_suffix(&pm.unit);
    let yd = tick_decimals(ylo, yhi, 8);
    draw_svg(file, (960, 420), |root| {
        let (top, body) = root.split_vertically(52);
        header_band(&top, &title, &arms)?;
        let panels = body.split_evenly((1, arms.len().max(1)));
        for (a, panel) in arms.iter().zip(panels.iter()) {
            let n_subj = by_subject.keys().filter(|k| k.0 == a.code).count();
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!("{} (n = {n_subj})", a.code),
                    font(13.0).color(&a.rgb),
                )
                .margin_left(12)
                .margin_right(20)
                .margin_bottom(8)
                .x_label_area_size(44)
                .y_label_area_size(66)
                .build_cartesian_2d(xlo..xhi, ylo..yhi)?;
            chart
                .configure_mesh()
                .bold_line_style(GRID)
                .max_light_lines(0)
                .axis_style(MUTED)
                .x_labels(8)
                .y_labels(8)
                .x_label_formatter(&|x| num(Some(*x), 0))
                .y_label_formatter(&|y| num(Some(*y), yd))
                .label_style(font(12.0))
                .axis_desc_style(font(13.0))
                .x_desc("Study day (ADY)")
                .y_desc(format!("{}{unit}", pm.code))
                .draw()?;
            for (_, pts) in by_subject.iter().filter(|(k, _)| k.0 == a.code) {
                chart.draw_series(LineSeries::new(
                    pts.iter().copied(),
                    a.rgb.mix(0.45).stroke_width(1),
                ))?;
                // A lone value has no line to show it.
                if pts.len() == 1 {
                    chart.draw_series(
                        pts.iter()
                            .map(|&p| Circle::new(p, 2, a.rgb.mix(0.7).filled())),
                    )?;
                }
            }
        }
        Ok(())
    })
}

fn chart_km(
    ctx: &Ctx<'_>,
    file: &str,
    name: &str,
    curves: &[&KmCurve],
) -> Result<String, ReportError> {
    let arms: Vec<(&Arm, &KmCurve)> = ctx
        .arms
        .iter()
        .filter_map(|a| curves.iter().find(|c| c.arm == a.label).map(|c| (a, *c)))
        .collect();
    let tmax = curves
        .iter()
        .flat_map(|c| c.steps.iter().map(|s| s.0))
        .fold(0.0f64, f64::max)
        / DAYS_PER_MONTH;
    let step = if tmax > 36.0 { 12.0 } else { 6.0 };
    let xmax = ((tmax / step).ceil() * step).max(step);
    let ticks: Vec<f64> = (0..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= xmax + 1e-9)
        .collect();
    let title = format!("{name} — Kaplan-Meier estimate");
    let arm_refs: Vec<&Arm> = arms.iter().map(|a| a.0).collect();
    let risk_h = 30 + 20 * arms.len() as u32;
    draw_svg(file, (760, 470 + risk_h), |root| {
        let (top, rest) = root.split_vertically(52);
        header_band(&top, &title, &arm_refs)?;
        let (body, risk) = rest.split_vertically(470 - 52);
        let mut chart = ChartBuilder::on(&body)
            .margin_left(12)
            .margin_right(28)
            .margin_bottom(4)
            .x_label_area_size(46)
            .y_label_area_size(72)
            .build_cartesian_2d(Ticked::new(0.0, xmax, ticks.clone()), 0.0..1.02)?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .max_light_lines(0)
            .axis_style(MUTED)
            .y_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .label_style(font(12.0))
            .axis_desc_style(font(13.0))
            .x_desc("Months since randomization")
            .y_desc("Survival probability")
            .draw()?;
        for (a, c) in &arms {
            let mut path = vec![(0.0, 1.0)];
            let mut prev = 1.0;
            for s in &c.steps {
                let t = s.0 / DAYS_PER_MONTH;
                path.push((t, prev));
                path.push((t, s.1));
                prev = s.1;
            }
            chart.draw_series(LineSeries::new(path, a.rgb.stroke_width(2)))?;
            chart.draw_series(c.steps.iter().filter(|s| s.4).map(|s| {
                EmptyElement::at((s.0 / DAYS_PER_MONTH, s.1))
                    + PathElement::new(vec![(0, -5), (0, 5)], a.rgb.stroke_width(1))
            }))?;
        }
        // Numbers at risk, aligned with the time axis.
        let (rx, ry) = risk.get_base_pixel();
        root.draw(&Text::new(
            "Number at risk",
            (rx + 16, ry + 2),
            font(12.5).color(&MUTED),
        ))?;
        for (k, (a, c)) in arms.iter().enumerate() {
            let y = ry + 24 + 20 * k as i32;
            root.draw(&Text::new(
                a.code.clone(),
                (rx + 16, y),
                font(12.5).color(&a.rgb),
            ))?;
            for &(t, n) in &c.at_risk {
                let (px, _) = chart.backend_coord(&(t / DAYS_PER_MONTH, 0.0));
                root.draw(&Text::new(
                    n.to_string(),
                    (px, y),
                    font(12.0).pos(Pos::new(HPos::Center, VPos::Top)),
                ))?;
            }
        }
        Ok(())
    })
}

fn chart_forest(file: &str, panels: &[ForestPanel], conf: &str) -> Result<String, ReportError> {
    const W: u32 = 960;
    const TEXT: i32 = 300;
    const ROW: u32 = 28;
    const HEAD: u32 = 34;
    const AXIS: u32 = 44;
    let heights: Vec<u32> = panels
        .iter()
        .map(|p| HEAD + AXIS + ROW * p.rows.len() as u32 + 26)
        .collect();
    let total: u32 = heights.iter().sum::<u32>() + 40;
    let est_x = W as i32 - TEXT + 16;
    let p_x = W as i32 - 24;
    draw_svg(file, (W, total), |root| {
        let (top, mut rest) = root.split_vertically(40);
        top.draw(&Text::new(
            "Arm differences in change from baseline, by parameter and visit".to_string(),
            (16, 10),
            font(15.0),
        ))?;
        for (p, h) in panels.iter().zip(&heights) {
            let (area, next) = rest.split_vertically(*h);
            rest = next;
            area.draw(&Text::new(
                format!("{} — {}", p.code, p.method),
                (16, 8),
                bold(13.5),
            ))?;
            let head = font(12.0).color(&MUTED);
            area.draw(&Text::new(
                format!("Difference ({conf})"),
                (est_x, 10),
                head.clone(),
            ))?;
            area.draw(&Text::new(
                "p",
                (p_x, 10),
                head.pos(Pos::new(HPos::Right, VPos::Top)),
            ))?;
            let (_, plot) = area.split_vertically(HEAD);
            let (plot, _) = plot.split_horizontally(W as i32 - TEXT);
            let n = p.rows.len();
            let (mut lo, mut hi) = (0.0f64, 0.0f64);
            for r in &p.rows {
                lo = lo.min(r.2);
                hi = hi.max(r.3);
            }
            let (lo, hi) = padded(lo, hi, 0.08);
            let xd = tick_decimals(lo, hi, 7);
            let ys: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let labels: Vec<String> = p.rows.iter().map(|r| r.0.clone()).collect();
            let mut chart = ChartBuilder::on(&plot)
                .margin_left(12)
                .margin_right(8)
                .x_label_area_size(AXIS)
                .y_label_area_size(150)
                .build_cartesian_2d(lo..hi, Ticked::new(-0.6, n as f64 - 0.4, ys))?;
            let label_of = |y: &f64| {
                // Row 0 at the top.
                let i = (y.round().max(0.0) as usize).min(n - 1);
                labels[n - 1 - i].clone()
            };
            chart
                .configure_mesh()
                .disable_y_mesh()
                .bold_line_style(GRID)
                .max_light_lines(0)
                .axis_style(MUTED)
                .x_labels(7)
                .x_label_formatter(&|x| num(Some(*x), xd))
                .y_label_formatter(&label_of)
                .label_style(font(12.0))
                .axis_desc_style(font(12.5))
                .x_desc(p.axis.clone())
                .draw()?;
            chart.draw_series(DashedLineSeries::new(
                [(0.0, -0.6), (0.0, n as f64 - 0.4)],
                5,
                4,
                MUTED.stroke_width(1),
            ))?;
            for (i, r) in p.rows.iter().enumerate() {
                let y = (n - 1 - i) as f64;
                chart.draw_series(LineSeries::new(
                    vec![(r.2, y), (r.3, y)],
                    INK.stroke_width(2),
                ))?;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((r.1, y))
                        + Rectangle::new([(-5, -5), (5, 5)], RGBColor(0, 114, 178).filled()),
                ))?;
                let (_, py) = chart.backend_coord(&(r.1, y));
                let style = font(12.0);
                root.draw(&Text::new(
                    r.4.clone(),
                    (est_x, py),
                    style.pos(Pos::new(HPos::Left, VPos::Center)),
                ))?;
                root.draw(&Text::new(
                    r.5.clone(),
                    (p_x, py),
                    style.pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
            }
        }
        Ok(())
    })
}
