//! Mixed model for repeated measures (MMRM), reproducing SAS PROC MIXED
//! with a `REPEATED visit / SUBJECT=subject TYPE=...` statement and R's
//! {mmrm} package.
//!
//! The model is `y_i ~ N(X_i β, Σ_i)` independently over subjects, where
//! `Σ_i` is the sub-matrix of one `T × T` visit covariance matrix `Σ(θ)` on
//! the visits subject `i` has. `θ` is estimated by REML (default) or ML with
//! `β` profiled out by generalized least squares; the optimizer is Newton's
//! method with the analytic gradient and Hessian. Inference on `β` uses
//! Satterthwaite (default), Kenward-Roger (linear), residual or
//! between-within degrees of freedom. LS-means follow SAS and emmeans:
//! covariates at their mean, other factors weighted equally.
//!
//! Entry points: [`fit_mmrm`], [`fit_mmrm_with_fallback`] (first converging
//! structure of a chain), [`fit_mmrm_at_covariance`] (everything at a given
//! unstructured `Σ`, SAS's `PARMS / NOITER`) and [`aliased_columns`]
//! (why a design is singular). The result [`MmrmFit`] offers
//! [`MmrmFit::contrast`] and [`MmrmFit::f_test`] for any linear combination
//! of the coefficients. Formulas and validation are in `docs/methods.md`
//! (section "Mixed model for repeated measures").

mod covariance;
mod design;
mod inference;
mod likelihood;
mod linalg;
mod optimize;
mod parallel;
#[cfg(test)]
mod tests;

use faer::{Mat, Side};

use super::common::{Ci, check_conf_level};
use super::error::StatsError;
use inference::{Inference, kenward_roger_vcov};
use likelihood::Problem;

pub use super::ancova::{Covariate, Factor};
pub use covariance::CovStructure;
pub use design::{Intercept, MmrmData, Term, encode_ids, encode_levels};

/// Estimation method of the covariance parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Estimation {
    /// Restricted maximum likelihood (SAS `METHOD=REML`, default).
    #[default]
    Reml,
    /// Maximum likelihood (SAS `METHOD=ML`).
    Ml,
}

/// Denominator degrees of freedom for tests of the fixed effects (SAS `DDFM=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DdfMethod {
    /// Satterthwaite (SAS `DDFM=SATTERTHWAITE`, default).
    #[default]
    Satterthwaite,
    /// Kenward-Roger with the adjusted covariance `Φ_A` of `β̂`, linear
    /// variant (SAS `DDFM=KR(LINEAR)`, identical to `DDFM=KR` for UN;
    /// {mmrm} `"Kenward-Roger-Linear"`). REML only.
    KenwardRoger,
    /// `n - rank(X)` (SAS `DDFM=RESIDUAL`).
    Residual,
    /// Between-within as {mmrm} defines it: within-subject df
    /// `n - N_subjects - p_within` for columns that vary within a subject and
    /// for the intercept, between-subject df `N_subjects - p_between - 1`
    /// otherwise; a contrast gets the smallest df of its coefficients.
    BetweenWithin,
}

/// What to do when the optimizer stops without meeting the convergence criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvergencePolicy {
    /// Return [`StatsError::NotConverged`] (default).
    #[default]
    Require,
    /// Return the fit with `convergence.converged == false` when inference is
    /// still computable (positive definite Hessian).
    Report,
}

/// How the per-pattern data are kept (a performance choice; results agree
/// to rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoragePolicy {
    /// Cross-products summed per pattern where that is cheaper, per-subject rows otherwise.
    #[default]
    Auto,
    /// Always sum cross-products per pattern.
    Aggregated,
    /// Always keep per-subject rows.
    PerSubject,
}

/// Optimizer settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmrmControl {
    /// Maximum number of Newton iterations (default 100).
    pub max_iterations: usize,
    /// Convergence when the Newton decrement `gᵀH⁻¹g` (the predicted
    /// reduction of `-2 log L`, times two) is at most
    /// `tolerance · (1 + |-2 log L|)` with a positive definite Hessian
    /// (default 1e-14; a step that no longer lowers `-2 log L` at
    /// floating-point precision also counts as converged when the decrement
    /// is below `1e-6 · (1 + |-2 log L|)`).
    pub tolerance: f64,
    /// Non-convergence handling.
    pub convergence: ConvergencePolicy,
    /// Per-pattern data storage.
    pub storage: StoragePolicy,
}

impl Default for MmrmControl {
    fn default() -> Self {
        MmrmControl {
            max_iterations: 100,
            tolerance: 1e-14,
            convergence: ConvergencePolicy::Require,
            storage: StoragePolicy::Auto,
        }
    }
}

/// The model: fixed-effects terms, the visit and arm variables and the
/// method choices.
#[derive(Debug, Clone, PartialEq)]
pub struct MmrmSpec {
    /// Fixed-effects terms; they are ordered as R orders them (main effects
    /// before interactions, otherwise as given).
    pub terms: Vec<Term>,
    /// Intercept or not.
    pub intercept: Intercept,
    /// Name of the visit factor (the repeated-measures index).
    pub visit: String,
    /// Name of the treatment-arm factor; when set, the fit reports LS-means by
    /// visit and arm and each arm minus the reference (first) arm by visit.
    pub arm: Option<String>,
    /// Covariance structure.
    pub covariance: CovStructure,
    /// REML or ML.
    pub estimation: Estimation,
    /// Denominator degrees of freedom.
    pub ddf: DdfMethod,
    /// Confidence level of all intervals (default 0.95).
    pub conf_level: f64,
    /// Optimizer settings.
    pub control: MmrmControl,
}

impl MmrmSpec {
    /// A specification with the defaults: intercept, UN, REML,
    /// Satterthwaite, 95% intervals, no arm.
    pub fn new(terms: Vec<Term>, visit: &str) -> Self {
        MmrmSpec {
            terms,
            intercept: Intercept::Included,
            visit: visit.to_string(),
            arm: None,
            covariance: CovStructure::Unstructured,
            estimation: Estimation::Reml,
            ddf: DdfMethod::Satterthwaite,
            conf_level: 0.95,
            control: MmrmControl::default(),
        }
    }

    /// Sets the arm factor.
    pub fn with_arm(mut self, arm: &str) -> Self {
        self.arm = Some(arm.to_string());
        self
    }

    /// Sets the covariance structure.
    pub fn with_covariance(mut self, covariance: CovStructure) -> Self {
        self.covariance = covariance;
        self
    }

    /// Sets REML or ML.
    pub fn with_estimation(mut self, estimation: Estimation) -> Self {
        self.estimation = estimation;
        self
    }

    /// Sets the degrees-of-freedom method.
    pub fn with_ddf(mut self, ddf: DdfMethod) -> Self {
        self.ddf = ddf;
        self
    }
}

/// Estimate, standard error, df, t statistic, two-sided p-value and
/// confidence interval of one linear combination `lᵀβ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContrastResult {
    /// `lᵀβ̂`.
    pub estimate: f64,
    /// `sqrt(lᵀ Φ l)` (`Φ_A` for Kenward-Roger).
    pub se: f64,
    /// Denominator degrees of freedom (`inf` if the Satterthwaite
    /// denominator vanishes; the normal distribution is then used).
    pub df: f64,
    /// `estimate / se`.
    pub t: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Two-sided confidence interval `estimate ± t_{df,1-α/2} se`.
    pub ci: Ci,
}

/// F-test of `Lβ = 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FTestResult {
    /// Numerator df (rows of `L`).
    pub num_df: usize,
    /// Denominator df.
    pub den_df: f64,
    /// F statistic (Kenward-Roger: the scaled `λF`).
    pub f_value: f64,
    /// Upper-tail p-value.
    pub p_value: f64,
}

/// One fixed-effect coefficient.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedEffect {
    /// Column name, R style (`(Intercept)`, `ARMCDTRT`, `ARMCDTRT:AVISITVIS2`).
    pub name: String,
    /// Estimate.
    pub estimate: f64,
    /// Standard error.
    pub se: f64,
    /// Denominator df.
    pub df: f64,
    /// t statistic.
    pub t: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Confidence interval.
    pub ci: Ci,
}

/// LS-mean of one arm at one visit.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitLsMean {
    /// Visit label.
    pub visit: String,
    /// Visit level code.
    pub visit_level: usize,
    /// Arm label.
    pub arm: String,
    /// Arm level code.
    pub arm_level: usize,
    /// Estimate, SE, df, t, p and interval.
    pub result: ContrastResult,
}

/// LS-mean difference `arm - reference` at one visit.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitDifference {
    /// Visit label.
    pub visit: String,
    /// Visit level code.
    pub visit_level: usize,
    /// Arm label.
    pub arm: String,
    /// Arm level code.
    pub arm_level: usize,
    /// Reference arm label (level 0).
    pub reference: String,
    /// Estimate, SE, df, t, p and interval.
    pub result: ContrastResult,
}

/// Convergence diagnostics of the optimizer.
#[derive(Debug, Clone, PartialEq)]
pub struct Convergence {
    /// Whether the convergence criterion was met.
    pub converged: bool,
    /// Newton iterations.
    pub iterations: usize,
    /// Likelihood evaluations (including line-search trials).
    pub evaluations: usize,
    /// Largest absolute gradient entry of `-2 log L` at the estimate.
    pub gradient_max_abs: f64,
    /// Newton decrement `gᵀH⁻¹g` at the estimate.
    pub newton_decrement: f64,
    /// Which starting values led to the estimate (`"moments"` or
    /// `"independence"`; `"fixed"` for [`fit_mmrm_at_covariance`]).
    pub start: &'static str,
    /// Human-readable outcome.
    pub message: String,
}

/// A fitted MMRM.
#[derive(Debug, Clone)]
pub struct MmrmFit {
    /// Covariance structure.
    pub structure: CovStructure,
    /// REML or ML.
    pub estimation: Estimation,
    /// Degrees-of-freedom method.
    pub ddf: DdfMethod,
    /// Fixed effects in design-column order.
    pub fixed_effects: Vec<FixedEffect>,
    /// Visit labels (the order of the rows and columns of `covariance`).
    pub visit_levels: Vec<String>,
    /// Estimated `T × T` covariance matrix `Σ`.
    pub covariance: Vec<Vec<f64>>,
    /// Correlation matrix of `Σ`.
    pub correlation: Vec<Vec<f64>>,
    /// Covariance parameters in the internal unconstrained parametrization.
    pub theta: Vec<f64>,
    /// Names of the entries of `theta` (e.g. `log L[1,1]`, `atanh rho`).
    pub theta_names: Vec<String>,
    /// `-2 log L` (REML: `-2 Res Log Like` of SAS), including the `2π` constant.
    pub m2_log_lik: f64,
    /// `-2 log L + 2d`; `d` = covariance parameters (REML) or covariance
    /// parameters + fixed effects (ML), as SAS.
    pub aic: f64,
    /// SAS's AICC, `-2 log L + 2d n*/(n* - d - 1)` with `n* = n - p` (REML) or
    /// `n` (ML); `None` when `n* ≤ d + 1`.
    pub aicc: Option<f64>,
    /// `-2 log L + d log(N)` with `N` = the number of distinct subjects in the
    /// input (SAS's "Subjects", which counts subjects whose responses are all
    /// missing; {mmrm} uses subjects with data, [`MmrmFit::n_subjects`]).
    pub bic: f64,
    /// Observations used.
    pub n_obs: usize,
    /// Subjects with at least one observation used.
    pub n_subjects: usize,
    /// Distinct subjects in the input (used by `bic`).
    pub n_subjects_input: usize,
    /// Number of covariance parameters.
    pub n_cov_parameters: usize,
    /// Number of distinct missingness patterns.
    pub n_patterns: usize,
    /// LS-means per visit and arm (visit-major), when an arm was given.
    pub lsmeans: Vec<VisitLsMean>,
    /// Each non-reference arm minus the reference arm, per visit.
    pub arm_differences: Vec<VisitDifference>,
    /// Optimizer diagnostics.
    pub convergence: Convergence,
    inference: Inference,
    design: design::Design,
}

impl MmrmFit {
    /// Coefficient names in order.
    pub fn coefficient_names(&self) -> Vec<&str> {
        self.fixed_effects.iter().map(|f| f.name.as_str()).collect()
    }

    /// Estimated coefficients in order.
    pub fn coefficients(&self) -> Vec<f64> {
        self.inference.beta.clone()
    }

    /// Covariance matrix of `β̂` used for inference (`Φ_A` for Kenward-Roger).
    pub fn vcov(&self) -> Vec<Vec<f64>> {
        let v = &self.inference.vcov;
        (0..v.nrows())
            .map(|i| (0..v.ncols()).map(|j| v[(i, j)]).collect())
            .collect()
    }

    /// t-test and confidence interval of `lᵀβ` (`l` in coefficient order).
    pub fn contrast(&self, l: &[f64]) -> Result<ContrastResult, StatsError> {
        self.inference.contrast(l)
    }

    /// F-test of `Lβ = 0`, one row of `L` per hypothesis (full row rank).
    /// Satterthwaite uses SAS's/mmrm's eigen-decomposition method.
    pub fn f_test(&self, l: &[Vec<f64>]) -> Result<FTestResult, StatsError> {
        self.inference.f_test(l)
    }

    /// Row of the LS-means reference grid with the named factors at the
    /// named levels, all other factors averaged with equal weights and
    /// covariates at their mean; `contrast` of it (or of a difference of two)
    /// gives any LS-mean or LS-mean difference.
    pub fn lsmean_row(&self, levels: &[(&str, &str)]) -> Result<Vec<f64>, StatsError> {
        let mut fixed = Vec::with_capacity(levels.len());
        for (name, level) in levels {
            let f = self
                .design
                .factor_levels
                .iter()
                .position(|(n, _)| n == name)
                .ok_or_else(|| invalid("contrast", format!("no factor {name}")))?;
            let l = self.design.factor_levels[f]
                .1
                .iter()
                .position(|x| x == level)
                .ok_or_else(|| {
                    invalid("contrast", format!("factor {name} has no level {level}"))
                })?;
            fixed.push((f, l));
        }
        Ok(self.design.grid_row(&fixed))
    }

    /// F-test that all coefficients whose names are listed are zero
    /// (e.g. the three `ARMCDTRT:AVISIT…` columns: SAS's Type 3 test of the
    /// interaction, which has no marginality issue for the highest-order term).
    pub fn test_coefficients(&self, names: &[&str]) -> Result<FTestResult, StatsError> {
        let p = self.fixed_effects.len();
        let rows = names
            .iter()
            .map(|n| {
                let j = self
                    .fixed_effects
                    .iter()
                    .position(|f| f.name == *n)
                    .ok_or_else(|| invalid("contrast", format!("no coefficient {n}")))?;
                let mut r = vec![0.0; p];
                r[j] = 1.0;
                Ok(r)
            })
            .collect::<Result<Vec<_>, StatsError>>()?;
        self.f_test(&rows)
    }
}

/// Fits the MMRM described by `spec` to `data`.
///
/// Errors: `InvalidInput` (inconsistent specification or data: unknown or
/// duplicate variable, lengths that differ, a code without a level, a
/// subject with two rows at one visit, an arm not in the model, Kenward-Roger
/// with ML), `InvalidConfLevel`, `NonFiniteInput` (infinite response or
/// covariate), `EmptyInput` (no complete observation), `EmptyGroup` (a visit
/// without observations, `what = "visit"`), `Singular` (linearly dependent
/// design columns, e.g. an arm never observed at a visit),
/// `TooFewObservations`, `ZeroVariance` (residuals all zero),
/// `NotConverged` (no converged maximum, or a Hessian that is not positive
/// definite there).
pub fn fit_mmrm(data: &MmrmData<'_>, spec: &MmrmSpec) -> Result<MmrmFit, StatsError> {
    check_conf_level(spec.conf_level)?;
    if spec.ddf == DdfMethod::KenwardRoger && spec.estimation != Estimation::Reml {
        return Err(invalid(
            "MMRM specification",
            "Kenward-Roger degrees of freedom require REML estimation".to_string(),
        ));
    }
    if spec.control.tolerance.is_nan() || spec.control.tolerance <= 0.0 {
        return Err(invalid(
            "MMRM specification",
            "control.tolerance must be positive".to_string(),
        ));
    }
    let design = design::build_design(data, spec, design::RankCheck::Enforce)?;
    fit_design(design, spec)
}

/// `StatsError::InvalidInput` with a formatted reason.
pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> StatsError {
    StatsError::InvalidInput {
        what,
        reason: reason.into(),
    }
}

const COV_PARAMETER_SHORTAGE: &str =
    "residual observations (n - p for REML) for the covariance parameters";

fn fit_design(design: design::Design, spec: &MmrmSpec) -> Result<MmrmFit, StatsError> {
    let structure = spec.covariance;
    let problem = Problem::new(&design, structure, spec.estimation, spec.control.storage);
    let t = problem.t;
    let p = problem.p;
    let n = problem.n_obs;
    let k = problem.n_theta();
    let available = match spec.estimation {
        Estimation::Reml => n - p,
        Estimation::Ml => n,
    };
    if available < k {
        return Err(StatsError::TooFewObservations {
            what: COV_PARAMETER_SHORTAGE,
            n: available,
            required: k,
        });
    }

    // Starting values: moment estimate of Σ from OLS residuals, then independence.
    let mut cov0 = problem.moment_covariance().ok_or(StatsError::Singular {
        what: "MMRM fixed-effects design matrix",
    })?;
    let positive: Vec<f64> = (0..t)
        .map(|i| cov0[i * t + i])
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if positive.is_empty() {
        return Err(StatsError::ZeroVariance {
            what: "residuals of the fixed-effects model",
        });
    }
    let mean_var = positive.iter().sum::<f64>() / positive.len() as f64;
    for i in 0..t {
        let v = cov0[i * t + i];
        if !(v.is_finite() && v > 1e-8 * mean_var) {
            cov0[i * t + i] = mean_var;
        }
    }
    let starts: [(&'static str, f64); 2] = [("moments", 0.0), ("independence", 1.0)];
    let mut failures: Vec<String> = Vec::new();
    let mut best: Option<(optimize::Optimum, &'static str)> = None;
    for (label, shrink) in starts {
        let theta0 = structure.initial_theta(&cov0, t, shrink);
        match optimize::newton(
            &problem,
            &theta0,
            spec.control.max_iterations,
            spec.control.tolerance,
        ) {
            Ok(opt) if opt.converged => {
                best = Some((opt, label));
                break;
            }
            Ok(opt) => {
                failures.push(format!("from {label} start: {}", opt.message));
                let better = match &best {
                    None => true,
                    Some((b, _)) => opt.eval.value < b.eval.value,
                };
                if better {
                    best = Some((opt, label));
                }
            }
            Err(msg) => failures.push(format!("from {label} start: {msg}")),
        }
    }
    let not_converged = |detail: String| StatsError::NotConverged {
        what: structure.fit_label(),
        detail,
    };
    let (opt, start) = match best {
        Some(b) if b.0.converged || spec.control.convergence == ConvergencePolicy::Report => b,
        _ => return Err(not_converged(failures.join("; "))),
    };
    build_fit(design, spec, &problem, opt, start, &failures)
}

/// Inference and reporting at the optimum (or at fixed parameters).
fn build_fit(
    design: design::Design,
    spec: &MmrmSpec,
    problem: &Problem,
    opt: optimize::Optimum,
    start: &'static str,
    failures: &[String],
) -> Result<MmrmFit, StatsError> {
    let structure = problem.structure;
    let (t, p, n, k) = (problem.t, problem.p, problem.n_obs, problem.n_theta());
    let not_converged = |detail: String| StatsError::NotConverged {
        what: structure.fit_label(),
        detail,
    };
    // Asymptotic covariance of θ̂: W = 2 H⁻¹.
    let hess = Mat::from_fn(k, k, |i, j| opt.eval.hessian[i * k + j]);
    let llt = hess.llt(Side::Lower).map_err(|_| {
        not_converged(
            "Hessian of -2 log-likelihood is not positive definite at the estimate".to_string(),
        )
    })?;
    let w = faer::linalg::solvers::DenseSolveCore::inverse(&llt) * faer::Scale(2.0);
    let phi = opt.eval.phi.clone();
    let a_mats = opt.eval.a_mats.clone();
    let vcov = if spec.ddf == DdfMethod::KenwardRoger {
        let q = problem
            .kr_q_matrices(&opt.theta)
            .ok_or_else(|| not_converged("Σ not positive definite at the estimate".to_string()))?;
        kenward_roger_vcov(&phi, &a_mats, &q, &w)
    } else {
        phi.clone()
    };

    // Between-within df per coefficient.
    let n_within = (0..p)
        .filter(|&j| design.within[j] && !(design.intercept && j == 0))
        .count();
    let n_between = (0..p).filter(|&j| !design.within[j]).count() - usize::from(design.intercept);
    let ns = design.n_subjects as f64;
    let between_df = ns - n_between as f64 - f64::from(u8::from(design.intercept));
    let within_df = n as f64 - ns - n_within as f64;
    let bw_df: Vec<f64> = (0..p)
        .map(|j| {
            if design.within[j] || (design.intercept && j == 0) {
                within_df
            } else {
                between_df
            }
        })
        .collect();

    let inference = Inference {
        beta: opt.eval.beta.clone(),
        phi,
        vcov,
        a_mats,
        w,
        ddf: spec.ddf,
        residual_df: (n - p) as f64,
        bw_df,
        conf_level: spec.conf_level,
    };

    let mut fixed_effects = Vec::with_capacity(p);
    for j in 0..p {
        let mut l = vec![0.0; p];
        l[j] = 1.0;
        let r = inference.contrast(&l)?;
        fixed_effects.push(FixedEffect {
            name: design.names[j].clone(),
            estimate: r.estimate,
            se: r.se,
            df: r.df,
            t: r.t,
            p_value: r.p_value,
            ci: r.ci,
        });
    }

    let sigma = structure.sigma(&opt.theta, t);
    let covariance: Vec<Vec<f64>> = (0..t).map(|i| sigma[i * t..(i + 1) * t].to_vec()).collect();
    let correlation: Vec<Vec<f64>> = (0..t)
        .map(|i| {
            (0..t)
                .map(|j| sigma[i * t + j] / (sigma[i * t + i] * sigma[j * t + j]).sqrt())
                .collect()
        })
        .collect();

    // LS-means by visit and arm.
    let mut lsmeans = Vec::new();
    let mut arm_differences = Vec::new();
    if let Some(arm) = design.arm_factor {
        let arm_levels = design.factor_levels[arm].1.clone();
        let vf = design.visit_factor;
        for (v, visit) in design.visit_levels.iter().enumerate() {
            let rows: Vec<Vec<f64>> = (0..arm_levels.len())
                .map(|a| {
                    if arm == vf {
                        design.grid_row(&[(vf, v)])
                    } else {
                        design.grid_row(&[(vf, v), (arm, a)])
                    }
                })
                .collect();
            for (a, label) in arm_levels.iter().enumerate() {
                lsmeans.push(VisitLsMean {
                    visit: visit.clone(),
                    visit_level: v,
                    arm: label.clone(),
                    arm_level: a,
                    result: inference.contrast(&rows[a])?,
                });
            }
            for (a, label) in arm_levels.iter().enumerate().skip(1) {
                let diff: Vec<f64> = rows[a].iter().zip(&rows[0]).map(|(x, y)| x - y).collect();
                arm_differences.push(VisitDifference {
                    visit: visit.clone(),
                    visit_level: v,
                    arm: label.clone(),
                    arm_level: a,
                    reference: arm_levels[0].clone(),
                    result: inference.contrast(&diff)?,
                });
            }
        }
    }

    let m2 = opt.eval.value;
    let d = match spec.estimation {
        Estimation::Reml => k,
        Estimation::Ml => k + p,
    } as f64;
    let n_star = match spec.estimation {
        Estimation::Reml => (n - p) as f64,
        Estimation::Ml => n as f64,
    };
    let aicc = if n_star - d - 1.0 > 0.0 {
        Some(m2 + 2.0 * d * n_star / (n_star - d - 1.0))
    } else {
        None
    };
    let gradient_max_abs = opt
        .eval
        .gradient
        .iter()
        .fold(0.0_f64, |m, g| m.max(g.abs()));
    let convergence = Convergence {
        converged: opt.converged,
        iterations: opt.iterations,
        evaluations: opt.evaluations,
        gradient_max_abs,
        newton_decrement: opt.decrement,
        start,
        message: if failures.is_empty() {
            opt.message.clone()
        } else {
            format!(
                "{} (earlier attempts: {})",
                opt.message,
                failures.join("; ")
            )
        },
    };
    Ok(MmrmFit {
        structure,
        estimation: spec.estimation,
        ddf: spec.ddf,
        fixed_effects,
        visit_levels: design.visit_levels.clone(),
        covariance,
        correlation,
        theta: opt.theta.clone(),
        theta_names: structure.parameter_names(t),
        m2_log_lik: m2,
        aic: m2 + 2.0 * d,
        aicc,
        bic: m2 + d * (design.n_subjects_input as f64).ln(),
        n_obs: n,
        n_subjects: design.n_subjects,
        n_subjects_input: design.n_subjects_input,
        n_cov_parameters: k,
        n_patterns: problem.patterns.len(),
        lsmeans,
        arm_differences,
        convergence,
        inference,
        design,
    })
}

/// Names of the design columns that are linear combinations of the columns
/// before them: why [`fit_mmrm`] returned `StatsError::Singular` (e.g.
/// `["ARMCDTRT:AVISITVIS4"]` when no treated subject was observed at VIS4).
/// Empty for a design of full column rank.
///
/// Errors: those of [`fit_mmrm`] that concern the data and specification.
pub fn aliased_columns(data: &MmrmData<'_>, spec: &MmrmSpec) -> Result<Vec<String>, StatsError> {
    design::aliased_column_names(data, spec)
}

/// The default fallback chain: UN → heterogeneous Toeplitz → heterogeneous
/// AR(1) → heterogeneous CS → CS.
pub const DEFAULT_FALLBACK_CHAIN: [CovStructure; 5] = [
    CovStructure::Unstructured,
    CovStructure::HeterogeneousToeplitz,
    CovStructure::HeterogeneousAr1,
    CovStructure::HeterogeneousCompoundSymmetry,
    CovStructure::CompoundSymmetry,
];

/// A structure of the fallback chain that was tried and failed.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackFailure {
    /// The structure.
    pub structure: CovStructure,
    /// Why it failed.
    pub error: StatsError,
}

/// Result of [`fit_mmrm_with_fallback`].
#[derive(Debug, Clone)]
pub struct FallbackFit {
    /// The first fit that converged.
    pub fit: MmrmFit,
    /// Its covariance structure.
    pub structure: CovStructure,
    /// The structures tried before it, with their errors.
    pub failures: Vec<FallbackFailure>,
}

/// Fits with each structure of `chain` in turn (ignoring
/// `spec.covariance`) and returns the first that converges, with the reasons
/// the earlier ones failed.
///
/// Only failures of the covariance fit move on to the next structure
/// (`NotConverged`, or too few observations for the structure's
/// parameters); errors in the data or specification are returned at once.
/// When every structure fails the error is `NotConverged` listing them all.
pub fn fit_mmrm_with_fallback(
    data: &MmrmData<'_>,
    spec: &MmrmSpec,
    chain: &[CovStructure],
) -> Result<FallbackFit, StatsError> {
    if chain.is_empty() {
        return Err(StatsError::EmptyInput {
            what: "fallback chain",
        });
    }
    check_conf_level(spec.conf_level)?;
    if spec.ddf == DdfMethod::KenwardRoger && spec.estimation != Estimation::Reml {
        return Err(invalid(
            "MMRM specification",
            "Kenward-Roger degrees of freedom require REML estimation".to_string(),
        ));
    }
    let design = design::build_design(data, spec, design::RankCheck::Enforce)?;
    let mut failures = Vec::new();
    for &structure in chain {
        let mut s = spec.clone();
        s.covariance = structure;
        match fit_design(design.clone(), &s) {
            Ok(fit) => {
                return Ok(FallbackFit {
                    fit,
                    structure,
                    failures,
                });
            }
            Err(e) => {
                let structural = matches!(e, StatsError::NotConverged { .. })
                    || matches!(e, StatsError::TooFewObservations { what, .. } if what == COV_PARAMETER_SHORTAGE);
                if !structural {
                    return Err(e);
                }
                failures.push(FallbackFailure {
                    structure,
                    error: e,
                });
            }
        }
    }
    Err(StatsError::NotConverged {
        what: "MMRM (every covariance structure of the fallback chain)",
        detail: failures
            .iter()
            .map(|f| format!("{}: {}", f.structure.sas_name(), f.error))
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// The fit at a given unstructured visit covariance matrix `Σ` (rows and
/// columns in visit-level order), without optimizing: SAS's
/// `PARMS (...) / NOITER` with `TYPE=UN`. `spec.covariance` is ignored.
/// Everything (GLS estimates, `Φ`, degrees of freedom, LS-means, Kenward-Roger)
/// is computed at `Σ`, with derivatives taken with respect to the elements
/// of `Σ` (SAS's UN parametrization; `theta` then holds the log-Cholesky
/// parameters and `convergence.gradient_max_abs` refers to the elements of
/// `Σ`). `convergence.converged` is `false`; the gradient shows how far `Σ`
/// is from the optimum. Used to check that this module
/// computes exactly what SAS computes at the point SAS reports.
///
/// Errors: those of [`fit_mmrm`] for the data and specification, and
/// `InvalidInput` when `covariance` is not a `T × T` symmetric positive
/// definite matrix; `NotConverged` when the Hessian is not positive definite there.
pub fn fit_mmrm_at_covariance(
    data: &MmrmData<'_>,
    spec: &MmrmSpec,
    covariance: &[Vec<f64>],
) -> Result<MmrmFit, StatsError> {
    check_conf_level(spec.conf_level)?;
    if spec.ddf == DdfMethod::KenwardRoger && spec.estimation != Estimation::Reml {
        return Err(invalid(
            "MMRM specification",
            "Kenward-Roger degrees of freedom require REML estimation".to_string(),
        ));
    }
    let design = design::build_design(data, spec, design::RankCheck::Enforce)?;
    let t = design.visit_levels.len();
    let bad = || {
        invalid(
            "covariance",
            format!("covariance must be a {t} x {t} symmetric positive definite matrix"),
        )
    };
    if covariance.len() != t || covariance.iter().any(|r| r.len() != t) {
        return Err(bad());
    }
    let mut l = vec![0.0; t * t];
    for i in 0..t {
        for j in 0..t {
            let (a, b) = (covariance[i][j], covariance[j][i]);
            if !a.is_finite() || (a - b).abs() > 1e-12 * (1.0 + a.abs()) {
                return Err(bad());
            }
            l[i * t + j] = a;
        }
    }
    linalg::cholesky_in_place(&mut l, t).map_err(|_| bad())?;
    let mut theta = Vec::with_capacity(t * (t + 1) / 2);
    for i in 0..t {
        for j in 0..=i {
            let v = l[i * t + j];
            theta.push(if i == j { v.ln() } else { v });
        }
    }
    let mut problem = Problem::new(
        &design,
        CovStructure::Unstructured,
        spec.estimation,
        spec.control.storage,
    );
    // Away from the optimum the Hessian depends on the parametrization:
    // take derivatives with respect to the elements of Σ, as SAS does for UN.
    problem.basis = likelihood::Basis::SigmaElements;
    let eval =
        problem
            .evaluate(&theta, likelihood::Order::Hessian)
            .ok_or(StatsError::Singular {
                what: "MMRM fixed-effects design matrix",
            })?;
    let decrement = optimize::newton_decrement(&eval);
    let opt = optimize::Optimum {
        theta,
        eval,
        iterations: 0,
        evaluations: 1,
        converged: false,
        decrement,
        message: "covariance held fixed at the given matrix (no optimization)".to_string(),
    };
    let mut s = spec.clone();
    s.covariance = CovStructure::Unstructured;
    build_fit(design, &s, &problem, opt, "fixed", &[])
}
