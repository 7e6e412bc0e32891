//! Time-to-event analysis as R's `survival` package computes it:
//! Kaplan-Meier curves with Greenwood standard errors, confidence bands and
//! median survival (`survfit`, `summary.survfit`, `print.survfit`), the
//! log-rank test, plain and stratified (`survdiff`), and the Cox
//! proportional-hazards model for one factor covariate, plain and stratified,
//! with Efron or Breslow ties (`coxph`).
//!
//! Inputs are parallel slices: `time` (finite, `>= 0`), `event` (`true` for
//! an event, `false` for a censored time), and where needed `group` codes
//! `0..k` (every level present; level 0 is the reference of the Cox model) and
//! `strata` codes (any values; equal codes form a stratum). Missing values are
//! the caller's to remove, as R's `na.omit`.

use super::common::{Ci, check_conf_level};
use super::contingency::ChiSquareTest;
use super::discrete::{chisq_sf, qnorm};
use super::error::StatsError;
use super::linalg::{Cholesky, Matrix, zeros};

/// How nearly equal times are handled (R's `timefix` argument of `survfit`,
/// `survdiff` and `coxph`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFix {
    /// Times closer than `sqrt(machine epsilon)` (absolutely, or relative to
    /// the mean absolute time) are treated as tied, as R's `aeqSurv` (R's
    /// default, `timefix = TRUE`).
    #[default]
    Tolerance,
    /// Times are compared exactly (`timefix = FALSE`).
    Exact,
}

/// Transformation on which the pointwise Kaplan-Meier interval is built
/// (R's `conf.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KmConfType {
    /// `S · exp(±z · se(log S))`, upper bound capped at 1 (R's default `"log"`).
    #[default]
    Log,
    /// `exp(-exp(log(-log S) ± z · se(log S) / log S))` (`"log-log"`).
    LogLog,
    /// `S ± z · se(S)`, clipped to [0, 1] (`"plain"`).
    Plain,
}

/// Options of [`kaplan_meier`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KmOptions {
    /// Confidence level of the pointwise intervals and of the median's interval (R: 0.95).
    pub conf_level: f64,
    /// Interval transformation (R: `"log"`).
    pub conf_type: KmConfType,
    /// Handling of nearly tied times (R: `timefix = TRUE`).
    pub time_fix: TimeFix,
}

impl Default for KmOptions {
    fn default() -> Self {
        Self {
            conf_level: 0.95,
            conf_type: KmConfType::Log,
            time_fix: TimeFix::Tolerance,
        }
    }
}

/// One row of a Kaplan-Meier table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KmRow {
    /// The time.
    pub time: f64,
    /// Number at risk just before `time`.
    pub n_risk: usize,
    /// Events at `time`.
    pub n_event: usize,
    /// Censored at `time` (in [`KaplanMeier::event_rows`]: censored since the previous event row).
    pub n_censor: usize,
    /// Kaplan-Meier survival `S(time)`.
    pub surv: f64,
    /// Greenwood standard error of `log S` (equivalently of the cumulative
    /// hazard `-log S`): R's `fit$std.err`. `None` once `S = 0` (R: `Inf`).
    pub std_err_log: Option<f64>,
    /// Greenwood standard error of `S`, `S · std_err_log`: R's
    /// `summary(fit)$std.err`. `None` once `S = 0` (R: `NaN`).
    pub std_err: Option<f64>,
    /// Nelson-Aalen cumulative hazard, R's `fit$cumhaz`.
    pub cumhaz: f64,
    /// Its standard error `sqrt(Σ d / n²)`, R's `fit$std.chaz`.
    pub std_chaz: f64,
    /// Lower pointwise confidence bound; `None` where R reports `NA`.
    pub lower: Option<f64>,
    /// Upper pointwise confidence bound; `None` where R reports `NA`.
    pub upper: Option<f64>,
}

/// Median survival time with its confidence interval, as R's `print.survfit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MedianSurvival {
    /// Median; `None` when the curve never reaches 0.5 (R: `NA`).
    pub estimate: Option<f64>,
    /// Lower confidence limit: the first time the lower pointwise bound is at
    /// or below 0.5 (same rule as the estimate); `None` if it never is.
    pub lower: Option<f64>,
    /// Upper confidence limit: the first time the upper pointwise bound is at
    /// or below 0.5; `None` if it never is (R: `NA`).
    pub upper: Option<f64>,
}

/// A Kaplan-Meier curve for one group, as R's `survfit(Surv(time, status) ~ 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct KaplanMeier {
    /// Number of subjects.
    pub n: usize,
    /// Number of events.
    pub n_events: usize,
    /// Confidence level of the intervals.
    pub conf_level: f64,
    /// Interval transformation.
    pub conf_type: KmConfType,
    /// One row per distinct time, events or censorings (R's `fit$time` etc.).
    pub rows: Vec<KmRow>,
    /// Median survival and its interval.
    pub median: MedianSurvival,
}

/// What [`KaplanMeier::at_times`] does with a time after the last follow-up
/// time (R's `extend` argument of `summary.survfit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BeyondFollowUp {
    /// Return `StatsError::BeyondFollowUp` (R, `extend = FALSE`, silently drops the time).
    #[default]
    Error,
    /// Carry the last values forward with nobody at risk (R, `extend = TRUE`).
    CarryForward,
}

/// Survival at a landmark time, as a row of `summary(fit, times = ...)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KmLandmark {
    /// The requested time.
    pub time: f64,
    /// Number at risk at `time` (subjects with follow-up `>= time`).
    pub n_risk: usize,
    /// Events after the previous requested time, up to and including `time`.
    pub n_event: usize,
    /// Censorings in the same window.
    pub n_censor: usize,
    /// `S(time)`.
    pub surv: f64,
    /// Standard error of `S(time)` (R's `summary(...)$std.err`).
    pub std_err: Option<f64>,
    /// Lower confidence bound.
    pub lower: Option<f64>,
    /// Upper confidence bound.
    pub upper: Option<f64>,
}

impl KaplanMeier {
    /// The rows at event times only, as `summary(fit)`: `n_censor` counts the
    /// censorings since the previous event row (inclusive of this time).
    pub fn event_rows(&self) -> Vec<KmRow> {
        let mut out = Vec::new();
        let mut censored = 0;
        for row in &self.rows {
            censored += row.n_censor;
            if row.n_event > 0 {
                out.push(KmRow {
                    n_censor: censored,
                    ..*row
                });
                censored = 0;
            }
        }
        out
    }

    /// The curve at the given times, as `summary(fit, times = times)`: times
    /// are sorted ascending (as R does); survival and its interval are those
    /// of the last row at or before each time (1 before the first row);
    /// `n_event`/`n_censor` count what happened since the previous requested
    /// time. Errors: `NonFiniteInput`, `InvalidInput` for a negative time,
    /// `BeyondFollowUp` under [`BeyondFollowUp::Error`].
    pub fn at_times(
        &self,
        times: &[f64],
        beyond: BeyondFollowUp,
    ) -> Result<Vec<KmLandmark>, StatsError> {
        let mut sorted = checked_times(times)?;
        sorted.sort_by(f64::total_cmp);
        let last = self.rows.last().map_or(0.0, |r| r.time);
        let mut out = Vec::with_capacity(sorted.len());
        let (mut prev_events, mut prev_censor) = (0usize, 0usize);
        for &t in &sorted {
            if t > last && beyond == BeyondFollowUp::Error {
                return Err(StatsError::BeyondFollowUp { time: t, last });
            }
            // Last row with row.time <= t.
            let k = self.rows.partition_point(|r| r.time <= t);
            let (events, censor): (usize, usize) = self.rows[..k]
                .iter()
                .fold((0, 0), |(e, c), r| (e + r.n_event, c + r.n_censor));
            let landmark = match k.checked_sub(1).map(|i| &self.rows[i]) {
                None => KmLandmark {
                    time: t,
                    n_risk: self.n_risk_at(t),
                    n_event: 0,
                    n_censor: 0,
                    surv: 1.0,
                    std_err: Some(0.0),
                    lower: Some(1.0),
                    upper: Some(1.0),
                },
                Some(row) => KmLandmark {
                    time: t,
                    n_risk: self.n_risk_at(t),
                    n_event: events - prev_events,
                    n_censor: censor - prev_censor,
                    surv: row.surv,
                    std_err: row.std_err,
                    lower: row.lower,
                    upper: row.upper,
                },
            };
            prev_events = events;
            prev_censor = censor;
            out.push(landmark);
        }
        Ok(out)
    }

    /// Number at risk at time `t`: subjects whose follow-up time is `>= t`
    /// (the numbers printed under survival plots).
    pub fn n_risk_at(&self, t: f64) -> usize {
        let k = self.rows.partition_point(|r| r.time < t);
        self.rows.get(k).map_or(0, |r| r.n_risk)
    }

    /// [`KaplanMeier::n_risk_at`] for each time, in the order given (R's
    /// `summary(fit, times, extend = TRUE)$n.risk` for sorted times).
    pub fn n_risk_at_times(&self, times: &[f64]) -> Vec<usize> {
        times.iter().map(|&t| self.n_risk_at(t)).collect()
    }
}

/// Kaplan-Meier estimate for one group, as
/// `survfit(Surv(time, status) ~ 1, conf.type = ..., conf.int = ...)`.
///
/// Errors: `EmptyInput`, `LengthMismatch`, `NonFiniteInput`, `InvalidInput`
/// (negative time), `InvalidConfLevel`. A curve without events is valid
/// (survival stays 1).
pub fn kaplan_meier(
    time: &[f64],
    event: &[bool],
    options: &KmOptions,
) -> Result<KaplanMeier, StatsError> {
    check_conf_level(options.conf_level)?;
    check_surv(time, event)?;
    let time = apply_time_fix(time, options.time_fix);
    Ok(km_fit(&time, event, options))
}

/// Kaplan-Meier curves per group code `0..k`, as
/// `survfit(Surv(time, status) ~ group)`: near-ties are resolved on the
/// pooled times (as R does) before the curves are fitted.
///
/// Errors as [`kaplan_meier`], plus `LengthMismatch` and `EmptyGroup` for a
/// level code without observations.
pub fn kaplan_meier_by_group(
    time: &[f64],
    event: &[bool],
    group: &[usize],
    options: &KmOptions,
) -> Result<Vec<KaplanMeier>, StatsError> {
    check_conf_level(options.conf_level)?;
    check_surv(time, event)?;
    let k = check_groups(group, time.len(), "group")?;
    let time = apply_time_fix(time, options.time_fix);
    Ok((0..k)
        .map(|g| {
            let (t, e): (Vec<f64>, Vec<bool>) = (0..time.len())
                .filter(|&i| group[i] == g)
                .map(|i| (time[i], event[i]))
                .unzip();
            km_fit(&t, &e, options)
        })
        .collect())
}

fn km_fit(time: &[f64], event: &[bool], options: &KmOptions) -> KaplanMeier {
    let mut order: Vec<usize> = (0..time.len()).collect();
    order.sort_by(|&a, &b| time[a].total_cmp(&time[b]));
    let z = qnorm(1.0 - (1.0 - options.conf_level) / 2.0);
    let mut rows = Vec::new();
    let mut n_risk = time.len();
    let (mut surv, mut greenwood, mut cumhaz, mut var_chaz) = (1.0_f64, 0.0_f64, 0.0_f64, 0.0_f64);
    let mut i = 0;
    while i < order.len() {
        let t = time[order[i]];
        let mut j = i;
        let (mut d, mut c) = (0usize, 0usize);
        while j < order.len() && time[order[j]] == t {
            if event[order[j]] {
                d += 1;
            } else {
                c += 1;
            }
            j += 1;
        }
        let (nf, df) = (n_risk as f64, d as f64);
        if d > 0 {
            surv *= (nf - df) / nf;
            greenwood += if d < n_risk {
                df / (nf * (nf - df))
            } else {
                f64::INFINITY
            };
            cumhaz += df / nf;
            var_chaz += df / (nf * nf);
        }
        let se_log = (surv > 0.0 && greenwood.is_finite()).then(|| greenwood.sqrt());
        let (lower, upper) = km_interval(surv, se_log, z, options.conf_type);
        rows.push(KmRow {
            time: t,
            n_risk,
            n_event: d,
            n_censor: c,
            surv,
            std_err_log: se_log,
            std_err: se_log.map(|s| s * surv),
            cumhaz,
            std_chaz: var_chaz.sqrt(),
            lower,
            upper,
        });
        n_risk -= d + c;
        i = j;
    }
    let times: Vec<f64> = rows.iter().map(|r| r.time).collect();
    let median = MedianSurvival {
        estimate: median_crossing(
            &rows.iter().map(|r| Some(r.surv)).collect::<Vec<_>>(),
            &times,
        ),
        lower: median_crossing(&rows.iter().map(|r| r.lower).collect::<Vec<_>>(), &times),
        upper: median_crossing(&rows.iter().map(|r| r.upper).collect::<Vec<_>>(), &times),
    };
    KaplanMeier {
        n: time.len(),
        n_events: event.iter().filter(|&&e| e).count(),
        conf_level: options.conf_level,
        conf_type: options.conf_type,
        rows,
        median,
    }
}

/// Pointwise interval of `survfit_confint` (`conf.lower = "usual"`).
fn km_interval(
    surv: f64,
    se_log: Option<f64>,
    z: f64,
    conf_type: KmConfType,
) -> (Option<f64>, Option<f64>) {
    let Some(se) = se_log else {
        return (None, None);
    };
    match conf_type {
        KmConfType::Log => {
            let l = surv.ln();
            (Some((l - z * se).exp()), Some((l + z * se).exp().min(1.0)))
        }
        KmConfType::LogLog => {
            if surv == 1.0 {
                return (None, None);
            }
            let se2 = z * se / surv.ln();
            let ll = (-surv.ln()).ln();
            (
                Some((-(ll - se2).exp()).exp()),
                Some((-(ll + se2).exp()).exp()),
            )
        }
        KmConfType::Plain => {
            let se2 = se * surv * z;
            (Some((surv - se2).max(0.0)), Some((surv + se2).min(1.0)))
        }
    }
}

/// R's `minmin` (inside `survmean`): the first time the curve is at or below
/// 0.5 (within `sqrt(eps)`); if it sits at exactly 0.5 and falls later, the
/// midpoint between that time and the time it falls below.
fn median_crossing(y: &[Option<f64>], x: &[f64]) -> Option<f64> {
    let tol = f64::EPSILON.sqrt();
    let kept: Vec<(f64, f64)> = y
        .iter()
        .zip(x)
        .filter_map(|(v, &t)| v.filter(|v| *v < 0.5 + tol).map(|v| (v, t)))
        .collect();
    let &(y1, x1) = kept.first()?;
    if (y1 - 0.5).abs() < tol
        && let Some(&(_, x2)) = kept.iter().find(|(v, _)| *v < y1)
    {
        return Some((x1 + x2) / 2.0);
    }
    Some(x1)
}

/// One group's line of the log-rank table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRankGroup {
    /// Subjects in the group.
    pub n: usize,
    /// Observed events (summed over strata).
    pub observed: f64,
    /// Expected events under the null (summed over strata).
    pub expected: f64,
}

/// Result of the log-rank test, as R's `survdiff`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRank {
    /// Observed and expected events per group code.
    pub groups: Vec<LogRankGroup>,
    /// Variance-covariance matrix of `observed - expected` (R's `fit$var`).
    pub variance: Matrix,
    /// Chi-square statistic, its degrees of freedom (groups with expected
    /// events, minus one) and p-value.
    pub test: ChiSquareTest,
    /// Number of strata (1 when unstratified).
    pub n_strata: usize,
}

/// Log-rank test of equal survival across group codes `0..k`, as
/// `survdiff(Surv(time, status) ~ group)`, or stratified, as
/// `survdiff(Surv(time, status) ~ group + strata(s))` when `strata` is given
/// (observed, expected and variance summed over strata).
///
/// Errors: input errors as [`kaplan_meier_by_group`], `TooFewObservations`
/// for fewer than two groups, `NoEvents` without any event, `Undefined` when
/// fewer than two groups have expected events, `Singular` for a degenerate
/// variance matrix.
pub fn log_rank(
    time: &[f64],
    event: &[bool],
    group: &[usize],
    strata: Option<&[usize]>,
    time_fix: TimeFix,
) -> Result<LogRank, StatsError> {
    check_surv(time, event)?;
    let k = check_groups(group, time.len(), "group")?;
    if k < 2 {
        return Err(StatsError::TooFewObservations {
            what: "groups",
            n: k,
            required: 2,
        });
    }
    let strata = check_strata(strata, time.len())?;
    if !event.iter().any(|&e| e) {
        return Err(StatsError::NoEvents {
            what: "all groups".to_string(),
        });
    }
    let time = apply_time_fix(time, time_fix);
    let mut observed = vec![0.0; k];
    let mut expected = vec![0.0; k];
    let mut var = zeros(k, k);
    let blocks = strata_blocks(&strata);
    for block in &blocks {
        let mut idx = block.clone();
        idx.sort_by(|&a, &b| time[a].total_cmp(&time[b]));
        let mut at_risk = vec![0.0_f64; k];
        for &i in &idx {
            at_risk[group[i]] += 1.0;
        }
        let mut i = 0;
        while i < idx.len() {
            let t = time[idx[i]];
            let mut j = i;
            let mut deaths = vec![0.0_f64; k];
            let mut leaving = vec![0.0_f64; k];
            while j < idx.len() && time[idx[j]] == t {
                let g = group[idx[j]];
                if event[idx[j]] {
                    deaths[g] += 1.0;
                }
                leaving[g] += 1.0;
                j += 1;
            }
            let d: f64 = deaths.iter().sum();
            let n: f64 = at_risk.iter().sum();
            if d > 0.0 {
                for g in 0..k {
                    observed[g] += deaths[g];
                    expected[g] += d * at_risk[g] / n;
                }
                if n > 1.0 {
                    let wt = d * (n - d) / (n * (n - 1.0));
                    for a in 0..k {
                        for b in 0..k {
                            let delta = if a == b { 1.0 } else { 0.0 };
                            var[a][b] += wt * at_risk[a] * (delta - at_risk[b] / n);
                        }
                    }
                }
            }
            for g in 0..k {
                at_risk[g] -= leaving[g];
            }
            i = j;
        }
    }
    let used: Vec<usize> = (0..k).filter(|&g| expected[g] > 0.0).collect();
    if used.len() < 2 {
        return Err(StatsError::Undefined {
            what: "log-rank statistic",
            reason: "fewer than two groups have expected events",
        });
    }
    let sub = &used[1..];
    let diff: Vec<f64> = sub.iter().map(|&g| observed[g] - expected[g]).collect();
    let vv: Matrix = sub
        .iter()
        .map(|&a| sub.iter().map(|&b| var[a][b]).collect())
        .collect();
    let chol = Cholesky::new(&vv, 1e-12, "log-rank variance")?;
    let sol = chol.solve(&diff);
    let chi: f64 = sol.iter().zip(&diff).map(|(a, b)| a * b).sum();
    let df = (used.len() - 1) as f64;
    let groups = (0..k)
        .map(|g| LogRankGroup {
            n: group.iter().filter(|&&c| c == g).count(),
            observed: observed[g],
            expected: expected[g],
        })
        .collect();
    Ok(LogRank {
        groups,
        variance: var,
        test: ChiSquareTest {
            statistic: chi,
            df,
            p_value: chisq_sf(chi, df)?,
        },
        n_strata: blocks.len(),
    })
}

/// Approximation of the partial likelihood for tied event times (R's `ties =`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ties {
    /// Efron (1977) (R's default, `ties = "efron"`).
    #[default]
    Efron,
    /// Breslow (1974) (`ties = "breslow"`).
    Breslow,
}

/// Options of [`cox_ph`] (R's `coxph.control` defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoxOptions {
    /// Tie handling (R: Efron).
    pub ties: Ties,
    /// Confidence level of the hazard-ratio intervals (R: 0.95).
    pub conf_level: f64,
    /// Maximum Newton-Raphson iterations (R: `iter.max = 20`).
    pub max_iter: usize,
    /// Convergence: stop when `|1 - loglik_old / loglik_new| <= eps` (R: `eps = 1e-9`).
    pub eps: f64,
    /// Handling of nearly tied times (R: `timefix = TRUE`).
    pub time_fix: TimeFix,
}

impl Default for CoxOptions {
    fn default() -> Self {
        Self {
            ties: Ties::Efron,
            conf_level: 0.95,
            max_iter: 20,
            eps: 1e-9,
            time_fix: TimeFix::Tolerance,
        }
    }
}

/// One coefficient of a Cox model: level `level` of the factor against level 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoxTerm {
    /// Group code this coefficient belongs to (1..k).
    pub level: usize,
    /// Log hazard ratio `β`.
    pub coef: f64,
    /// Hazard ratio `exp(β)`.
    pub hazard_ratio: f64,
    /// Standard error of `β` (from the inverse information).
    pub se: f64,
    /// Wald `z = β / se`.
    pub z: f64,
    /// Two-sided p-value of `z`.
    pub p_value: f64,
    /// Confidence interval of the hazard ratio, `exp(β ± z_{1-α/2} se)`.
    pub ci: Ci,
}

/// A fitted Cox model with one factor covariate, as `summary(coxph(...))`.
#[derive(Debug, Clone, PartialEq)]
pub struct CoxFit {
    /// One term per non-reference level.
    pub terms: Vec<CoxTerm>,
    /// Variance-covariance matrix of the coefficients.
    pub variance: Matrix,
    /// Subjects used.
    pub n: usize,
    /// Events.
    pub n_events: usize,
    /// Log partial likelihood at `β = 0` (R's `loglik[1]`).
    pub loglik_null: f64,
    /// Log partial likelihood at the estimate (R's `loglik[2]`).
    pub loglik: f64,
    /// Likelihood-ratio test `2 (loglik - loglik_null)`.
    pub likelihood_ratio: ChiSquareTest,
    /// Wald test `βᵀ V⁻¹ β`.
    pub wald: ChiSquareTest,
    /// Score test at `β = 0` (the log-rank test for Breslow ties and no strata).
    pub score: ChiSquareTest,
    /// Newton-Raphson iterations (R's `fit$iter`).
    pub iterations: usize,
    /// Whether the convergence criterion was met within `max_iter`.
    pub converged: bool,
    /// Tie handling used.
    pub ties: Ties,
}

/// Cox proportional-hazards model `coxph(Surv(time, status) ~ factor(group))`
/// with group codes `0..k` (level 0 the reference, `k - 1` coefficients), or
/// `~ factor(group) + strata(s)` when `strata` is given. Newton-Raphson from
/// `β = 0` with step halving, as `survival`'s `coxfit6`.
///
/// Errors: input errors as [`kaplan_meier_by_group`], `TooFewObservations`
/// for a single group, `NoEvents` when a group has no events (its hazard
/// ratio is 0 or infinite), `Singular` for a singular information matrix,
/// `Undefined` when the likelihood is monotone (R warns "coefficient may be
/// infinite"), `InvalidConfLevel`, `InvalidInput` for `eps <= 0`.
pub fn cox_ph(
    time: &[f64],
    event: &[bool],
    group: &[usize],
    strata: Option<&[usize]>,
    options: &CoxOptions,
) -> Result<CoxFit, StatsError> {
    check_conf_level(options.conf_level)?;
    if options.eps.is_nan() || options.eps <= 0.0 {
        return Err(StatsError::InvalidInput {
            what: "eps",
            reason: format!("{} is not positive", options.eps),
        });
    }
    check_surv(time, event)?;
    let k = check_groups(group, time.len(), "group")?;
    if k < 2 {
        return Err(StatsError::TooFewObservations {
            what: "groups",
            n: k,
            required: 2,
        });
    }
    if !event.iter().any(|&e| e) {
        return Err(StatsError::NoEvents {
            what: "all groups".to_string(),
        });
    }
    for level in 0..k {
        if !(0..time.len()).any(|i| group[i] == level && event[i]) {
            return Err(StatsError::NoEvents {
                what: format!("group {level}"),
            });
        }
    }
    let strata = check_strata(strata, time.len())?;
    let time = apply_time_fix(time, options.time_fix);
    // Dummy columns for levels 1..k.
    let x: Vec<Vec<f64>> = (1..k)
        .map(|l| {
            group
                .iter()
                .map(|&g| if g == l { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    let data = CoxData::new(&time, event, &x, &strata);
    let fit = data.newton_raphson(options)?;

    let nvar = k - 1;
    let z = qnorm(1.0 - (1.0 - options.conf_level) / 2.0);
    let terms: Vec<CoxTerm> = (0..nvar)
        .map(|i| {
            let coef = fit.beta[i];
            let se = fit.var[i][i].sqrt();
            let zstat = coef / se;
            Ok(CoxTerm {
                level: i + 1,
                coef,
                hazard_ratio: coef.exp(),
                se,
                z: zstat,
                p_value: chisq_sf(zstat * zstat, 1.0)?,
                ci: Ci {
                    lower: (coef - z * se).exp(),
                    upper: (coef + z * se).exp(),
                    level: options.conf_level,
                },
            })
        })
        .collect::<Result<_, StatsError>>()?;
    let df = nvar as f64;
    let lr = 2.0 * (fit.loglik - fit.loglik0);
    let wald = {
        let chol = Cholesky::new(&fit.var, 1e-12, "Cox variance")?;
        let sol = chol.solve(&fit.beta);
        sol.iter().zip(&fit.beta).map(|(a, b)| a * b).sum::<f64>()
    };
    Ok(CoxFit {
        terms,
        variance: fit.var,
        n: time.len(),
        n_events: event.iter().filter(|&&e| e).count(),
        loglik_null: fit.loglik0,
        loglik: fit.loglik,
        likelihood_ratio: ChiSquareTest {
            statistic: lr,
            df,
            p_value: chisq_sf(lr, df)?,
        },
        wald: ChiSquareTest {
            statistic: wald,
            df,
            p_value: chisq_sf(wald, df)?,
        },
        score: ChiSquareTest {
            statistic: fit.score,
            df,
            p_value: chisq_sf(fit.score, df)?,
        },
        iterations: fit.iterations,
        converged: fit.converged,
        ties: options.ties,
    })
}

/// Data sorted by stratum, then time, as `coxph.fit` passes them to `coxfit6`.
struct CoxData {
    /// Sorted times.
    time: Vec<f64>,
    /// Sorted event indicators.
    event: Vec<bool>,
    /// Covariates, `x[var][person]`, sorted.
    x: Vec<Vec<f64>>,
    /// Half-open ranges of persons forming each stratum.
    strata: Vec<(usize, usize)>,
}

/// Log-likelihood, score and information at one `β`.
struct CoxEval {
    loglik: f64,
    u: Vec<f64>,
    imat: Matrix,
}

struct CoxResult {
    beta: Vec<f64>,
    var: Matrix,
    loglik0: f64,
    loglik: f64,
    score: f64,
    iterations: usize,
    converged: bool,
}

/// `toler.chol` of `coxph.control`: `.Machine$double.eps^0.75`.
const TOLER_CHOL: f64 = 1.818_989_403_545_856_5e-12;

impl CoxData {
    fn new(time: &[f64], event: &[bool], x: &[Vec<f64>], strata: &[usize]) -> Self {
        let mut order: Vec<usize> = (0..time.len()).collect();
        order.sort_by(|&a, &b| strata[a].cmp(&strata[b]).then(time[a].total_cmp(&time[b])));
        let mut ranges = Vec::new();
        let mut start = 0;
        for p in 1..=order.len() {
            if p == order.len() || strata[order[p]] != strata[order[start]] {
                ranges.push((start, p));
                start = p;
            }
        }
        Self {
            time: order.iter().map(|&i| time[i]).collect(),
            event: order.iter().map(|&i| event[i]).collect(),
            x: x.iter()
                .map(|col| order.iter().map(|&i| col[i]).collect())
                .collect(),
            strata: ranges,
        }
    }

    /// `coxfit6_iter`: walk each stratum from its last time backwards,
    /// accumulating the risk set, and add each tied death set with the
    /// Breslow or Efron weighting.
    // Index loops follow coxfit6's lower-triangle accumulation.
    #[allow(clippy::needless_range_loop)]
    fn evaluate(&self, beta: &[f64], ties: Ties) -> CoxEval {
        let nvar = beta.len();
        let mut loglik = 0.0;
        let mut u = vec![0.0; nvar];
        let mut imat = zeros(nvar, nvar);
        let mut a2 = vec![0.0; nvar];
        let mut cmat2 = zeros(nvar, nvar);
        for &(start, end) in &self.strata {
            let mut denom = 0.0;
            let mut a = vec![0.0; nvar];
            let mut cmat = zeros(nvar, nvar);
            let mut person = end;
            while person > start {
                let dtime = self.time[person - 1];
                let mut ndead = 0usize;
                let mut denom2 = 0.0;
                while person > start && self.time[person - 1] == dtime {
                    let p = person - 1;
                    let zbeta: f64 = (0..nvar).map(|i| beta[i] * self.x[i][p]).sum();
                    let risk = zbeta.exp();
                    if self.event[p] {
                        ndead += 1;
                        denom2 += risk;
                        loglik += zbeta;
                        for i in 0..nvar {
                            u[i] += self.x[i][p];
                            a2[i] += risk * self.x[i][p];
                            for j in 0..=i {
                                cmat2[i][j] += risk * self.x[i][p] * self.x[j][p];
                            }
                        }
                    } else {
                        denom += risk;
                        for i in 0..nvar {
                            a[i] += risk * self.x[i][p];
                            for j in 0..=i {
                                cmat[i][j] += risk * self.x[i][p] * self.x[j][p];
                            }
                        }
                    }
                    person -= 1;
                }
                if ndead == 0 {
                    continue;
                }
                if ties == Ties::Breslow || ndead == 1 {
                    let deadwt = ndead as f64;
                    denom += denom2;
                    loglik -= deadwt * denom.ln();
                    for i in 0..nvar {
                        a[i] += a2[i];
                        let temp2 = a[i] / denom;
                        u[i] -= deadwt * temp2;
                        for j in 0..=i {
                            cmat[i][j] += cmat2[i][j];
                            imat[j][i] += deadwt * (cmat[i][j] - temp2 * a[j]) / denom;
                        }
                    }
                } else {
                    let nd = ndead as f64;
                    for _ in 0..ndead {
                        denom += denom2 / nd;
                        loglik -= denom.ln();
                        for i in 0..nvar {
                            a[i] += a2[i] / nd;
                            let temp2 = a[i] / denom;
                            u[i] -= temp2;
                            for j in 0..=i {
                                cmat[i][j] += cmat2[i][j] / nd;
                                imat[j][i] += (cmat[i][j] - temp2 * a[j]) / denom;
                            }
                        }
                    }
                }
                a2.iter_mut().for_each(|v| *v = 0.0);
                cmat2.iter_mut().flatten().for_each(|v| *v = 0.0);
            }
        }
        // imat was filled in its upper triangle; make it symmetric.
        for i in 0..nvar {
            for j in 0..i {
                imat[i][j] = imat[j][i];
            }
        }
        CoxEval { loglik, u, imat }
    }

    /// The main loop of `coxfit6`.
    fn newton_raphson(&self, options: &CoxOptions) -> Result<CoxResult, StatsError> {
        let nvar = self.x.len();
        let mut beta = vec![0.0; nvar];
        let first = self.evaluate(&beta, options.ties);
        let loglik0 = first.loglik;
        let chol = Cholesky::new(&first.imat, TOLER_CHOL, "Cox information matrix")?;
        let step = chol.solve(&first.u);
        let score: f64 = first.u.iter().zip(&step).map(|(a, b)| a * b).sum();
        if options.max_iter == 0 {
            return Ok(CoxResult {
                beta,
                var: chol.inverse(),
                loglik0,
                loglik: loglik0,
                score,
                iterations: 0,
                converged: false,
            });
        }
        let mut best = loglik0;
        let mut newbeta: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + s).collect();
        let mut halving = 0.0_f64;
        for iter in 1..=options.max_iter {
            let eval = self.evaluate(&newbeta, options.ties);
            let chol = Cholesky::new(&eval.imat, TOLER_CHOL, "Cox information matrix");
            let finite = eval.loglik.is_finite()
                && eval.u.iter().all(|v| v.is_finite())
                && eval.imat.iter().flatten().all(|v| v.is_finite());
            if finite && (1.0 - best / eval.loglik).abs() <= options.eps {
                let var = chol?.inverse();
                check_infinite(&eval.u, &var, &newbeta, options.eps)?;
                return Ok(CoxResult {
                    beta: newbeta,
                    var,
                    loglik0,
                    loglik: eval.loglik,
                    score,
                    iterations: iter,
                    converged: true,
                });
            }
            if !finite || eval.loglik < best {
                halving += 1.0;
                for (nb, b) in newbeta.iter_mut().zip(&beta) {
                    *nb = (*nb + halving * b) / (halving + 1.0);
                }
            } else {
                halving = 0.0;
                best = eval.loglik;
                let step = chol?.solve(&eval.u);
                beta.clone_from(&newbeta);
                for (nb, s) in newbeta.iter_mut().zip(&step) {
                    *nb += s;
                }
            }
        }
        // Out of iterations: report the last accepted β.
        let eval = self.evaluate(&beta, options.ties);
        let var = Cholesky::new(&eval.imat, TOLER_CHOL, "Cox information matrix")?.inverse();
        Ok(CoxResult {
            beta,
            var,
            loglik0,
            loglik: eval.loglik,
            score,
            iterations: options.max_iter,
            converged: false,
        })
    }
}

/// `coxph.fit`'s check for a coefficient drifting to infinity: the next
/// Newton step `|u V|` still exceeds `eps` and `sqrt(eps) |β|`.
fn check_infinite(u: &[f64], var: &Matrix, beta: &[f64], eps: f64) -> Result<(), StatsError> {
    let toler_inf = eps.sqrt();
    for (j, b) in beta.iter().enumerate() {
        let step: f64 = (0..u.len()).map(|i| u[i] * var[i][j]).sum::<f64>().abs();
        if !step.is_finite() || (step > eps && step > toler_inf * b.abs()) {
            return Err(StatsError::Undefined {
                what: "Cox coefficient",
                reason: "the partial likelihood is monotone (coefficient may be infinite)",
            });
        }
    }
    Ok(())
}

/// Validates survival inputs: equal lengths, non-empty, finite, non-negative times.
fn check_surv(time: &[f64], event: &[bool]) -> Result<(), StatsError> {
    if time.len() != event.len() {
        return Err(StatsError::LengthMismatch {
            x_len: time.len(),
            y_len: event.len(),
        });
    }
    checked_times(time).map(|_| ())
}

fn checked_times(times: &[f64]) -> Result<Vec<f64>, StatsError> {
    if times.is_empty() {
        return Err(StatsError::EmptyInput { what: "time" });
    }
    for (index, &value) in times.iter().enumerate() {
        if !value.is_finite() {
            return Err(StatsError::NonFiniteInput {
                what: "time",
                index,
                value,
            });
        }
        if value < 0.0 {
            return Err(StatsError::InvalidInput {
                what: "time",
                reason: format!("negative value {value} at index {index}"),
            });
        }
    }
    Ok(times.to_vec())
}

/// Checks group codes against `n` and returns the number of levels; every
/// level `0..k` must occur.
fn check_groups(group: &[usize], n: usize, what: &'static str) -> Result<usize, StatsError> {
    if group.len() != n {
        return Err(StatsError::LengthMismatch {
            x_len: n,
            y_len: group.len(),
        });
    }
    let k = group.iter().max().map_or(0, |m| m + 1);
    let mut counts = vec![0usize; k];
    for &g in group {
        counts[g] += 1;
    }
    if let Some(level) = counts.iter().position(|&c| c == 0) {
        return Err(StatsError::EmptyGroup { what, level });
    }
    Ok(k)
}

fn check_strata(strata: Option<&[usize]>, n: usize) -> Result<Vec<usize>, StatsError> {
    match strata {
        None => Ok(vec![0; n]),
        Some(s) if s.len() != n => Err(StatsError::LengthMismatch {
            x_len: n,
            y_len: s.len(),
        }),
        Some(s) => Ok(s.to_vec()),
    }
}

/// Indices of each stratum, strata in ascending code order.
fn strata_blocks(strata: &[usize]) -> Vec<Vec<usize>> {
    let mut codes: Vec<usize> = strata.to_vec();
    codes.sort_unstable();
    codes.dedup();
    codes
        .iter()
        .map(|&c| (0..strata.len()).filter(|&i| strata[i] == c).collect())
        .collect()
}

/// R's `aeqSurv`: times within `sqrt(eps)` of each other (absolutely, or
/// relative to the mean absolute distinct time) are mapped to the smallest
/// time of their run.
fn apply_time_fix(time: &[f64], fix: TimeFix) -> Vec<f64> {
    if fix == TimeFix::Exact {
        return time.to_vec();
    }
    let tol = f64::EPSILON.sqrt();
    let mut y = time.to_vec();
    y.sort_by(f64::total_cmp);
    y.dedup();
    let mean_abs = y.iter().map(|v| v.abs()).sum::<f64>() / y.len() as f64;
    let tied: Vec<bool> = y
        .windows(2)
        .map(|w| {
            let dy = w[1] - w[0];
            dy <= tol || dy / mean_abs <= tol
        })
        .collect();
    if !tied.iter().any(|&t| t) {
        return time.to_vec();
    }
    let cuts: Vec<f64> = std::iter::once(y[0])
        .chain(
            y[1..]
                .iter()
                .zip(&tied)
                .filter(|(_, t)| !**t)
                .map(|(v, _)| *v),
        )
        .collect();
    time.iter()
        .map(|&t| {
            let k = cuts.partition_point(|&c| c <= t);
            cuts[k.saturating_sub(1)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Small hand-made data (not real): times and events chosen so that every
    // number below can be checked by hand or with survival 3.5-3.
    const T: [f64; 8] = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0];
    const E: [bool; 8] = [true, true, false, true, false, true, true, false];

    #[test]
    fn km_by_hand() {
        let km = kaplan_meier(&T, &E, &KmOptions::default()).unwrap();
        let s: Vec<f64> = km.rows.iter().map(|r| r.surv).collect();
        let expect = [
            7.0 / 8.0,
            7.0 / 8.0 * 6.0 / 7.0,
            7.0 / 8.0 * 6.0 / 7.0 * 4.0 / 5.0,
            7.0 / 8.0 * 6.0 / 7.0 * 4.0 / 5.0 * 3.0 / 4.0,
            7.0 / 8.0 * 6.0 / 7.0 * 4.0 / 5.0 * 3.0 / 4.0 * 0.5,
            7.0 / 8.0 * 6.0 / 7.0 * 4.0 / 5.0 * 3.0 / 4.0 * 0.5,
        ];
        for (a, b) in s.iter().zip(expect) {
            assert!((a - b).abs() < 1e-15);
        }
        assert_eq!(km.rows[1].n_censor, 1);
        assert_eq!(km.rows[1].n_risk, 7);
        let ev = km.event_rows();
        assert_eq!(ev.len(), 5);
        assert_eq!(ev[3].n_censor, 1); // the censoring at 4 is in the row of 4
        // Greenwood: sum d / (n (n - d)) at the first event time = 1 / (8 * 7).
        assert!((km.rows[0].std_err_log.unwrap() - (1.0_f64 / 56.0).sqrt()).abs() < 1e-15);
        // S(4) = 0.45 < 0.5 and S(3) = 0.6: median 4.
        assert_eq!(km.median.estimate, Some(4.0));
        assert_eq!(km.n_risk_at(4.5), 2);
        assert_eq!(km.n_risk_at(10.0), 0);
    }

    #[test]
    fn km_median_flat_stretch_averages() {
        // S drops to exactly 0.5 at t = 2 and below at t = 5: median (2 + 5) / 2.
        let t = [1.0, 2.0, 3.0, 5.0];
        let e = [true, true, false, true];
        let km = kaplan_meier(&t, &e, &KmOptions::default()).unwrap();
        assert_eq!(km.median.estimate, Some(3.5));
    }

    #[test]
    fn km_all_censored_and_all_dead() {
        let km = kaplan_meier(&[1.0, 2.0], &[false, false], &KmOptions::default()).unwrap();
        assert!(km.rows.iter().all(|r| r.surv == 1.0));
        assert_eq!(km.median.estimate, None);
        let km = kaplan_meier(&[1.0, 2.0], &[true, true], &KmOptions::default()).unwrap();
        let last = km.rows.last().unwrap();
        assert_eq!(last.surv, 0.0);
        assert_eq!(last.std_err_log, None);
        assert_eq!(last.lower, None);
    }

    #[test]
    fn landmarks() {
        let km = kaplan_meier(&T, &E, &KmOptions::default()).unwrap();
        let lm = km.at_times(&[3.5, 0.5], BeyondFollowUp::Error).unwrap();
        assert_eq!(lm[0].time, 0.5);
        assert_eq!(lm[0].surv, 1.0);
        assert_eq!(lm[0].n_risk, 8);
        assert_eq!(lm[1].n_event, 3);
        assert_eq!(lm[1].n_censor, 1);
        assert_eq!(lm[1].n_risk, 4);
        assert!(matches!(
            km.at_times(&[7.0], BeyondFollowUp::Error),
            Err(StatsError::BeyondFollowUp { .. })
        ));
        let lm = km.at_times(&[7.0], BeyondFollowUp::CarryForward).unwrap();
        assert_eq!(lm[0].n_risk, 0);
    }

    #[test]
    fn input_errors() {
        let o = KmOptions::default();
        assert!(matches!(
            kaplan_meier(&[], &[], &o),
            Err(StatsError::EmptyInput { .. })
        ));
        assert!(matches!(
            kaplan_meier(&[1.0], &[true, false], &o),
            Err(StatsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            kaplan_meier(&[-1.0], &[true], &o),
            Err(StatsError::InvalidInput { .. })
        ));
        assert!(matches!(
            kaplan_meier(&[f64::NAN], &[true], &o),
            Err(StatsError::NonFiniteInput { .. })
        ));
        assert!(matches!(
            log_rank(&T, &E, &[0, 2, 0, 2, 0, 2, 0, 2], None, TimeFix::Tolerance),
            Err(StatsError::EmptyGroup { level: 1, .. })
        ));
        assert!(matches!(
            log_rank(
                &T,
                &[false; 8],
                &[0, 1, 0, 1, 0, 1, 0, 1],
                None,
                TimeFix::Tolerance
            ),
            Err(StatsError::NoEvents { .. })
        ));
        assert!(matches!(
            log_rank(&T, &E, &[0; 8], None, TimeFix::Tolerance),
            Err(StatsError::TooFewObservations { .. })
        ));
    }

    #[test]
    fn cox_no_events_in_an_arm() {
        let g = [0, 0, 1, 0, 1, 0, 0, 1];
        // Group 1 has events at 2? No: indices 2 (censored), 4 (censored), 7 (censored).
        assert!(matches!(
            cox_ph(&T, &E, &g, None, &CoxOptions::default()),
            Err(StatsError::NoEvents { .. })
        ));
    }

    #[test]
    fn cox_score_equals_log_rank_with_breslow() {
        let g = [0, 1, 0, 1, 1, 0, 1, 0];
        let lr = log_rank(&T, &E, &g, None, TimeFix::Tolerance).unwrap();
        let opts = CoxOptions {
            ties: Ties::Breslow,
            ..CoxOptions::default()
        };
        let cox = cox_ph(&T, &E, &g, None, &opts).unwrap();
        assert!((cox.score.statistic - lr.test.statistic).abs() < 1e-12);
        assert!(cox.converged);
    }

    #[test]
    fn cox_edge_cases() {
        let g = [0, 1, 0, 1, 1, 0, 1, 0];
        assert!(matches!(
            cox_ph(&T, &[false; 8], &g, None, &CoxOptions::default()),
            Err(StatsError::NoEvents { .. })
        ));
        assert!(matches!(
            cox_ph(&T, &E, &[0; 8], None, &CoxOptions::default()),
            Err(StatsError::TooFewObservations { .. })
        ));
        // Two subjects, the one in group 0 dies first: the partial likelihood
        // keeps increasing as beta -> -inf, so Newton-Raphson never converges.
        let fit = cox_ph(
            &[1.0, 2.0],
            &[true, true],
            &[0, 1],
            None,
            &CoxOptions::default(),
        )
        .unwrap();
        assert!(!fit.converged);
        assert_eq!(fit.iterations, 20);
        assert!(fit.terms[0].coef < -10.0);
        assert!(matches!(
            cox_ph(
                &T,
                &E,
                &g,
                None,
                &CoxOptions {
                    eps: 0.0,
                    ..CoxOptions::default()
                }
            ),
            Err(StatsError::InvalidInput { .. })
        ));
    }

    #[test]
    fn stratified_log_rank_sums_strata() {
        let g = [0, 1, 0, 1, 1, 0, 1, 0];
        let s = [0, 0, 0, 0, 1, 1, 1, 1];
        let all = log_rank(&T, &E, &g, Some(&s), TimeFix::Tolerance).unwrap();
        let mut observed = 0.0;
        let mut expected = 0.0;
        for stratum in 0..2 {
            let idx: Vec<usize> = (0..8).filter(|&i| s[i] == stratum).collect();
            let t: Vec<f64> = idx.iter().map(|&i| T[i]).collect();
            let e: Vec<bool> = idx.iter().map(|&i| E[i]).collect();
            let gg: Vec<usize> = idx.iter().map(|&i| g[i]).collect();
            let one = log_rank(&t, &e, &gg, None, TimeFix::Tolerance).unwrap();
            observed += one.groups[1].observed;
            expected += one.groups[1].expected;
        }
        assert!((all.groups[1].observed - observed).abs() < 1e-12);
        assert!((all.groups[1].expected - expected).abs() < 1e-12);
        assert_eq!(all.n_strata, 2);
    }

    #[test]
    fn time_fix_merges_near_ties() {
        let t = [1.0, 1.0 + 1e-12, 2.0];
        assert_eq!(apply_time_fix(&t, TimeFix::Tolerance), vec![1.0, 1.0, 2.0]);
        assert_eq!(apply_time_fix(&t, TimeFix::Exact), t.to_vec());
    }
}
