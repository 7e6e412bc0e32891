//! Analyze: run the analyses the pipeline file lists on the derived datasets and collect tidy
//! results. The statistics themselves live in `crate::stats` (pure, checked against R); this
//! module only selects records, maps them onto the statistics and shapes the results.
//!
//! Conventions: comparisons are each experimental arm minus the control arm; the analysis
//! records are ADLB rows with ANL01FL = "Y" at post-baseline windows; a single-arm trial gets
//! within-arm tests of change from baseline (paired t, Wilcoxon signed-rank). A method that
//! cannot be computed for a cell (too few subjects, all values tied, no events) gives a result
//! row with the reason in NOTE and empty numbers, never NaN. `results/comparisons` holds one row
//! per analysis, parameter, visit and arm or contrast; `results/descriptive` the summaries.

use std::collections::{BTreeMap, BTreeSet};

use crate::derive::{AdlbRow, Derived, TteRow};
use crate::response::ResponseFlag;
use crate::spec::{
    AnalysisVariable, ArmRole, LoadedPipeline, Method, Multiplicity, TVarianceName, TiesName,
    WilcoxonCorrectionName, WilcoxonMethodName,
};
use crate::stats::{self, Alternative, StatsError};
use crate::store::{Column, ColumnData, Table};

/// Days per month for landmark times (365.25 / 12).
const DAYS_PER_MONTH: f64 = 30.4375;
/// Landmark times of survival estimates, months.
pub const LANDMARK_MONTHS: [f64; 5] = [12.0, 24.0, 36.0, 60.0, 75.0];

/// One tidy result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultRow {
    /// Analysis id from the pipeline file.
    pub analysis: String,
    /// Method, e.g. `t_welch`, `wilcoxon_rank_sum`, `ancova_lsmean`, `km_median`, `cox_hr`.
    pub method: String,
    /// Parameter code.
    pub paramcd: Option<String>,
    /// Analysis visit.
    pub avisit: Option<String>,
    /// Analysis visit number.
    pub avisitn: Option<f64>,
    /// Arm label, or contrast `A - B`.
    pub group: String,
    /// Subjects (or records) used.
    pub n: Option<i64>,
    /// Estimate.
    pub estimate: Option<f64>,
    /// Standard error.
    pub se: Option<f64>,
    /// Degrees of freedom.
    pub df: Option<f64>,
    /// Lower confidence limit.
    pub lcl: Option<f64>,
    /// Upper confidence limit.
    pub ucl: Option<f64>,
    /// Test statistic.
    pub statistic: Option<f64>,
    /// p-value.
    pub p_value: Option<f64>,
    /// Multiplicity-adjusted p-value (within the analysis, when it asks).
    pub p_adjusted: Option<f64>,
    /// Model notes or why a result is missing.
    pub note: Option<String>,
}

/// One descriptive summary.
#[derive(Debug, Clone, PartialEq)]
pub struct DescRow {
    /// Analysis id.
    pub analysis: String,
    /// Parameter code.
    pub paramcd: String,
    /// Analysis visit.
    pub avisit: String,
    /// Analysis visit number.
    pub avisitn: f64,
    /// Arm label.
    pub arm: String,
    /// AVAL, CHG or PCHG.
    pub variable: &'static str,
    /// The summary, or why there is none.
    pub summary: Result<stats::Descriptive, String>,
}

/// Everything analyze produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalyzeOutput {
    /// Tidy comparisons and estimates.
    pub results: Vec<ResultRow>,
    /// Descriptive summaries.
    pub descriptive: Vec<DescRow>,
    /// Analyses that were not run, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Kaplan-Meier curves, for figures.
    pub km_curves: Vec<KmCurve>,
}

/// (time in days, survival, lower, upper, censored at this time).
pub type KmStep = (f64, f64, Option<f64>, Option<f64>, bool);

/// A Kaplan-Meier curve of one arm for one endpoint, with numbers at risk for plotting.
#[derive(Debug, Clone, PartialEq)]
pub struct KmCurve {
    /// Analysis id.
    pub analysis: String,
    /// Endpoint code.
    pub paramcd: String,
    /// Arm label.
    pub arm: String,
    /// One step per distinct time.
    pub steps: Vec<KmStep>,
    /// (time in days, number at risk) every 6 months from 0 to the last time.
    pub at_risk: Vec<(f64, usize)>,
}

struct Arms {
    control: Option<(String, String)>,
    experimental: Vec<(String, String)>,
}

fn arms(lp: &LoadedPipeline) -> Arms {
    let p = &lp.pipeline;
    Arms {
        control: p
            .arms
            .iter()
            .find(|a| a.role == ArmRole::Control)
            .map(|a| (a.code.clone(), a.label.clone())),
        experimental: p
            .arms
            .iter()
            .filter(|a| a.role == ArmRole::Experimental)
            .map(|a| (a.code.clone(), a.label.clone()))
            .collect(),
    }
}

fn note(e: &StatsError) -> Option<String> {
    Some(e.to_string())
}

fn var_of(r: &AdlbRow, v: AnalysisVariable) -> Option<f64> {
    match v {
        AnalysisVariable::Aval => r.aval,
        AnalysisVariable::Chg => r.chg,
        AnalysisVariable::Pchg => r.pchg,
    }
}

fn var_name(v: AnalysisVariable) -> &'static str {
    match v {
        AnalysisVariable::Aval => "AVAL",
        AnalysisVariable::Chg => "CHG",
        AnalysisVariable::Pchg => "PCHG",
    }
}

/// Run every analysis of the pipeline on the derived rows.
pub fn analyze(lp: &LoadedPipeline, d: &Derived) -> AnalyzeOutput {
    let p = &lp.pipeline;
    let mut out = AnalyzeOutput::default();
    let arms = arms(lp);
    let windows = &p.visits.windows;
    let baseline_n = windows
        .get(p.visits.baseline_index())
        .map_or(0.0, |w| w.number);
    for a in &p.analyses {
        let conf = a.conf_level.unwrap_or(0.95);
        let params: Vec<String> = if a.params.is_empty() {
            p.labs.iter().map(|t| t.code.clone()).collect()
        } else {
            a.params.clone()
        };
        let visits: Vec<(&str, f64)> = windows
            .iter()
            .filter(|w| a.visits.is_empty() || a.visits.contains(&w.name))
            .map(|w| (w.name.as_str(), w.number))
            .collect();
        let post: Vec<(&str, f64)> = visits
            .iter()
            .copied()
            .filter(|v| v.1 > baseline_n)
            .collect();
        let cell = |param: &str, visit: &str| -> Vec<&AdlbRow> {
            d.adlb
                .iter()
                .filter(|r| {
                    r.anl01fl.is_some() && r.paramcd == param && r.avisit.as_deref() == Some(visit)
                })
                .collect()
        };
        let by_arm = |rows: &[&AdlbRow], code: &str, v: AnalysisVariable| -> Vec<f64> {
            rows.iter()
                .filter(|r| r.armcd.as_deref() == Some(code))
                .filter_map(|r| var_of(r, v))
                .collect()
        };
        let start = out.results.len();
        match a.method {
            Method::Descriptive => {
                for param in &params {
                    for (visit, vn) in &visits {
                        let rows = cell(param, visit);
                        for (code, label) in arms.experimental.iter().chain(arms.control.iter()) {
                            for v in [
                                AnalysisVariable::Aval,
                                AnalysisVariable::Chg,
                                AnalysisVariable::Pchg,
                            ] {
                                if v != AnalysisVariable::Aval && *vn <= baseline_n {
                                    continue;
                                }
                                let mut values = by_arm(&rows, code, v);
                                // Subjects in the cell without a value count as missing.
                                let missing = rows
                                    .iter()
                                    .filter(|r| r.armcd.as_deref() == Some(code.as_str()))
                                    .count()
                                    - values.len();
                                values.extend(std::iter::repeat_n(f64::NAN, missing));
                                out.descriptive.push(DescRow {
                                    analysis: a.id.clone(),
                                    paramcd: param.clone(),
                                    avisit: visit.to_string(),
                                    avisitn: *vn,
                                    arm: label.clone(),
                                    variable: var_name(v),
                                    summary: stats::descriptive(&values).map_err(|e| e.to_string()),
                                });
                            }
                        }
                    }
                }
            }
            Method::TTest | Method::Wilcoxon => {
                let v = a.variable.unwrap_or(AnalysisVariable::Chg);
                let wmethod = match a.wilcoxon.method {
                    WilcoxonMethodName::Auto => stats::WilcoxonMethod::Auto,
                    WilcoxonMethodName::Exact => stats::WilcoxonMethod::Exact,
                    WilcoxonMethodName::Normal => stats::WilcoxonMethod::Normal,
                };
                let wcorrection = match a.wilcoxon.correction {
                    WilcoxonCorrectionName::Continuity => stats::ContinuityCorrection::Yates,
                    WilcoxonCorrectionName::None => stats::ContinuityCorrection::None,
                };
                for param in &params {
                    for (visit, vn) in &post {
                        let rows = cell(param, visit);
                        let mut push =
                            |method: &str,
                             group: String,
                             n: usize,
                             r: Result<stats::TestResult, StatsError>| {
                                out.results
                                    .push(test_row(&a.id, method, param, visit, *vn, group, n, r));
                            };
                        match &arms.control {
                            Some((ccode, clabel)) => {
                                let y = by_arm(&rows, ccode, v);
                                for (code, label) in &arms.experimental {
                                    let x = by_arm(&rows, code, v);
                                    let group = format!("{label} - {clabel}");
                                    let n = x.len() + y.len();
                                    if a.method == Method::TTest {
                                        for (m, va) in [
                                            ("t_welch", stats::VarianceAssumption::Welch),
                                            ("t_pooled", stats::VarianceAssumption::Pooled),
                                        ] {
                                            let wanted = match a.t_test.variance {
                                                TVarianceName::Both => true,
                                                TVarianceName::Welch => {
                                                    va == stats::VarianceAssumption::Welch
                                                }
                                                TVarianceName::Pooled => {
                                                    va == stats::VarianceAssumption::Pooled
                                                }
                                            };
                                            if !wanted {
                                                continue;
                                            }
                                            push(
                                                m,
                                                group.clone(),
                                                n,
                                                stats::t_test_two_sample(
                                                    &x,
                                                    &y,
                                                    va,
                                                    Alternative::TwoSided,
                                                    conf,
                                                ),
                                            );
                                        }
                                    } else {
                                        push(
                                            "wilcoxon_rank_sum",
                                            group.clone(),
                                            n,
                                            stats::wilcoxon_rank_sum_with(
                                                &x,
                                                &y,
                                                wmethod,
                                                wcorrection,
                                                Alternative::TwoSided,
                                                conf,
                                            ),
                                        );
                                    }
                                }
                            }
                            None => {
                                // Single arm: within-arm change.
                                for (code, label) in &arms.experimental {
                                    let x = by_arm(&rows, code, v);
                                    if a.method == Method::TTest {
                                        push(
                                            "t_paired",
                                            label.clone(),
                                            x.len(),
                                            stats::t_test_one_sample(
                                                &x,
                                                0.0,
                                                Alternative::TwoSided,
                                                conf,
                                            ),
                                        );
                                    } else {
                                        push(
                                            "wilcoxon_signed_rank",
                                            label.clone(),
                                            x.len(),
                                            stats::wilcoxon_signed_rank_with(
                                                &x,
                                                0.0,
                                                wmethod,
                                                wcorrection,
                                                Alternative::TwoSided,
                                                conf,
                                            ),
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Method::Ancova => {
                let v = a.variable.unwrap_or(AnalysisVariable::Chg);
                let stratum = p
                    .inputs
                    .subjects
                    .strata
                    .first()
                    .filter(|_| a.ancova.stratified)
                    .map(|f| (f.as_str(), &d.strata));
                let Some((ccode, clabel)) = arms.control.clone() else {
                    out.skipped
                        .push((a.id.clone(), "ANCOVA needs a control arm".into()));
                    continue;
                };
                for param in &params {
                    for (visit, vn) in &post {
                        let rows: Vec<&AdlbRow> = cell(param, visit)
                            .into_iter()
                            .filter(|r| {
                                r.base.is_some() && var_of(r, v).is_some() && r.armcd.is_some()
                            })
                            .collect();
                        ancova_rows(
                            &mut out.results,
                            &a.id,
                            param,
                            visit,
                            *vn,
                            &rows,
                            v,
                            &arms,
                            &ccode,
                            &clabel,
                            conf,
                            stratum,
                        );
                    }
                }
            }
            Method::Responders => {
                let ids: BTreeSet<&str> = if a.params.is_empty() {
                    p.responses.iter().map(|r| r.id.as_str()).collect()
                } else {
                    a.params.iter().map(String::as_str).collect()
                };
                let strata = p
                    .inputs
                    .subjects
                    .strata
                    .first()
                    .map(|f| (f.as_str(), &d.strata));
                let correction = match a.responders.cmh_correction {
                    crate::spec::CorrectionName::None => stats::ContinuityCorrection::None,
                    crate::spec::CorrectionName::Yates => stats::ContinuityCorrection::Yates,
                };
                responder_rows(
                    &mut out.results,
                    &a.id,
                    &d.adrs,
                    &ids,
                    &arms,
                    conf,
                    strata,
                    correction,
                );
                if let Some(p0) = a.responders.benchmark {
                    benchmark_rows(&mut out.results, &a.id, &d.adrs, &ids, &arms, p0, conf);
                }
            }
            Method::Survival if a.survival.by.is_some() => {
                survival_by_rows(
                    &mut out.results,
                    &mut out.km_curves,
                    &a.id,
                    &d.adtte,
                    a.survival.by.as_deref().unwrap_or_default(),
                    conf,
                    match a.survival.ties {
                        TiesName::Efron => stats::Ties::Efron,
                        TiesName::Breslow => stats::Ties::Breslow,
                    },
                );
            }
            Method::Survival => {
                survival_rows(
                    &mut out.results,
                    &mut out.km_curves,
                    &a.id,
                    &d.adtte,
                    &arms,
                    conf,
                    &p.inputs.subjects.strata,
                    match a.survival.ties {
                        TiesName::Efron => stats::Ties::Efron,
                        TiesName::Breslow => stats::Ties::Breslow,
                    },
                );
            }
            Method::Mmrm => {
                let v = a.variable.unwrap_or(AnalysisVariable::Chg);
                for param in &params {
                    for locf in [false, true] {
                        if locf && !a.mmrm.locf_sensitivity {
                            continue;
                        }
                        mmrm_rows(
                            &mut out.results,
                            a,
                            param,
                            &d.adlb,
                            &post,
                            v,
                            &arms,
                            conf,
                            locf,
                        );
                    }
                }
            }
        }
        // Multiplicity within the analysis. The family: the p-values of the analysis's primary
        // test (Welch for t tests, the ANCOVA difference, Fisher for responders, log-rank for
        // survival), not its variants.
        if let Some(m) = a.adjust {
            let primary: &[&str] = match a.method {
                Method::TTest if a.t_test.variance == TVarianceName::Pooled => {
                    &["t_pooled", "t_paired"]
                }
                Method::TTest => &["t_welch", "t_paired"],
                Method::Wilcoxon => &["wilcoxon_rank_sum", "wilcoxon_signed_rank"],
                Method::Ancova => &["ancova_difference"],
                Method::Responders => &["fisher_exact_or"],
                Method::Survival => &["log_rank"],
                Method::Mmrm => &["mmrm_difference"],
                Method::Descriptive => &[],
            };
            let idx: Vec<usize> = (start..out.results.len())
                .filter(|&i| {
                    out.results[i].p_value.is_some()
                        && primary.contains(&out.results[i].method.as_str())
                })
                .collect();
            let ps: Vec<f64> = idx
                .iter()
                .map(|&i| out.results[i].p_value.unwrap_or(1.0))
                .collect();
            let method = match m {
                Multiplicity::Holm => stats::Adjustment::Holm,
                Multiplicity::Hochberg => stats::Adjustment::Hochberg,
                Multiplicity::Bh => stats::Adjustment::BenjaminiHochberg,
                Multiplicity::Bonferroni => stats::Adjustment::Bonferroni,
            };
            if let Ok(adj) = stats::p_adjust(&ps, method) {
                for (k, &i) in idx.iter().enumerate() {
                    out.results[i].p_adjusted = Some(adj[k]);
                }
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn test_row(
    analysis: &str,
    method: &str,
    param: &str,
    visit: &str,
    vn: f64,
    group: String,
    n: usize,
    r: Result<stats::TestResult, StatsError>,
) -> ResultRow {
    let base = ResultRow {
        analysis: analysis.to_string(),
        method: method.to_string(),
        paramcd: Some(param.to_string()),
        avisit: Some(visit.to_string()),
        avisitn: Some(vn),
        group,
        n: Some(n as i64),
        ..Default::default()
    };
    match r {
        Ok(t) => ResultRow {
            estimate: Some(t.estimate),
            se: t.se,
            df: t.df,
            lcl: t.ci.map(|c| c.lower),
            ucl: t.ci.map(|c| c.upper),
            statistic: Some(t.statistic),
            p_value: Some(t.p_value),
            note: t
                .ci
                .filter(|c| (c.level - 0.95).abs() > 1e-9 && c.level < 0.95)
                .map(|c| format!("achieved confidence level {:.4}", c.level)),
            ..base
        },
        Err(e) => ResultRow {
            note: note(&e),
            ..base
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn ancova_rows(
    out: &mut Vec<ResultRow>,
    analysis: &str,
    param: &str,
    visit: &str,
    vn: f64,
    rows: &[&AdlbRow],
    v: AnalysisVariable,
    arms: &Arms,
    ccode: &str,
    clabel: &str,
    conf: f64,
    stratum: Option<(&str, &SubjectStrata)>,
) {
    // Arm levels: control first (the reference), then the experimental arms.
    let mut levels: Vec<(&str, &str)> = vec![(ccode, clabel)];
    levels.extend(
        arms.experimental
            .iter()
            .map(|(c, l)| (c.as_str(), l.as_str())),
    );
    let labels: Vec<&str> = levels.iter().map(|l| l.1).collect();
    // With a stratum factor: its level per subject; subjects without one are left out (R's lm
    // drops rows with a missing factor) and counted in the note.
    let level_of = |r: &AdlbRow| -> Option<&str> {
        let (factor, by_subject) = stratum?;
        by_subject
            .get(r.usubjid.as_str())
            .and_then(|s| s.get(factor))
            .map(String::as_str)
            .filter(|l| !l.is_empty())
    };
    let in_arms: Vec<&&AdlbRow> = rows
        .iter()
        .filter(|r| levels.iter().any(|l| Some(l.0) == r.armcd.as_deref()))
        .collect();
    let kept: Vec<&&AdlbRow> = in_arms
        .iter()
        .copied()
        .filter(|r| stratum.is_none() || level_of(r).is_some())
        .collect();
    let no_stratum = in_arms.len() - kept.len();
    let mut stratum_levels: Vec<&str> = kept.iter().filter_map(|r| level_of(r)).collect();
    stratum_levels.sort_unstable();
    stratum_levels.dedup();
    let stratum_codes: Vec<usize> = kept
        .iter()
        .filter_map(|r| level_of(r))
        .map(|l| stratum_levels.binary_search(&l).unwrap_or(0))
        .collect();
    let formula = match stratum {
        None => format!("{} ~ BASE + ARM", var_name(v)),
        Some((factor, _)) => format!(
            "{} ~ BASE + ARM + {factor} ({} strata{})",
            var_name(v),
            stratum_levels.len(),
            if no_stratum > 0 {
                format!("; {no_stratum} subjects without a level left out")
            } else {
                String::new()
            }
        ),
    };
    let y: Vec<f64> = kept.iter().filter_map(|r| var_of(r, v)).collect();
    let base: Vec<f64> = kept.iter().filter_map(|r| r.base).collect();
    let codes: Vec<usize> = kept
        .iter()
        .map(|r| {
            levels
                .iter()
                .position(|l| Some(l.0) == r.armcd.as_deref())
                .unwrap_or(0)
        })
        .collect();
    let row = |method: &str, group: String| ResultRow {
        analysis: analysis.to_string(),
        method: method.to_string(),
        paramcd: Some(param.to_string()),
        avisit: Some(visit.to_string()),
        avisitn: Some(vn),
        group,
        n: Some(y.len() as i64),
        ..Default::default()
    };
    let mut factors = vec![stats::Factor {
        name: "ARM",
        levels: &labels,
        codes: &codes,
    }];
    if let Some((factor, _)) = stratum {
        factors.push(stats::Factor {
            name: factor,
            levels: &stratum_levels,
            codes: &stratum_codes,
        });
    }
    let model = stats::AncovaModel {
        response: &y,
        covariates: &[stats::Covariate {
            name: "BASE",
            values: &base,
        }],
        factors: &factors,
        arm: 0,
        reference: 0,
        conf_level: conf,
    };
    match stats::ancova(&model) {
        Err(e) => out.push(ResultRow {
            note: note(&e),
            ..row(
                "ancova_difference",
                format!(
                    "{} - {clabel}",
                    arms.experimental.first().map_or("", |a| a.1.as_str())
                ),
            )
        }),
        Ok(fit) => {
            for m in &fit.lsmeans {
                out.push(ResultRow {
                    estimate: Some(m.estimate),
                    se: Some(m.se),
                    df: Some(m.df),
                    lcl: Some(m.ci.lower),
                    ucl: Some(m.ci.upper),
                    note: Some(if stratum.is_some() {
                        format!("{formula}; LS-mean at mean BASE, strata weighted equally")
                    } else {
                        format!("{formula}; LS-mean at mean BASE")
                    }),
                    ..row("ancova_lsmean", m.label.clone())
                });
            }
            for dd in &fit.differences {
                out.push(ResultRow {
                    estimate: Some(dd.estimate),
                    se: Some(dd.se),
                    df: Some(dd.df),
                    lcl: Some(dd.ci.lower),
                    ucl: Some(dd.ci.upper),
                    statistic: Some(dd.t),
                    p_value: Some(dd.p_value),
                    note: Some(formula.clone()),
                    ..row("ancova_difference", dd.label.clone())
                });
            }
        }
    }
}

/// MMRM of `var ~ BASE + AVISIT + ARM + AVISIT:ARM` over the post-baseline visits, unstructured
/// covariance with the fallback chain, REML, Satterthwaite df (`stats::mmrm`).
#[allow(clippy::too_many_arguments)]
fn mmrm_rows(
    out: &mut Vec<ResultRow>,
    a: &crate::spec::Analysis,
    param: &str,
    adlb: &[AdlbRow],
    post: &[(&str, f64)],
    v: AnalysisVariable,
    arms: &Arms,
    conf: f64,
    locf: bool,
) {
    use crate::spec::{CovarianceName, DfName, EstimationName};
    use stats::mmrm::{CovStructure, DdfMethod, Estimation, MmrmData, MmrmSpec, Term};
    let analysis = a.id.as_str();
    let chain: Vec<CovStructure> = a
        .mmrm
        .covariance
        .iter()
        .map(|c| match c {
            CovarianceName::Un => CovStructure::Unstructured,
            CovarianceName::Cs => CovStructure::CompoundSymmetry,
            CovarianceName::Csh => CovStructure::HeterogeneousCompoundSymmetry,
            CovarianceName::Ar1 => CovStructure::Ar1,
            CovarianceName::Arh1 => CovStructure::HeterogeneousAr1,
            CovarianceName::Toep => CovStructure::Toeplitz,
            CovarianceName::Toeph => CovStructure::HeterogeneousToeplitz,
        })
        .collect();
    let mut levels: Vec<(&str, &str)> = arms
        .control
        .iter()
        .map(|(c, l)| (c.as_str(), l.as_str()))
        .collect();
    levels.extend(
        arms.experimental
            .iter()
            .map(|(c, l)| (c.as_str(), l.as_str())),
    );
    let visit_names: Vec<&str> = post.iter().map(|p| p.0).collect();
    let rows: Vec<&AdlbRow> = adlb
        .iter()
        .filter(|r| {
            (r.anl01fl.is_some() || (locf && r.dtype == Some(crate::derive::Dtype::Locf)))
                && r.paramcd == param
        })
        .filter(|r| {
            r.avisit
                .as_deref()
                .is_some_and(|x| visit_names.contains(&x))
        })
        .filter(|r| levels.iter().any(|l| Some(l.0) == r.armcd.as_deref()))
        .filter(|r| r.base.is_some() && var_of(r, v).is_some())
        .collect();
    let base_row = ResultRow {
        analysis: analysis.to_string(),
        paramcd: Some(param.to_string()),
        ..Default::default()
    };
    let y: Vec<f64> = rows.iter().filter_map(|r| var_of(r, v)).collect();
    let base: Vec<f64> = rows.iter().filter_map(|r| r.base).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.usubjid.as_str()).collect();
    let subject = stats::mmrm::encode_ids(&ids);
    let visit_codes: Vec<usize> = rows
        .iter()
        .map(|r| {
            visit_names
                .iter()
                .position(|x| Some(*x) == r.avisit.as_deref())
                .unwrap_or(0)
        })
        .collect();
    let arm_codes: Vec<usize> = rows
        .iter()
        .map(|r| {
            levels
                .iter()
                .position(|l| Some(l.0) == r.armcd.as_deref())
                .unwrap_or(0)
        })
        .collect();
    let arm_labels: Vec<&str> = levels.iter().map(|l| l.1).collect();
    let factors = [
        stats::Factor {
            name: "AVISIT",
            levels: &visit_names,
            codes: &visit_codes,
        },
        stats::Factor {
            name: "ARM",
            levels: &arm_labels,
            codes: &arm_codes,
        },
    ];
    let covariates = [stats::Covariate {
        name: "BASE",
        values: &base,
    }];
    let data = MmrmData {
        response: &y,
        subject: &subject,
        factors: &factors,
        covariates: &covariates,
    };
    // A single-arm trial has no arm term: the model estimates the mean change per visit.
    let single_arm = levels.len() == 1;
    let mut terms = vec![Term::covariate("BASE"), Term::factor("AVISIT")];
    if !single_arm {
        terms.push(Term::factor("ARM"));
        terms.push(Term::Interaction("AVISIT".into(), "ARM".into()));
    }
    if a.mmrm.base_by_visit {
        terms.push(Term::Interaction("BASE".into(), "AVISIT".into()));
    }
    let mut spec = MmrmSpec::new(terms, "AVISIT");
    if !single_arm {
        spec = spec.with_arm("ARM");
    }
    let mut spec = spec
        .with_estimation(match a.mmrm.estimation {
            EstimationName::Reml => Estimation::Reml,
            EstimationName::Ml => Estimation::Ml,
        })
        .with_ddf(match a.mmrm.df {
            DfName::Satterthwaite => DdfMethod::Satterthwaite,
            DfName::KenwardRoger => DdfMethod::KenwardRoger,
            DfName::Residual => DdfMethod::Residual,
            DfName::BetweenWithin => DdfMethod::BetweenWithin,
        });
    spec.conf_level = conf;
    let model = format!(
        "{} ~ BASE + AVISIT{}{}{}",
        var_name(v),
        if single_arm {
            ""
        } else {
            " + ARM + AVISIT:ARM"
        },
        if a.mmrm.base_by_visit {
            " + BASE:AVISIT"
        } else {
            ""
        },
        if locf { " (with LOCF rows)" } else { "" }
    );
    let (lsmean_method, diff_method) = if locf {
        ("mmrm_locf_lsmean", "mmrm_locf_difference")
    } else {
        ("mmrm_lsmean", "mmrm_difference")
    };
    match stats::mmrm::fit_mmrm_with_fallback(&data, &spec, &chain) {
        Err(e) => out.push(ResultRow {
            method: diff_method.into(),
            n: Some(y.len() as i64),
            note: Some(format!("{model}: {e}")),
            ..base_row
        }),
        Ok(f) => {
            let fit = &f.fit;
            let fallback = if f.failures.is_empty() {
                String::new()
            } else {
                format!(
                    "; fallback from {}",
                    f.failures
                        .iter()
                        .map(|x| format!("{:?} ({})", x.structure, x.error))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let note = format!(
                "{model}; {:?} covariance, {:?}, {:?} df; -2LL {:.4}; {} subjects, {} observations{fallback}",
                f.structure, fit.estimation, fit.ddf, fit.m2_log_lik, fit.n_subjects, fit.n_obs
            );
            let vn = |name: &str| post.iter().find(|p| p.0 == name).map(|p| p.1);
            if single_arm {
                // LS-mean per visit (covariates at their mean) of the one arm.
                for visit in &visit_names {
                    let r = fit
                        .lsmean_row(&[("AVISIT", visit)])
                        .and_then(|l| fit.contrast(&l));
                    out.push(match r {
                        Ok(r) => ResultRow {
                            method: lsmean_method.into(),
                            avisit: Some(visit.to_string()),
                            avisitn: vn(visit),
                            group: levels[0].1.to_string(),
                            n: Some(fit.n_subjects as i64),
                            estimate: Some(r.estimate),
                            se: Some(r.se),
                            df: Some(r.df),
                            lcl: Some(r.ci.lower),
                            ucl: Some(r.ci.upper),
                            statistic: Some(r.t),
                            p_value: Some(r.p_value),
                            note: Some(format!("{note}; single arm: test of zero mean change")),
                            ..base_row.clone()
                        },
                        Err(e) => ResultRow {
                            method: lsmean_method.into(),
                            avisit: Some(visit.to_string()),
                            note: Some(format!("{note}: {e}")),
                            ..base_row.clone()
                        },
                    });
                }
            }
            for m in &fit.lsmeans {
                let r = m.result;
                out.push(ResultRow {
                    method: lsmean_method.into(),
                    avisit: Some(m.visit.clone()),
                    avisitn: vn(&m.visit),
                    group: m.arm.clone(),
                    n: Some(fit.n_subjects as i64),
                    estimate: Some(r.estimate),
                    se: Some(r.se),
                    df: Some(r.df),
                    lcl: Some(r.ci.lower),
                    ucl: Some(r.ci.upper),
                    note: Some(note.clone()),
                    ..base_row.clone()
                });
            }
            for dd in &fit.arm_differences {
                let r = dd.result;
                out.push(ResultRow {
                    method: diff_method.into(),
                    avisit: Some(dd.visit.clone()),
                    avisitn: vn(&dd.visit),
                    group: format!("{} - {}", dd.arm, dd.reference),
                    n: Some(fit.n_subjects as i64),
                    estimate: Some(r.estimate),
                    se: Some(r.se),
                    df: Some(r.df),
                    lcl: Some(r.ci.lower),
                    ucl: Some(r.ci.upper),
                    statistic: Some(r.t),
                    p_value: Some(r.p_value),
                    note: Some(note.clone()),
                    ..base_row.clone()
                });
            }
        }
    }
}

/// Subject strata: USUBJID -> stratification column -> level.
type SubjectStrata = BTreeMap<String, crate::ingest::Strata>;

/// Proportions, risk difference, odds ratio, chi-square and Fisher per responder rule, visit and
/// arm contrast; with a stratification factor, also the Cochran-Mantel-Haenszel test and the
/// Mantel-Haenszel common odds ratio over its levels.
#[allow(clippy::too_many_arguments)]
fn responder_rows(
    out: &mut Vec<ResultRow>,
    analysis: &str,
    flags: &[ResponseFlag],
    ids: &BTreeSet<&str>,
    arms: &Arms,
    conf: f64,
    strata: Option<(&str, &SubjectStrata)>,
    cmh_correction: stats::ContinuityCorrection,
) {
    // (rule, visit number × 1000, visit) -> arm code -> (responders, subjects with a known flag)
    type Counts<'a> = BTreeMap<&'a str, (u64, u64)>;
    // The same per (arm code, stratum level).
    type StratumCounts<'a> = BTreeMap<(&'a str, &'a str), (u64, u64)>;
    let mut cells: BTreeMap<(&str, i64, &str), Counts> = BTreeMap::new();
    let mut stratified: BTreeMap<(&str, i64, &str), StratumCounts> = BTreeMap::new();
    for f in flags.iter().filter(|f| ids.contains(f.id.as_str())) {
        let (Some(v), Some(arm)) = (f.value, f.armcd.as_deref()) else {
            continue;
        };
        let key = (
            f.id.as_str(),
            (f.avisitn * 1000.0).round() as i64,
            f.avisit.as_str(),
        );
        let c = cells.entry(key).or_default().entry(arm).or_insert((0, 0));
        c.1 += 1;
        c.0 += u64::from(v);
        if let Some((factor, by_subject)) = strata {
            // A subject without a level is in the stratum "" (as the stratified survival analyses).
            let level = by_subject
                .get(&f.usubjid)
                .and_then(|s| s.get(factor))
                .map_or("", String::as_str);
            let c = stratified
                .entry(key)
                .or_default()
                .entry((arm, level))
                .or_insert((0, 0));
            c.1 += 1;
            c.0 += u64::from(v);
        }
    }
    for (key, by_arm) in &cells {
        let (id, vn, visit) = key;
        let base = ResultRow {
            analysis: analysis.to_string(),
            paramcd: Some(id.to_string()),
            avisit: Some(visit.to_string()),
            avisitn: Some(*vn as f64 / 1000.0),
            ..Default::default()
        };
        let all: Vec<&(String, String)> = arms
            .experimental
            .iter()
            .chain(arms.control.iter())
            .collect();
        for (code, label) in &all {
            let (x, n) = by_arm.get(code.as_str()).copied().unwrap_or((0, 0));
            for (method, ci) in [
                ("proportion_wilson", stats::ProportionCi::Wilson),
                (
                    "proportion_clopper_pearson",
                    stats::ProportionCi::ClopperPearson,
                ),
            ] {
                let r = stats::proportion(x, n, ci, conf);
                out.push(match r {
                    Ok(p) => ResultRow {
                        method: method.into(),
                        group: label.clone(),
                        n: Some(n as i64),
                        estimate: Some(p.estimate),
                        lcl: Some(p.ci.lower),
                        ucl: Some(p.ci.upper),
                        note: Some(format!("{x} of {n} responders")),
                        ..base.clone()
                    },
                    Err(e) => ResultRow {
                        method: method.into(),
                        group: label.clone(),
                        n: Some(n as i64),
                        note: note(&e),
                        ..base.clone()
                    },
                });
            }
        }
        let Some((ccode, clabel)) = &arms.control else {
            continue;
        };
        let (x2, n2) = by_arm.get(ccode.as_str()).copied().unwrap_or((0, 0));
        for (code, label) in &arms.experimental {
            let (x1, n1) = by_arm.get(code.as_str()).copied().unwrap_or((0, 0));
            let group = format!("{label} - {clabel}");
            let n = Some((n1 + n2) as i64);
            let rd = stats::risk_difference(x1, n1, x2, n2, conf);
            out.push(match rd {
                Ok(r) => ResultRow {
                    method: "risk_difference_newcombe".into(),
                    group: group.clone(),
                    n,
                    estimate: Some(r.estimate),
                    lcl: Some(r.ci.lower),
                    ucl: Some(r.ci.upper),
                    ..base.clone()
                },
                Err(e) => ResultRow {
                    method: "risk_difference_newcombe".into(),
                    group: group.clone(),
                    n,
                    note: note(&e),
                    ..base.clone()
                },
            });
            let table = stats::Table2x2 {
                a: x1,
                b: n1 - x1,
                c: x2,
                d: n2 - x2,
            };
            out.push(
                match stats::odds_ratio(&table, conf, stats::ZeroCells::Error) {
                    Ok(o) => ResultRow {
                        method: "odds_ratio_wald".into(),
                        group: group.clone(),
                        n,
                        estimate: Some(o.estimate),
                        se: Some(o.se_log),
                        lcl: Some(o.ci.lower),
                        ucl: Some(o.ci.upper),
                        statistic: Some(o.z),
                        p_value: Some(o.p_value),
                        note: Some("Wald interval on the log scale; SE of log OR".into()),
                        ..base.clone()
                    },
                    Err(e) => ResultRow {
                        method: "odds_ratio_wald".into(),
                        group: group.clone(),
                        n,
                        note: note(&e),
                        ..base.clone()
                    },
                },
            );
            out.push(
                match stats::chi_square_2x2(&table, stats::ContinuityCorrection::None) {
                    Ok(c) => ResultRow {
                        method: "chi_square".into(),
                        group: group.clone(),
                        n,
                        statistic: Some(c.statistic),
                        df: Some(c.df),
                        p_value: Some(c.p_value),
                        note: Some("Pearson, no continuity correction".into()),
                        ..base.clone()
                    },
                    Err(e) => ResultRow {
                        method: "chi_square".into(),
                        group: group.clone(),
                        n,
                        note: note(&e),
                        ..base.clone()
                    },
                },
            );
            out.push(
                match stats::fisher_exact(&table, Alternative::TwoSided, conf) {
                    Ok(f) => ResultRow {
                        method: "fisher_exact_or".into(),
                        group: group.clone(),
                        n,
                        estimate: Some(f.estimate).filter(|x| x.is_finite()),
                        lcl: Some(f.ci.lower).filter(|x| x.is_finite()),
                        ucl: Some(f.ci.upper).filter(|x| x.is_finite()),
                        p_value: Some(f.p_value),
                        note: (!f.estimate.is_finite() || !f.ci.upper.is_finite()).then(|| {
                            "odds ratio at the edge of its support (a zero cell)".to_string()
                        }),
                        ..base.clone()
                    },
                    Err(e) => ResultRow {
                        method: "fisher_exact_or".into(),
                        group: group.clone(),
                        n,
                        note: note(&e),
                        ..base.clone()
                    },
                },
            );
            if let (Some((factor, _)), Some(by_stratum)) = (strata, stratified.get(key)) {
                cmh_rows(
                    out,
                    &base,
                    &group,
                    factor,
                    by_stratum,
                    (code, ccode),
                    cmh_correction,
                    conf,
                );
            }
        }
    }
}

/// Each arm's responder proportion per rule and visit against a benchmark rate: the exact
/// one-sample binomial test (two-sided) with the Clopper-Pearson interval, as R's `binom.test`.
fn benchmark_rows(
    out: &mut Vec<ResultRow>,
    analysis: &str,
    flags: &[ResponseFlag],
    ids: &BTreeSet<&str>,
    arms: &Arms,
    p0: f64,
    conf: f64,
) {
    // (rule, visit number × 1000, visit) -> arm code -> (responders, subjects with a known flag)
    type Counts<'a> = BTreeMap<&'a str, (u64, u64)>;
    let mut cells: BTreeMap<(&str, i64, &str), Counts> = BTreeMap::new();
    for f in flags.iter().filter(|f| ids.contains(f.id.as_str())) {
        let (Some(v), Some(arm)) = (f.value, f.armcd.as_deref()) else {
            continue;
        };
        let c = cells
            .entry((
                f.id.as_str(),
                (f.avisitn * 1000.0).round() as i64,
                f.avisit.as_str(),
            ))
            .or_default()
            .entry(arm)
            .or_insert((0, 0));
        c.1 += 1;
        c.0 += u64::from(v);
    }
    for ((id, vn, visit), by_arm) in &cells {
        for (code, label) in arms.experimental.iter().chain(arms.control.iter()) {
            let (x, n) = by_arm.get(code.as_str()).copied().unwrap_or((0, 0));
            let base = ResultRow {
                analysis: analysis.to_string(),
                method: "binomial_exact".into(),
                paramcd: Some(id.to_string()),
                avisit: Some(visit.to_string()),
                avisitn: Some(*vn as f64 / 1000.0),
                group: label.clone(),
                n: Some(n as i64),
                ..Default::default()
            };
            out.push(
                match stats::binom_test(x, n, p0, Alternative::TwoSided, conf) {
                    Ok(t) => ResultRow {
                        estimate: Some(t.estimate),
                        lcl: t.ci.map(|c| c.lower),
                        ucl: t.ci.map(|c| c.upper),
                        statistic: Some(t.statistic),
                        p_value: Some(t.p_value),
                        note: Some(format!(
                            "{x} of {n} responders against the benchmark {p0}; Clopper-Pearson interval"
                        )),
                        ..base
                    },
                    Err(e) => ResultRow {
                        note: note(&e),
                        ..base
                    },
                },
            );
        }
    }
}

/// Cochran-Mantel-Haenszel test and Mantel-Haenszel common odds ratio of `arms.0` versus
/// `arms.1` over the levels of one stratification factor (`stats::mantel_haenszel`, R's
/// `mantelhaen.test`). Strata with fewer than 2 subjects in the two arms are left out (R refuses
/// them; they add nothing to the statistic or the odds ratio) and the note says how many.
#[allow(clippy::too_many_arguments)]
fn cmh_rows(
    out: &mut Vec<ResultRow>,
    base: &ResultRow,
    group: &str,
    factor: &str,
    by_stratum: &BTreeMap<(&str, &str), (u64, u64)>,
    arms: (&str, &str),
    correction: stats::ContinuityCorrection,
    conf: f64,
) {
    let levels: BTreeSet<&str> = by_stratum
        .keys()
        .filter(|(arm, _)| *arm == arms.0 || *arm == arms.1)
        .map(|(_, level)| *level)
        .collect();
    let mut tables = Vec::new();
    let mut n_total = 0;
    for level in &levels {
        let (x1, n1) = by_stratum.get(&(arms.0, level)).copied().unwrap_or((0, 0));
        let (x2, n2) = by_stratum.get(&(arms.1, level)).copied().unwrap_or((0, 0));
        if n1 + n2 >= 2 {
            tables.push(stats::Table2x2::new(x1, n1 - x1, x2, n2 - x2));
            n_total += n1 + n2;
        }
    }
    let left_out = levels.len() - tables.len();
    let snote = format!(
        "stratified by {factor} ({} strata{})",
        tables.len(),
        if left_out > 0 {
            format!("; {left_out} with fewer than 2 subjects left out")
        } else {
            String::new()
        }
    );
    let cnote = match correction {
        stats::ContinuityCorrection::None => "no continuity correction",
        stats::ContinuityCorrection::Yates => "continuity correction 0.5",
    };
    let n = Some(n_total as i64);
    match stats::mantel_haenszel(&tables, correction, Alternative::TwoSided, conf) {
        Ok(m) => {
            out.push(ResultRow {
                method: "cmh".into(),
                group: group.to_string(),
                n,
                statistic: Some(m.statistic),
                df: Some(1.0),
                p_value: Some(m.p_value),
                note: Some(format!("Cochran-Mantel-Haenszel, {snote}; {cnote}")),
                ..base.clone()
            });
            out.push(ResultRow {
                method: "odds_ratio_mh".into(),
                group: group.to_string(),
                n,
                estimate: Some(m.common_odds_ratio),
                se: Some(m.se_log),
                lcl: Some(m.ci.lower),
                ucl: Some(m.ci.upper),
                note: Some(format!(
                    "Mantel-Haenszel common odds ratio, {snote}; Robins-Breslow-Greenland \
                     interval; SE of log OR"
                )),
                ..base.clone()
            });
        }
        Err(e) => {
            for method in ["cmh", "odds_ratio_mh"] {
                out.push(ResultRow {
                    method: method.into(),
                    group: group.to_string(),
                    n,
                    note: Some(format!("{snote}: {e}")),
                    ..base.clone()
                });
            }
        }
    }
}

/// Survival grouped by the levels of a subject-level stratification column instead of the arms
/// (arms are ignored): Kaplan-Meier per level, log-rank across the levels and Cox hazard ratios
/// of each level against the first (levels in sorted order). Subjects with a blank level are
/// left out.
fn survival_by_rows(
    out: &mut Vec<ResultRow>,
    curves_out: &mut Vec<KmCurve>,
    analysis: &str,
    tte: &[TteRow],
    by: &str,
    conf: f64,
    ties: stats::Ties,
) {
    let rows: Vec<TteRow> = tte
        .iter()
        .filter_map(|r| {
            let level = r.strata.get(by).filter(|l| !l.is_empty())?;
            let mut r = r.clone();
            r.armcd = Some(level.clone());
            Some(r)
        })
        .collect();
    let levels: BTreeSet<&str> = rows.iter().filter_map(|r| r.armcd.as_deref()).collect();
    let mut levels = levels
        .into_iter()
        .map(|l| (l.to_string(), format!("{by} = {l}")));
    let groups = Arms {
        control: levels.next(),
        experimental: levels.collect(),
    };
    survival_rows(out, curves_out, analysis, &rows, &groups, conf, &[], ties);
}

#[allow(clippy::too_many_arguments)]
fn survival_rows(
    out: &mut Vec<ResultRow>,
    curves_out: &mut Vec<KmCurve>,
    analysis: &str,
    tte: &[TteRow],
    arms: &Arms,
    conf: f64,
    strata: &[String],
    ties: stats::Ties,
) {
    let params: BTreeSet<&str> = tte.iter().map(|r| r.paramcd.as_str()).collect();
    let mut levels: Vec<&(String, String)> = arms.control.iter().collect();
    levels.extend(arms.experimental.iter());
    for param in params {
        let rows: Vec<&TteRow> = tte
            .iter()
            .filter(|r| r.paramcd == param)
            .filter(|r| {
                levels
                    .iter()
                    .any(|l| Some(l.0.as_str()) == r.armcd.as_deref())
            })
            .collect();
        let time: Vec<f64> = rows.iter().map(|r| r.aval).collect();
        let event: Vec<bool> = rows.iter().map(|r| r.cnsr == 0).collect();
        let group: Vec<usize> = rows
            .iter()
            .map(|r| {
                levels
                    .iter()
                    .position(|l| Some(l.0.as_str()) == r.armcd.as_deref())
                    .unwrap_or(0)
            })
            .collect();
        let base = ResultRow {
            analysis: analysis.to_string(),
            paramcd: Some(param.to_string()),
            ..Default::default()
        };
        let opts = stats::KmOptions {
            conf_level: conf,
            ..Default::default()
        };
        match stats::kaplan_meier_by_group(&time, &event, &group, &opts) {
            Err(e) => out.push(ResultRow {
                method: "km_median".into(),
                note: note(&e),
                ..base.clone()
            }),
            Ok(curves) => {
                for (k, km) in curves.iter().enumerate() {
                    let label = levels.get(k).map_or(String::new(), |l| l.1.clone());
                    let last = km.rows.last().map_or(0.0, |r| r.time);
                    let step = 6.0 * DAYS_PER_MONTH;
                    let grid: Vec<f64> = (0..)
                        .map(|i| i as f64 * step)
                        .take_while(|t| *t <= last)
                        .collect();
                    curves_out.push(KmCurve {
                        analysis: analysis.to_string(),
                        paramcd: param.to_string(),
                        arm: label.clone(),
                        steps: km
                            .rows
                            .iter()
                            .map(|r| (r.time, r.surv, r.lower, r.upper, r.n_censor > 0))
                            .collect(),
                        at_risk: grid.iter().map(|&t| (t, km.n_risk_at(t))).collect(),
                    });
                    out.push(ResultRow {
                        method: "km_median".into(),
                        group: label.clone(),
                        n: Some(km.n as i64),
                        estimate: km.median.estimate,
                        lcl: km.median.lower,
                        ucl: km.median.upper,
                        note: Some(format!("{} events; days; NA when not reached", km.n_events)),
                        ..base.clone()
                    });
                    let times: Vec<f64> =
                        LANDMARK_MONTHS.iter().map(|m| m * DAYS_PER_MONTH).collect();
                    match km.at_times(&times, stats::BeyondFollowUp::Error) {
                        Ok(lm) => {
                            for (m, l) in LANDMARK_MONTHS.iter().zip(lm) {
                                out.push(ResultRow {
                                    method: "km_survival".into(),
                                    group: label.clone(),
                                    avisit: Some(format!("MONTH {m}")),
                                    avisitn: Some(*m),
                                    n: Some(l.n_risk as i64),
                                    estimate: Some(l.surv),
                                    se: l.std_err,
                                    lcl: l.lower,
                                    ucl: l.upper,
                                    note: Some("n = number at risk".into()),
                                    ..base.clone()
                                });
                            }
                        }
                        Err(_) => {
                            // Landmarks beyond follow-up: report those within it.
                            for m in LANDMARK_MONTHS {
                                let t = [m * DAYS_PER_MONTH];
                                match km.at_times(&t, stats::BeyondFollowUp::Error) {
                                    Ok(l) => out.push(ResultRow {
                                        method: "km_survival".into(),
                                        group: label.clone(),
                                        avisit: Some(format!("MONTH {m}")),
                                        avisitn: Some(m),
                                        n: Some(l[0].n_risk as i64),
                                        estimate: Some(l[0].surv),
                                        se: l[0].std_err,
                                        lcl: l[0].lower,
                                        ucl: l[0].upper,
                                        note: Some("n = number at risk".into()),
                                        ..base.clone()
                                    }),
                                    Err(e) => out.push(ResultRow {
                                        method: "km_survival".into(),
                                        group: label.clone(),
                                        avisit: Some(format!("MONTH {m}")),
                                        avisitn: Some(m),
                                        note: note(&e),
                                        ..base.clone()
                                    }),
                                }
                            }
                        }
                    }
                }
            }
        }
        if levels.len() < 2 {
            continue;
        }
        let contrast = |k: usize| format!("{} - {}", levels[k].1, levels[0].1);
        match stats::log_rank(&time, &event, &group, None, stats::TimeFix::Tolerance) {
            Ok(lr) => out.push(ResultRow {
                method: "log_rank".into(),
                group: (1..levels.len())
                    .map(contrast)
                    .collect::<Vec<_>>()
                    .join("; "),
                n: Some(time.len() as i64),
                statistic: Some(lr.test.statistic),
                df: Some(lr.test.df),
                p_value: Some(lr.test.p_value),
                ..base.clone()
            }),
            Err(e) => out.push(ResultRow {
                method: "log_rank".into(),
                note: note(&e),
                ..base.clone()
            }),
        }
        let copts = stats::CoxOptions {
            conf_level: conf,
            ties,
            ..Default::default()
        };
        match stats::cox_ph(&time, &event, &group, None, &copts) {
            Ok(fit) => {
                for t in &fit.terms {
                    out.push(ResultRow {
                        method: "cox_hr".into(),
                        group: contrast(t.level),
                        n: Some(fit.n as i64),
                        estimate: Some(t.hazard_ratio),
                        se: Some(t.se),
                        lcl: Some(t.ci.lower),
                        ucl: Some(t.ci.upper),
                        statistic: Some(t.z),
                        p_value: Some(t.p_value),
                        note: Some(format!(
                            "{:?} ties; SE of log HR; LR p = {:.4}, score p = {:.4}{}",
                            fit.ties,
                            fit.likelihood_ratio.p_value,
                            fit.score.p_value,
                            if fit.converged { "" } else { "; NOT CONVERGED" }
                        )),
                        ..base.clone()
                    });
                }
            }
            Err(e) => out.push(ResultRow {
                method: "cox_hr".into(),
                group: contrast(1),
                note: note(&e),
                ..base.clone()
            }),
        }
        // Stratified by the first stratification factor of the subjects file, when there is one.
        let Some(factor) = strata.first() else {
            continue;
        };
        let labels: Vec<String> = rows
            .iter()
            .map(|r| r.strata.get(factor).cloned().unwrap_or_default())
            .collect();
        let mut uniq: Vec<&String> = labels.iter().collect();
        uniq.sort();
        uniq.dedup();
        let codes: Vec<usize> = labels
            .iter()
            .map(|l| uniq.iter().position(|u| *u == l).unwrap_or(0))
            .collect();
        let snote = format!("stratified by {factor} ({} strata)", uniq.len());
        match stats::log_rank(
            &time,
            &event,
            &group,
            Some(&codes),
            stats::TimeFix::Tolerance,
        ) {
            Ok(lr) => out.push(ResultRow {
                method: "log_rank_stratified".into(),
                group: (1..levels.len())
                    .map(contrast)
                    .collect::<Vec<_>>()
                    .join("; "),
                n: Some(time.len() as i64),
                statistic: Some(lr.test.statistic),
                df: Some(lr.test.df),
                p_value: Some(lr.test.p_value),
                note: Some(snote.clone()),
                ..base.clone()
            }),
            Err(e) => out.push(ResultRow {
                method: "log_rank_stratified".into(),
                note: Some(format!("{snote}: {e}")),
                ..base.clone()
            }),
        }
        match stats::cox_ph(&time, &event, &group, Some(&codes), &copts) {
            Ok(fit) => {
                for t in &fit.terms {
                    out.push(ResultRow {
                        method: "cox_hr_stratified".into(),
                        group: contrast(t.level),
                        n: Some(fit.n as i64),
                        estimate: Some(t.hazard_ratio),
                        se: Some(t.se),
                        lcl: Some(t.ci.lower),
                        ucl: Some(t.ci.upper),
                        statistic: Some(t.z),
                        p_value: Some(t.p_value),
                        note: Some(format!(
                            "{snote}; {:?} ties; SE of log HR{}",
                            fit.ties,
                            if fit.converged { "" } else { "; NOT CONVERGED" }
                        )),
                        ..base.clone()
                    });
                }
            }
            Err(e) => out.push(ResultRow {
                method: "cox_hr_stratified".into(),
                group: contrast(1),
                note: Some(format!("{snote}: {e}")),
                ..base.clone()
            }),
        }
    }
}

/// `results/comparisons`.
pub fn results_table(rows: &[ResultRow]) -> Table {
    let s =
        |f: &dyn Fn(&ResultRow) -> Option<String>| ColumnData::Str(rows.iter().map(f).collect());
    let c =
        |f: &dyn Fn(&ResultRow) -> Option<String>| ColumnData::Cat(rows.iter().map(f).collect());
    let n = |f: &dyn Fn(&ResultRow) -> Option<f64>| ColumnData::F64(rows.iter().map(f).collect());
    let col = |name, label, data| Column { name, label, data };
    Table {
        columns: vec![
            col("ANALYSIS", "Analysis Id", c(&|r| Some(r.analysis.clone()))),
            col("METHOD", "Method", c(&|r| Some(r.method.clone()))),
            col("PARAMCD", "Parameter Code", c(&|r| r.paramcd.clone())),
            col(
                "AVISIT",
                "Analysis Visit (or Landmark)",
                c(&|r| r.avisit.clone()),
            ),
            col("AVISITN", "Analysis Visit (N)", n(&|r| r.avisitn)),
            col(
                "GROUP",
                "Arm, or Contrast (Experimental - Control)",
                c(&|r| Some(r.group.clone())),
            ),
            col(
                "N",
                "Subjects Used",
                ColumnData::I64(rows.iter().map(|r| r.n).collect()),
            ),
            col("ESTIMATE", "Estimate", n(&|r| r.estimate)),
            col("SE", "Standard Error", n(&|r| r.se)),
            col("DF", "Degrees of Freedom", n(&|r| r.df)),
            col("LCL", "Lower Confidence Limit", n(&|r| r.lcl)),
            col("UCL", "Upper Confidence Limit", n(&|r| r.ucl)),
            col("STATISTIC", "Test Statistic", n(&|r| r.statistic)),
            col("PVALUE", "p-value (two-sided)", n(&|r| r.p_value)),
            col(
                "PADJ",
                "Multiplicity-adjusted p-value",
                n(&|r| r.p_adjusted),
            ),
            col("NOTE", "Model Notes", s(&|r| r.note.clone())),
        ],
    }
}

/// `results/descriptive`.
pub fn descriptive_table(rows: &[DescRow]) -> Table {
    let c = |f: &dyn Fn(&DescRow) -> Option<String>| ColumnData::Cat(rows.iter().map(f).collect());
    let n = |f: &dyn Fn(&stats::Descriptive) -> Option<f64>| {
        ColumnData::F64(
            rows.iter()
                .map(|r| r.summary.as_ref().ok().and_then(f))
                .collect(),
        )
    };
    let i = |f: &dyn Fn(&stats::Descriptive) -> i64| {
        ColumnData::I64(
            rows.iter()
                .map(|r| r.summary.as_ref().ok().map(f))
                .collect(),
        )
    };
    let col = |name, label, data| Column { name, label, data };
    Table {
        columns: vec![
            col("ANALYSIS", "Analysis Id", c(&|r| Some(r.analysis.clone()))),
            col("PARAMCD", "Parameter Code", c(&|r| Some(r.paramcd.clone()))),
            col("AVISIT", "Analysis Visit", c(&|r| Some(r.avisit.clone()))),
            col(
                "AVISITN",
                "Analysis Visit (N)",
                ColumnData::F64(rows.iter().map(|r| Some(r.avisitn)).collect()),
            ),
            col("ARM", "Arm", c(&|r| Some(r.arm.clone()))),
            col(
                "VARIABLE",
                "Variable (AVAL, CHG, PCHG)",
                c(&|r| Some(r.variable.to_string())),
            ),
            col("N", "Non-missing Values", i(&|d| d.n as i64)),
            col("NMISS", "Missing Values", i(&|d| d.n_missing as i64)),
            col("MEAN", "Mean", n(&|d| Some(d.mean))),
            col("SD", "Standard Deviation", n(&|d| d.sd)),
            col("SE", "Standard Error of the Mean", n(&|d| d.se)),
            col("MEDIAN", "Median", n(&|d| Some(d.median))),
            col("Q1", "First Quartile (R type 7)", n(&|d| Some(d.q1))),
            col("Q3", "Third Quartile (R type 7)", n(&|d| Some(d.q3))),
            col("MIN", "Minimum", n(&|d| Some(d.min))),
            col("MAX", "Maximum", n(&|d| Some(d.max))),
            col(
                "NOTE",
                "Why there is no summary",
                ColumnData::Str(
                    rows.iter()
                        .map(|r| r.summary.as_ref().err().cloned())
                        .collect(),
                ),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One flag: subject `id` in `arm`, stratum level in `strata`.
    fn flag(id: &str, arm: &str, value: bool) -> ResponseFlag {
        ResponseFlag {
            id: "R".into(),
            usubjid: id.into(),
            armcd: Some(arm.into()),
            trtp: None,
            avisit: "WEEK 12".into(),
            avisitn: 12.0,
            value: Some(value),
            detail: String::new(),
            error: None,
        }
    }

    fn arms() -> Arms {
        Arms {
            control: Some(("C".into(), "Control".into())),
            experimental: vec![("E".into(), "Exp".into())],
        }
    }

    fn run(flags: &[ResponseFlag], strata: &[(&str, &str)]) -> Vec<ResultRow> {
        let by_subject: SubjectStrata = strata
            .iter()
            .map(|(id, l)| {
                (
                    id.to_string(),
                    crate::ingest::Strata::new(BTreeMap::from([(
                        "site".to_string(),
                        l.to_string(),
                    )])),
                )
            })
            .collect();
        let ids = BTreeSet::from(["R"]);
        let mut out = Vec::new();
        responder_rows(
            &mut out,
            "resp",
            flags,
            &ids,
            &arms(),
            0.95,
            Some(("site", &by_subject)),
            stats::ContinuityCorrection::None,
        );
        // Every number written is finite: a result that cannot be computed has a note instead.
        for r in &out {
            for x in [r.estimate, r.se, r.df, r.lcl, r.ucl, r.statistic, r.p_value] {
                assert!(x.is_none_or(f64::is_finite), "{r:?}");
            }
            assert!(
                r.estimate.is_some() || r.statistic.is_some() || r.note.is_some(),
                "{r:?}"
            );
        }
        out
    }

    fn row<'a>(out: &'a [ResultRow], method: &str) -> &'a ResultRow {
        out.iter().find(|r| r.method == method).unwrap()
    }

    #[test]
    fn cmh_leaves_out_strata_with_fewer_than_two_subjects() {
        let mut flags = Vec::new();
        let mut strata = Vec::new();
        let ids: Vec<String> = (0..21).map(|i| format!("S{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let arm = if i % 2 == 0 { "E" } else { "C" };
            flags.push(flag(id, arm, i % 3 == 0));
            // 10 + 10 subjects in two sites, one subject alone in a third.
            strata.push((id.as_str(), ["A", "B", "Z"][i / 10]));
        }
        let out = run(&flags, &strata);
        let cmh = row(&out, "cmh");
        assert!(cmh.p_value.is_some(), "{cmh:?}");
        let note = cmh.note.as_deref().unwrap();
        assert!(
            note.contains("(2 strata; 1 with fewer than 2 subjects left out)"),
            "{note}"
        );
        assert_eq!(cmh.n, Some(20));
        assert!(row(&out, "odds_ratio_mh").estimate.is_some());
    }

    #[test]
    fn degenerate_tables_give_notes_not_nan() {
        // Everyone responds: no variance for the CMH test, odds ratios undefined.
        let flags: Vec<ResponseFlag> = (0..8)
            .map(|i| flag(&format!("S{i}"), ["E", "C"][i % 2], true))
            .collect();
        let strata: Vec<(String, &str)> = (0..8)
            .map(|i| (format!("S{i}"), ["A", "B"][i / 4]))
            .collect();
        let strata: Vec<(&str, &str)> = strata.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        let out = run(&flags, &strata);
        for m in ["cmh", "odds_ratio_mh", "odds_ratio_wald", "chi_square"] {
            let r = row(&out, m);
            assert!(r.estimate.is_none() && r.p_value.is_none(), "{r:?}");
            assert!(r.note.is_some(), "{r:?}");
        }
        // Every stratum too small: the CMH rows say why.
        let out = run(&flags[..2], &[("S0", "A"), ("S1", "B")]);
        assert!(
            row(&out, "cmh")
                .note
                .as_deref()
                .unwrap()
                .contains("0 strata")
        );
        // An arm without subjects: proportions of that arm carry a note.
        let only_e: Vec<ResponseFlag> = flags
            .iter()
            .filter(|f| f.armcd.as_deref() == Some("E"))
            .cloned()
            .collect();
        let out = run(&only_e, &strata);
        assert!(
            out.iter().any(|r| r.method == "proportion_wilson"
                && r.group == "Control"
                && r.note.is_some())
        );
    }
}
