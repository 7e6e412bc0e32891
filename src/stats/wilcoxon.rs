//! Wilcoxon rank-sum (Mann-Whitney) and signed-rank tests with Hodges-Lehmann
//! estimates and confidence intervals, reproducing R's
//! `wilcox.test(..., conf.int = TRUE)` (R 4.2, `correct = TRUE`,
//! `tol.root = 1e-4`, `digits.rank = Inf`): the exact null distribution when
//! samples are small and untied, otherwise the normal approximation with tie
//! and continuity corrections, and R's `uniroot`-based interval inversion.

use statrs::distribution::{ContinuousCDF, Normal};

use super::common::{
    Alternative, Ci, TestResult, check_conf_level, check_finite, paired_differences,
};
use super::contingency::ContinuityCorrection;
use super::descriptive::median_sorted;
use super::error::StatsError;
use super::exact::{RankSumDist, SignedRankDist};
use super::rank::rank;
use super::zeroin::uniroot;

/// R's `tol.root` default, the tolerance of `uniroot` for the asymptotic
/// Hodges-Lehmann estimate and interval.
const TOL_ROOT: f64 = 1e-4;

/// Sample size from which R's rule switches to the normal approximation.
const EXACT_BELOW: usize = 50;

/// How the null distribution of the Wilcoxon statistic is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WilcoxonMethod {
    /// R's rule (`exact = NULL`): exact when every sample size involved is
    /// below 50 (rank-sum: both groups; signed-rank: the non-zero differences)
    /// and there are no ties (and, for signed-rank, no zero differences);
    /// otherwise the normal approximation.
    #[default]
    Auto,
    /// Exact distribution; an error (`ExactNotAvailable`) when the data contain
    /// ties or zero differences, where R would fall back with a warning.
    Exact,
    /// Normal approximation with tie correction and continuity correction.
    Normal,
}

/// Wilcoxon rank-sum test of a location shift between `x` and `y`, as R's
/// `wilcox.test(x, y, conf.int = TRUE, conf.level = conf_level)`.
///
/// `statistic` is R's `W = sum(ranks of x) - n1 (n1 + 1) / 2`; `estimate` is
/// the Hodges-Lehmann shift (median of `x[i] - y[j]` in the exact case, the
/// root of the standardised statistic otherwise) with its interval.
///
/// Errors: `EmptyInput` / `NonFiniteInput`, `InvalidConfLevel`, `AllTied`
/// (all values equal, or each group constant), `ExactNotAvailable`,
/// `ExactTooLarge` (exact requested with `n1 * n2 > 40000`).
pub fn wilcoxon_rank_sum(
    x: &[f64],
    y: &[f64],
    method: WilcoxonMethod,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    wilcoxon_rank_sum_with(
        x,
        y,
        method,
        ContinuityCorrection::Yates,
        alternative,
        conf_level,
    )
}

/// [`wilcoxon_rank_sum`] with a choice of continuity correction for the
/// normal approximation (R's `correct =`; `Yates` is R's default `TRUE`, a
/// correction of 0.5 in the p-value and the interval); the exact test ignores it.
pub fn wilcoxon_rank_sum_with(
    x: &[f64],
    y: &[f64],
    method: WilcoxonMethod,
    correction: ContinuityCorrection,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    check_conf_level(conf_level)?;
    check_finite(x, "x")?;
    check_finite(y, "y")?;
    let combined: Vec<f64> = x.iter().chain(y).copied().collect();
    let ranked = rank(&combined);
    let nx = x.len() as f64;
    let rank_sum_x: f64 = ranked.ranks[..x.len()].iter().sum();
    let statistic = rank_sum_x - nx * (nx + 1.0) / 2.0;
    let exact = match method {
        WilcoxonMethod::Auto => x.len() < EXACT_BELOW && y.len() < EXACT_BELOW && !ranked.has_ties,
        WilcoxonMethod::Exact if ranked.has_ties => {
            return Err(StatsError::ExactNotAvailable { reason: "ties" });
        }
        WilcoxonMethod::Exact => true,
        WilcoxonMethod::Normal => false,
    };
    if exact {
        rank_sum_exact(x, y, statistic, alternative, conf_level)
    } else {
        let correct = correction == ContinuityCorrection::Yates;
        rank_sum_normal(
            x,
            y,
            statistic,
            ranked.tie_term,
            correct,
            alternative,
            conf_level,
        )
    }
}

fn rank_sum_exact(
    x: &[f64],
    y: &[f64],
    statistic: f64,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    let dist = RankSumDist::new(x.len(), y.len())?;
    let mn = x.len() * y.len();
    let half = mn as f64 / 2.0;
    let p_value = match alternative {
        Alternative::TwoSided => {
            let p = if statistic > half {
                dist.cdf(statistic - 1.0, false)
            } else {
                dist.cdf(statistic, true)
            };
            (2.0 * p).min(1.0)
        }
        Alternative::Greater => dist.cdf(statistic - 1.0, false),
        Alternative::Less => dist.cdf(statistic, true),
    };
    let mut diffs: Vec<f64> = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| a - b))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let alpha = 1.0 - conf_level;
    let (lower, upper, achieved_alpha) = exact_interval(
        &diffs,
        mn,
        alpha,
        alternative,
        |p| dist.quantile(p),
        |q| dist.cdf(q, true),
    );
    let mut level = conf_level;
    if achieved_alpha - alpha > alpha / 2.0 {
        level = 1.0 - achieved_alpha;
    }
    Ok(TestResult {
        estimate: median_sorted(&diffs),
        se: None,
        df: None,
        statistic,
        p_value,
        ci: Some(Ci {
            lower,
            upper,
            level,
        }),
        method: "Wilcoxon rank sum exact test",
    })
}

/// Interval from the sorted differences (or Walsh averages) and the exact
/// quantile, as in R's exact branches. Returns `(lower, upper, achieved alpha)`.
fn exact_interval(
    diffs: &[f64],
    max: usize,
    alpha: f64,
    alternative: Alternative,
    quantile: impl Fn(f64) -> usize,
    lower_cdf: impl Fn(f64) -> f64,
) -> (f64, f64, f64) {
    // R indexes diffs 1-based: diffs[qu] and diffs[ql + 1].
    let at = |k: usize| diffs[k - 1];
    let q_at = |p: f64| quantile(p).max(1);
    match alternative {
        Alternative::TwoSided => {
            let qu = q_at(alpha / 2.0);
            let ql = max - qu;
            (at(qu), at(ql + 1), 2.0 * lower_cdf(qu as f64 - 1.0))
        }
        Alternative::Greater => {
            let qu = q_at(alpha);
            (at(qu), f64::INFINITY, lower_cdf(qu as f64 - 1.0))
        }
        Alternative::Less => {
            let qu = q_at(alpha);
            let ql = max - qu;
            (f64::NEG_INFINITY, at(ql + 1), lower_cdf(qu as f64 - 1.0))
        }
    }
}

/// R's `qnorm(p)` (lower tail), total on [0, 1].
fn qnorm(p: f64) -> Result<f64, StatsError> {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return Err(StatsError::RootFinding(
            "normal quantile of a non-probability",
        ));
    }
    if p == 0.0 {
        return Ok(f64::NEG_INFINITY);
    }
    if p == 1.0 {
        return Ok(f64::INFINITY);
    }
    Ok(std_normal().inverse_cdf(p))
}

/// R's `qnorm(p, lower.tail = FALSE)`, computed by symmetry as R does.
fn qnorm_upper(p: f64) -> Result<f64, StatsError> {
    Ok(-qnorm(p)?)
}

fn std_normal() -> Normal {
    Normal::standard()
}

/// Two-sided, less or greater p-value of a standard normal deviate, as R's
/// `2 * min(pnorm(z), pnorm(z, lower.tail = FALSE))` etc.
fn normal_p_value(z: f64, alternative: Alternative) -> f64 {
    let n = std_normal();
    match alternative {
        Alternative::Less => n.cdf(z),
        Alternative::Greater => n.sf(z),
        Alternative::TwoSided => 2.0 * n.cdf(z).min(n.sf(z)),
    }
}

/// R's continuity correction for the given alternative and centred statistic.
/// Zero when `correct` is false.
fn continuity(z: f64, alternative: Alternative, correct: bool) -> f64 {
    if !correct {
        return 0.0;
    }
    match alternative {
        Alternative::TwoSided => r_sign(z) * 0.5,
        Alternative::Greater => 0.5,
        Alternative::Less => -0.5,
    }
}

/// Smallest and largest of a non-empty finite sample.
fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &a| {
            (lo.min(a), hi.max(a))
        })
}

/// R's `sign()`: -1, 0 or 1.
fn r_sign(z: f64) -> f64 {
    if z > 0.0 {
        1.0
    } else if z < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn rank_sum_normal(
    x: &[f64],
    y: &[f64],
    statistic: f64,
    tie_term: f64,
    correct: bool,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    let sigma =
        ((nx * ny / 12.0) * ((nx + ny + 1.0) - tie_term / ((nx + ny) * (nx + ny - 1.0)))).sqrt();
    if sigma.is_nan() || sigma == 0.0 {
        return Err(StatsError::AllTied { what: "x and y" });
    }
    let z0 = statistic - nx * ny / 2.0;
    let z = (z0 - continuity(z0, alternative, correct)) / sigma;
    let p_value = normal_p_value(z, alternative);

    // Confidence interval: invert the standardised statistic in the shift d.
    let alpha = 1.0 - conf_level;
    let (min_x, max_x) = min_max(x);
    let (min_y, max_y) = min_max(y);
    let mumin = min_x - max_y;
    let mumax = max_x - min_y;
    let w = |d: f64, correct: bool| -> Result<f64, StatsError> {
        let shifted: Vec<f64> = x.iter().map(|v| v - d).chain(y.iter().copied()).collect();
        let r = rank(&shifted);
        let sum_x: f64 = r.ranks[..x.len()].iter().sum();
        let dz = sum_x - nx * (nx + 1.0) / 2.0 - nx * ny / 2.0;
        let corr = if correct {
            continuity(dz, alternative, true)
        } else {
            0.0
        };
        let sigma_ci = ((nx * ny / 12.0)
            * ((nx + ny + 1.0) - r.tie_term / ((nx + ny) * (nx + ny - 1.0))))
            .sqrt();
        if sigma_ci == 0.0 {
            return Err(StatsError::AllTied { what: "x and y" });
        }
        Ok((dz - corr) / sigma_ci)
    };
    let w_min = w(mumin, correct)?;
    let w_max = w(mumax, correct)?;
    let root = |zq: f64| -> Result<f64, StatsError> {
        let f_lower = w_min - zq;
        if f_lower <= 0.0 {
            return Ok(mumin);
        }
        let f_upper = w_max - zq;
        if f_upper >= 0.0 {
            return Ok(mumax);
        }
        uniroot(
            |d| Ok(w(d, correct)? - zq),
            mumin,
            mumax,
            f_lower,
            f_upper,
            TOL_ROOT,
        )
    };
    let (lower, upper) = match alternative {
        Alternative::TwoSided => (root(qnorm_upper(alpha / 2.0)?)?, root(qnorm(alpha / 2.0)?)?),
        Alternative::Greater => (root(qnorm_upper(alpha)?)?, f64::INFINITY),
        Alternative::Less => (f64::NEG_INFINITY, root(qnorm(alpha)?)?),
    };
    let f_lo = w(mumin, false)?;
    let f_hi = w(mumax, false)?;
    let estimate = uniroot(|d| w(d, false), mumin, mumax, f_lo, f_hi, TOL_ROOT)?;
    Ok(TestResult {
        estimate,
        se: None,
        df: None,
        statistic,
        p_value,
        ci: Some(Ci {
            lower,
            upper,
            level: conf_level,
        }),
        method: if correct {
            "Wilcoxon rank sum test with continuity correction"
        } else {
            "Wilcoxon rank sum test"
        },
    })
}

/// Wilcoxon signed-rank test of `H0: location of x = mu`, as R's
/// `wilcox.test(x, mu = mu, conf.int = TRUE, conf.level = conf_level)`.
///
/// Zero differences `x - mu` are dropped (R's convention). `statistic` is R's
/// `V` (sum of the ranks of the positive differences); `estimate` is the
/// Hodges-Lehmann pseudomedian with its interval. Where R has to lower the
/// confidence level, `ci.level` reports the level achieved.
///
/// Errors: `EmptyInput` / `NonFiniteInput`, `InvalidConfLevel`, `AllTied`
/// (every value equals `mu`, or all non-zero values are equal, where R's
/// interval is undefined), `ExactNotAvailable`, `ExactTooLarge` (exact
/// requested with more than 1000 non-zero differences).
pub fn wilcoxon_signed_rank(
    x: &[f64],
    mu: f64,
    method: WilcoxonMethod,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    wilcoxon_signed_rank_with(
        x,
        mu,
        method,
        ContinuityCorrection::Yates,
        alternative,
        conf_level,
    )
}

/// [`wilcoxon_signed_rank`] with a choice of continuity correction for the
/// normal approximation (R's `correct =`, as [`wilcoxon_rank_sum_with`]).
pub fn wilcoxon_signed_rank_with(
    x: &[f64],
    mu: f64,
    method: WilcoxonMethod,
    correction: ContinuityCorrection,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    check_conf_level(conf_level)?;
    check_finite(x, "x")?;
    check_finite(&[mu], "mu")?;
    signed_rank(x, mu, method, correction, alternative, conf_level)
}

/// Wilcoxon signed-rank test on the paired differences `x[i] - y[i]`, as R's
/// `wilcox.test(x - y, conf.int = TRUE)` (equivalently `paired = TRUE`).
///
/// Errors as [`wilcoxon_signed_rank`], plus `LengthMismatch`.
pub fn wilcoxon_paired(
    x: &[f64],
    y: &[f64],
    method: WilcoxonMethod,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    check_conf_level(conf_level)?;
    let d = paired_differences(x, y)?;
    signed_rank(
        &d,
        0.0,
        method,
        ContinuityCorrection::Yates,
        alternative,
        conf_level,
    )
}

fn signed_rank(
    x: &[f64],
    mu: f64,
    method: WilcoxonMethod,
    correction: ContinuityCorrection,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    let shifted: Vec<f64> = x.iter().map(|v| v - mu).collect();
    let zeroes = shifted.contains(&0.0);
    let nonzero: Vec<f64> = shifted.into_iter().filter(|v| *v != 0.0).collect();
    if nonzero.is_empty() {
        return Err(StatsError::AllTied {
            what: "x (all differences are zero)",
        });
    }
    let n = nonzero.len();
    let abs: Vec<f64> = nonzero.iter().map(|v| v.abs()).collect();
    let ranked = rank(&abs);
    let statistic: f64 = nonzero
        .iter()
        .zip(&ranked.ranks)
        .filter(|(v, _)| **v > 0.0)
        .map(|(_, r)| r)
        .sum();
    let exact = match method {
        WilcoxonMethod::Auto => n < EXACT_BELOW && !ranked.has_ties && !zeroes,
        WilcoxonMethod::Exact if ranked.has_ties => {
            return Err(StatsError::ExactNotAvailable { reason: "ties" });
        }
        WilcoxonMethod::Exact if zeroes => {
            return Err(StatsError::ExactNotAvailable { reason: "zeros" });
        }
        WilcoxonMethod::Exact => true,
        WilcoxonMethod::Normal => false,
    };
    // R shifts back: x <- x + mu (after dropping zeros) before the interval.
    let back: Vec<f64> = nonzero.iter().map(|v| v + mu).collect();
    if exact {
        signed_rank_exact(&back, statistic, alternative, conf_level)
    } else {
        let correct = correction == ContinuityCorrection::Yates;
        signed_rank_normal(
            &back,
            statistic,
            ranked.tie_term,
            correct,
            alternative,
            conf_level,
        )
    }
}

fn signed_rank_exact(
    x: &[f64],
    statistic: f64,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    let n = x.len();
    let dist = SignedRankDist::new(n)?;
    let nf = n as f64;
    let p_value = match alternative {
        Alternative::TwoSided => {
            let p = if statistic > nf * (nf + 1.0) / 4.0 {
                dist.cdf(statistic - 1.0, false)
            } else {
                dist.cdf(statistic, true)
            };
            (2.0 * p).min(1.0)
        }
        Alternative::Greater => dist.cdf(statistic - 1.0, false),
        Alternative::Less => dist.cdf(statistic, true),
    };
    let mut walsh = Vec::with_capacity(n * (n + 1) / 2);
    for i in 0..n {
        for j in i..n {
            walsh.push(x[i] + x[j]);
        }
    }
    walsh.sort_by(f64::total_cmp);
    for v in &mut walsh {
        *v /= 2.0;
    }
    let alpha = 1.0 - conf_level;
    let (lower, upper, achieved_alpha) = exact_interval(
        &walsh,
        n * (n + 1) / 2,
        alpha,
        alternative,
        |p| dist.quantile(p),
        |q| dist.cdf(q, true),
    );
    let mut level = conf_level;
    if achieved_alpha - alpha > alpha / 2.0 {
        level = 1.0 - signif2(achieved_alpha);
    }
    Ok(TestResult {
        estimate: median_sorted(&walsh),
        se: None,
        df: None,
        statistic,
        p_value,
        ci: Some(Ci {
            lower,
            upper,
            level,
        }),
        method: "Wilcoxon signed rank exact test",
    })
}

/// R's `signif(x, 2)` for `x` in (0, 1].
fn signif2(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let e10 = 1 - x.abs().log10().floor() as i32;
    if e10 > 0 {
        let p = 10f64.powi(e10);
        (x * p).round_ties_even() / p
    } else {
        let p = 10f64.powi(-e10);
        (x / p).round_ties_even() * p
    }
}

fn signed_rank_normal(
    x: &[f64],
    statistic: f64,
    tie_term: f64,
    correct: bool,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    let nf = x.len() as f64;
    let sigma = (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0).sqrt();
    let z0 = statistic - nf * (nf + 1.0) / 4.0;
    let z = (z0 - continuity(z0, alternative, correct)) / sigma;
    let p_value = normal_p_value(z, alternative);

    let (mumin, mumax) = min_max(x);
    if mumin == mumax {
        // R: W(mumin) is 0/0 and the interval is NaN.
        return Err(StatsError::AllTied {
            what: "x (all non-zero values equal)",
        });
    }
    let w = |d: f64, correct: bool| -> Result<f64, StatsError> {
        let xd: Vec<f64> = x.iter().map(|v| v - d).filter(|v| *v != 0.0).collect();
        let nx = xd.len() as f64;
        let abs: Vec<f64> = xd.iter().map(|v| v.abs()).collect();
        let r = rank(&abs);
        let pos: f64 = xd
            .iter()
            .zip(&r.ranks)
            .filter(|(v, _)| **v > 0.0)
            .map(|(_, r)| r)
            .sum();
        let zd = pos - nx * (nx + 1.0) / 4.0;
        let sigma_ci = (nx * (nx + 1.0) * (2.0 * nx + 1.0) / 24.0 - r.tie_term / 48.0).sqrt();
        if sigma_ci == 0.0 {
            return Err(StatsError::AllTied { what: "x" });
        }
        let corr = if correct {
            continuity(zd, alternative, true)
        } else {
            0.0
        };
        Ok((zd - corr) / sigma_ci)
    };
    let w_min = w(mumin, correct)?;
    let w_max = w(mumax, correct)?;
    let root = |zq: f64| {
        uniroot(
            |d| Ok(w(d, correct)? - zq),
            mumin,
            mumax,
            w_min - zq,
            w_max - zq,
            TOL_ROOT,
        )
    };
    let median_x = || {
        let mut s = x.to_vec();
        s.sort_by(f64::total_cmp);
        median_sorted(&s)
    };
    let mut alpha = 1.0 - conf_level;
    // R widens alpha until the end points bracket the requested quantiles.
    let widen = |alpha: &mut f64,
                 bad: &dyn Fn(f64) -> Result<bool, StatsError>|
     -> Result<(), StatsError> {
        while bad(*alpha)? {
            *alpha *= 2.0;
        }
        Ok(())
    };
    let (lower, upper) = match alternative {
        Alternative::TwoSided => {
            widen(&mut alpha, &|a| {
                Ok(w_min - qnorm_upper(a / 2.0)? < 0.0 || w_max - qnorm(a / 2.0)? > 0.0)
            })?;
            if alpha < 1.0 {
                (root(qnorm_upper(alpha / 2.0)?)?, root(qnorm(alpha / 2.0)?)?)
            } else {
                let m = median_x();
                (m, m)
            }
        }
        Alternative::Greater => {
            widen(&mut alpha, &|a| Ok(w_min - qnorm_upper(a)? < 0.0))?;
            let l = if alpha < 1.0 {
                root(qnorm_upper(alpha)?)?
            } else {
                median_x()
            };
            (l, f64::INFINITY)
        }
        Alternative::Less => {
            // R tests qnorm(alpha / 2) here but inverts at qnorm(alpha).
            widen(&mut alpha, &|a| Ok(w_max - qnorm(a / 2.0)? > 0.0))?;
            let u = if alpha < 1.0 {
                root(qnorm(alpha)?)?
            } else {
                median_x()
            };
            (f64::NEG_INFINITY, u)
        }
    };
    let level = if alpha >= 1.0 || 1.0 - conf_level < alpha * 0.75 {
        1.0 - alpha.min(1.0)
    } else {
        conf_level
    };
    let f_lo = w(mumin, false)?;
    let f_hi = w(mumax, false)?;
    let estimate = uniroot(|d| w(d, false), mumin, mumax, f_lo, f_hi, TOL_ROOT)?;
    Ok(TestResult {
        estimate,
        se: None,
        df: None,
        statistic,
        p_value,
        ci: Some(Ci {
            lower,
            upper,
            level,
        }),
        method: if correct {
            "Wilcoxon signed rank test with continuity correction"
        } else {
            "Wilcoxon signed rank test"
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use Alternative::TwoSided;
    use WilcoxonMethod::{Auto, Exact, Normal};

    #[test]
    fn rank_sum_exact_matches_r() {
        // R: wilcox.test(c(1.1, 2.2, 3.3, 4.4), c(0.5, 1.7, 2.9), conf.int = TRUE)
        let r = wilcoxon_rank_sum(
            &[1.1, 2.2, 3.3, 4.4],
            &[0.5, 1.7, 2.9],
            Auto,
            TwoSided,
            0.95,
        )
        .unwrap();
        assert_eq!(r.statistic, 9.0);
        assert!((r.p_value - 0.4).abs() < 1e-15);
        assert!((r.estimate - 1.05).abs() < 1e-12);
        let ci = r.ci.unwrap();
        assert!((ci.lower + 1.8).abs() < 1e-12 && (ci.upper - 3.9).abs() < 1e-12);
        assert_eq!(ci.level, 0.95);
        assert_eq!(r.method, "Wilcoxon rank sum exact test");
        assert_eq!(r.se, None);
        assert_eq!(r.df, None);
    }

    #[test]
    fn signed_rank_single_value_lowers_level() {
        // R: wilcox.test(3, conf.int = TRUE): V = 1, p = 1, CI (3, 3), level 0
        let r = wilcoxon_signed_rank(&[3.0], 0.0, Auto, TwoSided, 0.95).unwrap();
        assert_eq!(r.statistic, 1.0);
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.estimate, 3.0);
        assert_eq!(
            r.ci,
            Some(Ci {
                lower: 3.0,
                upper: 3.0,
                level: 0.0
            })
        );
    }

    #[test]
    fn empty_inputs() {
        assert_eq!(
            wilcoxon_rank_sum(&[], &[1.0], Auto, TwoSided, 0.95),
            Err(StatsError::EmptyInput { what: "x" })
        );
        assert_eq!(
            wilcoxon_rank_sum(&[1.0], &[], Auto, TwoSided, 0.95),
            Err(StatsError::EmptyInput { what: "y" })
        );
        assert_eq!(
            wilcoxon_signed_rank(&[], 0.0, Auto, TwoSided, 0.95),
            Err(StatsError::EmptyInput { what: "x" })
        );
    }

    #[test]
    fn all_tied() {
        assert_eq!(
            wilcoxon_rank_sum(&[2.0, 2.0], &[2.0, 2.0, 2.0], Auto, TwoSided, 0.95),
            Err(StatsError::AllTied { what: "x and y" })
        );
        // Each group constant: R fails inside its interval search.
        assert_eq!(
            wilcoxon_rank_sum(&[1.0, 1.0, 1.0], &[2.0, 2.0], Normal, TwoSided, 0.95),
            Err(StatsError::AllTied { what: "x and y" })
        );
        assert_eq!(
            wilcoxon_signed_rank(&[0.0, 0.0], 0.0, Auto, TwoSided, 0.95),
            Err(StatsError::AllTied {
                what: "x (all differences are zero)"
            })
        );
        assert_eq!(
            wilcoxon_paired(&[1.5, 2.5, 3.5], &[1.0, 2.0, 3.0], Auto, TwoSided, 0.95),
            Err(StatsError::AllTied {
                what: "x (all non-zero values equal)"
            })
        );
    }

    #[test]
    fn exact_refused_with_ties_or_zeros() {
        assert_eq!(
            wilcoxon_rank_sum(&[1.0, 2.0], &[2.0, 3.0], Exact, TwoSided, 0.95),
            Err(StatsError::ExactNotAvailable { reason: "ties" })
        );
        assert_eq!(
            wilcoxon_signed_rank(&[1.0, -2.0, 0.0], 0.0, Exact, TwoSided, 0.95),
            Err(StatsError::ExactNotAvailable { reason: "zeros" })
        );
        assert_eq!(
            wilcoxon_signed_rank(&[1.0, -1.0, 3.0], 0.0, Exact, TwoSided, 0.95),
            Err(StatsError::ExactNotAvailable { reason: "ties" })
        );
        // Auto falls back to the normal approximation, as R does.
        let r = wilcoxon_rank_sum(&[1.0, 2.0, 4.0], &[2.0, 3.0], Auto, TwoSided, 0.95).unwrap();
        assert_eq!(
            r.method,
            "Wilcoxon rank sum test with continuity correction"
        );
    }

    #[test]
    fn exact_too_large() {
        let x: Vec<f64> = (0..300).map(f64::from).collect();
        let y: Vec<f64> = (0..300).map(|v| f64::from(v) + 0.5).collect();
        assert!(matches!(
            wilcoxon_rank_sum(&x, &y, Exact, TwoSided, 0.95),
            Err(StatsError::ExactTooLarge { .. })
        ));
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(
            wilcoxon_rank_sum(&[1.0], &[2.0], Auto, TwoSided, 0.0),
            Err(StatsError::InvalidConfLevel(0.0))
        );
        assert!(matches!(
            wilcoxon_signed_rank(&[1.0, 2.0], f64::NAN, Auto, TwoSided, 0.95),
            Err(StatsError::NonFiniteInput { what: "mu", .. })
        ));
        assert!(matches!(
            wilcoxon_rank_sum(&[1.0, f64::INFINITY], &[2.0], Auto, TwoSided, 0.95),
            Err(StatsError::NonFiniteInput {
                what: "x",
                index: 1,
                ..
            })
        ));
        assert_eq!(
            wilcoxon_paired(&[1.0, 2.0], &[1.0], Auto, TwoSided, 0.95),
            Err(StatsError::LengthMismatch { x_len: 2, y_len: 1 })
        );
    }

    #[test]
    fn signif_like_r() {
        assert_eq!(signif2(0.125), 0.12);
        assert_eq!(signif2(0.0625), 0.062);
        assert_eq!(signif2(1.0), 1.0);
    }
}
