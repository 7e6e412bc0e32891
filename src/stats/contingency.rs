//! Responder analyses and 2×2 tables, as base R computes them: a proportion
//! with its Wilson (`prop.test(correct = FALSE)`) or Clopper-Pearson
//! (`binom.test`) interval, the exact binomial test, the risk difference with
//! Newcombe's hybrid score interval, the odds ratio with a Wald interval,
//! Fisher's exact test with the conditional maximum-likelihood odds ratio
//! (`fisher.test`), Pearson's chi-square test with or without Yates'
//! correction (`chisq.test`), and the Cochran-Mantel-Haenszel test with the
//! Mantel-Haenszel common odds ratio (`mantelhaen.test`).
//!
//! A [`Table2x2`] has groups in rows and outcome in columns:
//! `a` = group 1 with the outcome, `b` = group 1 without, `c` = group 2 with,
//! `d` = group 2 without — R's `matrix(c(a, c, b, d), 2)`.

use super::common::{Alternative, Ci, TestResult, check_conf_level};
use super::discrete::{
    chisq_sf, dbinom, ldhyper, norm_sf, norm_two_sided, pbinom_lower, pbinom_upper, qbeta, qnorm,
};
use super::error::StatsError;
use super::zeroin::uniroot;

/// A chi-square test result: statistic, degrees of freedom, upper-tail p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquareTest {
    /// The chi-square statistic.
    pub statistic: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// `P(χ²_df > statistic)`.
    pub p_value: f64,
}

/// Counts of a 2×2 table: rows are groups, columns are outcome present / absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table2x2 {
    /// Group 1, outcome present (R's `x[1, 1]`).
    pub a: u64,
    /// Group 1, outcome absent (`x[1, 2]`).
    pub b: u64,
    /// Group 2, outcome present (`x[2, 1]`).
    pub c: u64,
    /// Group 2, outcome absent (`x[2, 2]`).
    pub d: u64,
}

impl Table2x2 {
    /// Table from its four cells, row by row.
    pub fn new(a: u64, b: u64, c: u64, d: u64) -> Self {
        Self { a, b, c, d }
    }

    /// Table from responders and totals per group: `x1` of `n1`, `x2` of `n2`.
    pub fn from_responders(x1: u64, n1: u64, x2: u64, n2: u64) -> Result<Self, StatsError> {
        check_count(x1, n1, "group 1")?;
        check_count(x2, n2, "group 2")?;
        Ok(Self::new(x1, n1 - x1, x2, n2 - x2))
    }

    fn total(&self) -> u64 {
        self.a + self.b + self.c + self.d
    }

    fn cells(&self) -> [f64; 4] {
        [self.a as f64, self.b as f64, self.c as f64, self.d as f64]
    }
}

/// Interval for a single proportion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProportionCi {
    /// Wilson score interval without continuity correction, as
    /// `prop.test(x, n, correct = FALSE)$conf.int`.
    #[default]
    Wilson,
    /// Clopper-Pearson exact interval, as `binom.test(x, n)$conf.int`.
    ClopperPearson,
}

/// A proportion `x / n` with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proportion {
    /// Responders.
    pub x: u64,
    /// Total.
    pub n: u64,
    /// `x / n`.
    pub estimate: f64,
    /// Two-sided interval.
    pub ci: Ci,
}

/// Proportion of responders with a two-sided interval.
///
/// Errors: `EmptyInput` when `n = 0`, `InvalidInput` when `x > n`, `InvalidConfLevel`.
pub fn proportion(
    x: u64,
    n: u64,
    method: ProportionCi,
    conf_level: f64,
) -> Result<Proportion, StatsError> {
    check_conf_level(conf_level)?;
    check_count(x, n, "x")?;
    let (lower, upper) = match method {
        ProportionCi::Wilson => wilson(x, n, qnorm((1.0 + conf_level) / 2.0)),
        ProportionCi::ClopperPearson => {
            let alpha = (1.0 - conf_level) / 2.0;
            (cp_lower(x, n, alpha), cp_upper(x, n, alpha))
        }
    };
    Ok(Proportion {
        x,
        n,
        estimate: x as f64 / n as f64,
        ci: Ci {
            lower,
            upper,
            level: conf_level,
        },
    })
}

/// Wilson bounds as `prop.test` computes them with `YATES = 0`.
fn wilson(x: u64, n: u64, z: f64) -> (f64, f64) {
    let nf = n as f64;
    let est = x as f64 / nf;
    let z22n = z * z / (2.0 * nf);
    let half = |p: f64| z * (p * (1.0 - p) / nf + z22n / (2.0 * nf)).sqrt();
    let upper = if est >= 1.0 {
        1.0
    } else {
        (est + z22n + half(est)) / (1.0 + 2.0 * z22n)
    };
    let lower = if est <= 0.0 {
        0.0
    } else {
        (est + z22n - half(est)) / (1.0 + 2.0 * z22n)
    };
    (lower.max(0.0), upper.min(1.0))
}

fn cp_lower(x: u64, n: u64, alpha: f64) -> f64 {
    if x == 0 {
        0.0
    } else {
        qbeta(alpha, x as f64, (n - x + 1) as f64)
    }
}

fn cp_upper(x: u64, n: u64, alpha: f64) -> f64 {
    if x == n {
        1.0
    } else {
        qbeta(1.0 - alpha, (x + 1) as f64, (n - x) as f64)
    }
}

/// Exact binomial test of `H0: π = p`, as `binom.test(x, n, p, alternative,
/// conf.level)`: estimate `x / n`, statistic `x`, Clopper-Pearson interval.
/// The two-sided p-value sums the probabilities of all outcomes no more
/// likely than `x` (with R's relative tolerance `1 + 1e-7`).
///
/// Errors: `EmptyInput` (`n = 0`), `InvalidInput` (`x > n`),
/// `InvalidProbability` (`p` outside [0, 1]), `InvalidConfLevel`.
pub fn binom_test(
    x: u64,
    n: u64,
    p: f64,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    check_conf_level(conf_level)?;
    check_count(x, n, "x")?;
    if !(0.0..=1.0).contains(&p) {
        return Err(StatsError::InvalidProbability {
            what: "p",
            index: 0,
            value: p,
        });
    }
    let xi = x as i64;
    let p_value = match alternative {
        Alternative::Less => pbinom_lower(xi, n, p),
        Alternative::Greater => pbinom_upper(xi - 1, n, p),
        Alternative::TwoSided => {
            if p == 0.0 {
                f64::from(u8::from(x == 0))
            } else if p == 1.0 {
                f64::from(u8::from(x == n))
            } else {
                let rel_err = 1.0 + 1e-7;
                let d = dbinom(x, n, p);
                let m = n as f64 * p;
                let xf = x as f64;
                if xf == m {
                    1.0
                } else if xf < m {
                    let from = m.ceil() as u64;
                    let y = (from..=n)
                        .filter(|&i| dbinom(i, n, p) <= d * rel_err)
                        .count() as i64;
                    pbinom_lower(xi, n, p) + pbinom_upper(n as i64 - y, n, p)
                } else {
                    let to = m.floor() as u64;
                    let y = (0..=to).filter(|&i| dbinom(i, n, p) <= d * rel_err).count() as i64;
                    pbinom_lower(y - 1, n, p) + pbinom_upper(xi - 1, n, p)
                }
            }
        }
    }
    .min(1.0);
    let (lower, upper) = match alternative {
        Alternative::Less => (0.0, cp_upper(x, n, 1.0 - conf_level)),
        Alternative::Greater => (cp_lower(x, n, 1.0 - conf_level), 1.0),
        Alternative::TwoSided => {
            let alpha = (1.0 - conf_level) / 2.0;
            (cp_lower(x, n, alpha), cp_upper(x, n, alpha))
        }
    };
    Ok(TestResult {
        estimate: x as f64 / n as f64,
        se: None,
        df: None,
        statistic: x as f64,
        p_value,
        ci: Some(Ci {
            lower,
            upper,
            level: conf_level,
        }),
        method: "Exact binomial test",
    })
}

/// Difference of two proportions with Newcombe's hybrid score interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskDifference {
    /// `x1 / n1`.
    pub p1: f64,
    /// `x2 / n2`.
    pub p2: f64,
    /// `p1 - p2`.
    pub estimate: f64,
    /// Newcombe (1998) method 10 interval.
    pub ci: Ci,
}

/// Risk difference `x1/n1 - x2/n2` with the hybrid score interval of
/// Newcombe (1998, method 10, no continuity correction): with Wilson limits
/// `(l1, u1)`, `(l2, u2)` of each proportion,
/// `[d - sqrt((p1 - l1)² + (u2 - p2)²), d + sqrt((u1 - p1)² + (p2 - l2)²)]`.
///
/// Errors: `EmptyInput`, `InvalidInput`, `InvalidConfLevel`.
pub fn risk_difference(
    x1: u64,
    n1: u64,
    x2: u64,
    n2: u64,
    conf_level: f64,
) -> Result<RiskDifference, StatsError> {
    check_conf_level(conf_level)?;
    check_count(x1, n1, "x1")?;
    check_count(x2, n2, "x2")?;
    let z = qnorm((1.0 + conf_level) / 2.0);
    let (l1, u1) = wilson(x1, n1, z);
    let (l2, u2) = wilson(x2, n2, z);
    let p1 = x1 as f64 / n1 as f64;
    let p2 = x2 as f64 / n2 as f64;
    let d = p1 - p2;
    Ok(RiskDifference {
        p1,
        p2,
        estimate: d,
        ci: Ci {
            lower: d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
            upper: d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
            level: conf_level,
        },
    })
}

/// What [`odds_ratio`] does with a table that has a zero cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroCells {
    /// Return `StatsError::Undefined` (the log odds ratio is infinite).
    #[default]
    Error,
    /// Add 0.5 to every cell when any cell is zero (Haldane-Anscombe).
    AddHalf,
}

/// Odds ratio with a Wald interval on the log scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OddsRatio {
    /// `(a d) / (b c)` (after any zero-cell correction).
    pub estimate: f64,
    /// `log` of the estimate.
    pub log_or: f64,
    /// `sqrt(1/a + 1/b + 1/c + 1/d)`.
    pub se_log: f64,
    /// Wald `z = log_or / se_log`.
    pub z: f64,
    /// Two-sided p-value of `z`.
    pub p_value: f64,
    /// `exp(log_or ± z_{1-α/2} se_log)`.
    pub ci: Ci,
    /// Whether 0.5 was added to every cell.
    pub corrected: bool,
}

/// Odds ratio of group 1 versus group 2 with a Wald interval on the log
/// scale (the textbook formula; R's reference is coded from it in the oracle).
///
/// Errors: `Undefined` for a zero cell under [`ZeroCells::Error`],
/// `EmptyInput` for an empty table, `InvalidConfLevel`.
pub fn odds_ratio(
    table: &Table2x2,
    conf_level: f64,
    zero_cells: ZeroCells,
) -> Result<OddsRatio, StatsError> {
    check_conf_level(conf_level)?;
    if table.total() == 0 {
        return Err(StatsError::EmptyInput { what: "table" });
    }
    let mut cells = table.cells();
    let has_zero = cells.contains(&0.0);
    if has_zero {
        match zero_cells {
            ZeroCells::Error => {
                return Err(StatsError::Undefined {
                    what: "odds ratio",
                    reason: "the table has a zero cell",
                });
            }
            ZeroCells::AddHalf => cells.iter_mut().for_each(|c| *c += 0.5),
        }
    }
    let [a, b, c, d] = cells;
    let log_or = (a * d / (b * c)).ln();
    let se_log = (1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d).sqrt();
    let z = qnorm((1.0 + conf_level) / 2.0);
    let zstat = log_or / se_log;
    Ok(OddsRatio {
        estimate: log_or.exp(),
        log_or,
        se_log,
        z: zstat,
        p_value: norm_two_sided(zstat),
        ci: Ci {
            lower: (log_or - z * se_log).exp(),
            upper: (log_or + z * se_log).exp(),
            level: conf_level,
        },
        corrected: has_zero,
    })
}

/// Result of Fisher's exact test on a 2×2 table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FisherExact {
    /// p-value for the chosen alternative.
    pub p_value: f64,
    /// Conditional maximum-likelihood odds ratio (0 or `+inf` at the edge of the support).
    pub estimate: f64,
    /// Conditional interval for the odds ratio (bounds may be 0 or `+inf`).
    pub ci: Ci,
}

/// `uniroot`'s default tolerance, `.Machine$double.eps^0.25`.
const UNIROOT_TOL: f64 = 1.220_703_125e-4;

/// Fisher's exact test of independence in a 2×2 table, as `fisher.test(x,
/// alternative, conf.level)`: p-value from the hypergeometric distribution of
/// `a` given the margins (two-sided: sum of the probabilities no larger than
/// that of the observed table, relative tolerance `1 + 1e-7`), conditional
/// MLE of the odds ratio and its interval by inverting the noncentral
/// hypergeometric tails, both found with R's `uniroot` (tolerance
/// `1.22e-4`), step by step as R does.
///
/// Errors: `EmptyInput` (empty table), `InvalidConfLevel`, `RootFinding`.
pub fn fisher_exact(
    table: &Table2x2,
    alternative: Alternative,
    conf_level: f64,
) -> Result<FisherExact, StatsError> {
    check_conf_level(conf_level)?;
    if table.total() == 0 {
        return Err(StatsError::EmptyInput { what: "table" });
    }
    let nc = NoncentralHyper::new(table);
    let x = table.a as f64;
    let p_value = match alternative {
        Alternative::Less => nc.p(x, 1.0, Tail::Lower),
        Alternative::Greater => nc.p(x, 1.0, Tail::Upper),
        Alternative::TwoSided => {
            let rel_err = 1.0 + 1e-7;
            let d = nc.density(1.0);
            let dx = d[(x - nc.lo) as usize];
            d.iter().filter(|&&v| v <= dx * rel_err).sum()
        }
    };
    let estimate = nc.mle(x)?;
    let (lower, upper) = match alternative {
        Alternative::Less => (0.0, nc.ncp_upper(x, 1.0 - conf_level)?),
        Alternative::Greater => (nc.ncp_lower(x, 1.0 - conf_level)?, f64::INFINITY),
        Alternative::TwoSided => {
            let alpha = (1.0 - conf_level) / 2.0;
            (nc.ncp_lower(x, alpha)?, nc.ncp_upper(x, alpha)?)
        }
    };
    Ok(FisherExact {
        p_value,
        estimate,
        ci: Ci {
            lower,
            upper,
            level: conf_level,
        },
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    Lower,
    Upper,
}

/// The noncentral hypergeometric distribution of `a` given the margins
/// (the closures `dnhyper`, `mnhyper`, `pnhyper` inside `fisher.test`).
struct NoncentralHyper {
    lo: f64,
    hi: f64,
    support: Vec<f64>,
    logdc: Vec<f64>,
}

impl NoncentralHyper {
    fn new(t: &Table2x2) -> Self {
        let m = (t.a + t.c) as f64;
        let n = (t.b + t.d) as f64;
        let k = (t.a + t.b) as f64;
        let lo = (k - n).max(0.0);
        let hi = k.min(m);
        let support: Vec<f64> = (0..=((hi - lo) as usize)).map(|i| lo + i as f64).collect();
        let logdc = support.iter().map(|&s| ldhyper(s, m, n, k)).collect();
        Self {
            lo,
            hi,
            support,
            logdc,
        }
    }

    fn density(&self, ncp: f64) -> Vec<f64> {
        let l = ncp.ln();
        let d: Vec<f64> = self
            .logdc
            .iter()
            .zip(&self.support)
            .map(|(lc, s)| lc + l * s)
            .collect();
        let max = d.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = d.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.into_iter().map(|v| v / sum).collect()
    }

    fn mean(&self, ncp: f64) -> f64 {
        if ncp == 0.0 {
            return self.lo;
        }
        if ncp == f64::INFINITY {
            return self.hi;
        }
        self.support
            .iter()
            .zip(self.density(ncp))
            .map(|(s, d)| s * d)
            .sum()
    }

    fn p(&self, q: f64, ncp: f64, tail: Tail) -> f64 {
        if ncp == 0.0 {
            return f64::from(u8::from(match tail {
                Tail::Upper => q <= self.lo,
                Tail::Lower => q >= self.lo,
            }));
        }
        if ncp == f64::INFINITY {
            return f64::from(u8::from(match tail {
                Tail::Upper => q <= self.hi,
                Tail::Lower => q >= self.hi,
            }));
        }
        // At ncp = 1 R calls phyper, i.e. the central distribution; the
        // normalised density is the same quantity.
        self.support
            .iter()
            .zip(self.density(ncp))
            .filter(|(s, _)| match tail {
                Tail::Upper => **s >= q,
                Tail::Lower => **s <= q,
            })
            .map(|(_, d)| d)
            .sum()
    }

    /// R's `uniroot(f, c(lower, upper))$root`, evaluating the end points first.
    fn root(&self, f: impl Fn(f64) -> f64, lower: f64, upper: f64) -> Result<f64, StatsError> {
        let (fl, fu) = (f(lower), f(upper));
        uniroot(|t| Ok(f(t)), lower, upper, fl, fu, UNIROOT_TOL)
    }

    fn mle(&self, x: f64) -> Result<f64, StatsError> {
        if x == self.lo {
            return Ok(0.0);
        }
        if x == self.hi {
            return Ok(f64::INFINITY);
        }
        let mu = self.mean(1.0);
        if mu > x {
            self.root(|t| self.mean(t) - x, 0.0, 1.0)
        } else if mu < x {
            Ok(1.0 / self.root(|t| self.mean(1.0 / t) - x, f64::EPSILON, 1.0)?)
        } else {
            Ok(1.0)
        }
    }

    fn ncp_upper(&self, x: f64, alpha: f64) -> Result<f64, StatsError> {
        if x == self.hi {
            return Ok(f64::INFINITY);
        }
        let p = self.p(x, 1.0, Tail::Lower);
        if p < alpha {
            self.root(|t| self.p(x, t, Tail::Lower) - alpha, 0.0, 1.0)
        } else if p > alpha {
            Ok(1.0
                / self.root(
                    |t| self.p(x, 1.0 / t, Tail::Lower) - alpha,
                    f64::EPSILON,
                    1.0,
                )?)
        } else {
            Ok(1.0)
        }
    }

    fn ncp_lower(&self, x: f64, alpha: f64) -> Result<f64, StatsError> {
        if x == self.lo {
            return Ok(0.0);
        }
        let p = self.p(x, 1.0, Tail::Upper);
        if p > alpha {
            self.root(|t| self.p(x, t, Tail::Upper) - alpha, 0.0, 1.0)
        } else if p < alpha {
            Ok(1.0
                / self.root(
                    |t| self.p(x, 1.0 / t, Tail::Upper) - alpha,
                    f64::EPSILON,
                    1.0,
                )?)
        } else {
            Ok(1.0)
        }
    }
}

/// Continuity correction of the chi-square, Mantel-Haenszel and (normal
/// approximation) Wilcoxon tests (R's `correct =`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContinuityCorrection {
    /// Yates' correction, `|O - E| - min(0.5, |O - E|)` (R's default, `correct = TRUE`).
    #[default]
    Yates,
    /// No correction (`correct = FALSE`).
    None,
}

/// Pearson's chi-square test of independence in a 2×2 table, as
/// `chisq.test(x, correct = ...)`: `Σ (|O - E| - Y)² / E` with
/// `E = row total × column total / n`, `Y = min(0.5, |O - E|)` under Yates'
/// correction, 1 degree of freedom.
///
/// Errors: `EmptyInput` (empty table), `Undefined` when a row or column is
/// empty (an expected count is 0).
pub fn chi_square_2x2(
    table: &Table2x2,
    correction: ContinuityCorrection,
) -> Result<ChiSquareTest, StatsError> {
    let n = table.total() as f64;
    if n == 0.0 {
        return Err(StatsError::EmptyInput { what: "table" });
    }
    let [a, b, c, d] = table.cells();
    let rows = [a + b, c + d];
    let cols = [a + c, b + d];
    if rows.contains(&0.0) || cols.contains(&0.0) {
        return Err(StatsError::Undefined {
            what: "chi-square statistic",
            reason: "a row or column of the table is empty",
        });
    }
    let obs = [[a, b], [c, d]];
    let expected = |i: usize, j: usize| rows[i] * cols[j] / n;
    let yates = match correction {
        ContinuityCorrection::None => 0.0,
        ContinuityCorrection::Yates => {
            let mut m = 0.5_f64;
            for (i, row) in obs.iter().enumerate() {
                for (j, o) in row.iter().enumerate() {
                    m = m.min((o - expected(i, j)).abs());
                }
            }
            m
        }
    };
    let mut stat = 0.0;
    for (i, row) in obs.iter().enumerate() {
        for (j, o) in row.iter().enumerate() {
            let e = expected(i, j);
            stat += ((o - e).abs() - yates).powi(2) / e;
        }
    }
    Ok(ChiSquareTest {
        statistic: stat,
        df: 1.0,
        p_value: chisq_sf(stat, 1.0)?,
    })
}

/// Result of the Cochran-Mantel-Haenszel test over K 2×2 tables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MantelHaenszel {
    /// Mantel-Haenszel chi-square statistic (1 df).
    pub statistic: f64,
    /// p-value for the chosen alternative (two-sided: chi-square upper tail;
    /// one-sided: normal tail of the signed root).
    pub p_value: f64,
    /// Whether the continuity correction was applied (R applies it only when
    /// `|Σ (a - E a)| >= 0.5`).
    pub corrected: bool,
    /// Mantel-Haenszel common odds ratio `Σ(a d / n) / Σ(b c / n)`.
    pub common_odds_ratio: f64,
    /// Robins-Breslow-Greenland standard error of its logarithm.
    pub se_log: f64,
    /// Interval `OR · exp(± z se_log)` (one-sided: one infinite or zero bound).
    pub ci: Ci,
}

/// Cochran-Mantel-Haenszel test of conditional independence in 2×2×K tables
/// with the Mantel-Haenszel common odds ratio and its Robins-Breslow-Greenland
/// interval, as `mantelhaen.test(x, correct = ..., alternative, conf.level)`
/// (`exact = FALSE`).
///
/// Errors: `EmptyInput` (no tables), `TooFewObservations` (a stratum with
/// fewer than 2 subjects, as R), `Undefined` when the variance is zero or
/// either odds-ratio sum is zero, `InvalidConfLevel`.
pub fn mantel_haenszel(
    tables: &[Table2x2],
    correction: ContinuityCorrection,
    alternative: Alternative,
    conf_level: f64,
) -> Result<MantelHaenszel, StatsError> {
    check_conf_level(conf_level)?;
    if tables.is_empty() {
        return Err(StatsError::EmptyInput { what: "tables" });
    }
    let (mut delta, mut var, mut s_diag, mut s_offd) = (0.0, 0.0, 0.0, 0.0);
    let (mut t1, mut t2, mut t3) = (0.0, 0.0, 0.0);
    for t in tables {
        let n = t.total();
        if n < 2 {
            return Err(StatsError::TooFewObservations {
                what: "stratum",
                n: n as usize,
                required: 2,
            });
        }
        let n = n as f64;
        let [a, b, c, d] = t.cells();
        delta += a - (a + b) * (a + c) / n;
        var += (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1.0));
        s_diag += a * d / n;
        s_offd += b * c / n;
        let n2 = n * n;
        t1 += (a + d) * a * d / n2;
        t2 += ((a + d) * b * c + (b + c) * a * d) / n2;
        t3 += (b + c) * b * c / n2;
    }
    if var <= 0.0 {
        return Err(StatsError::Undefined {
            what: "Mantel-Haenszel statistic",
            reason: "the variance is zero (every stratum has an empty margin)",
        });
    }
    if s_diag == 0.0 || s_offd == 0.0 {
        return Err(StatsError::Undefined {
            what: "Mantel-Haenszel odds ratio",
            reason: "it is 0 or infinite (no concordant or no discordant pairs)",
        });
    }
    let yates = match correction {
        ContinuityCorrection::Yates if delta.abs() >= 0.5 => 0.5,
        _ => 0.0,
    };
    let statistic = (delta.abs() - yates).powi(2) / var;
    let p_value = match alternative {
        Alternative::TwoSided => chisq_sf(statistic, 1.0)?,
        Alternative::Less => norm_sf(-(delta.signum() * statistic.sqrt())),
        Alternative::Greater => norm_sf(delta.signum() * statistic.sqrt()),
    };
    let or = s_diag / s_offd;
    let se_log = (t1 / (2.0 * s_diag * s_diag)
        + t2 / (2.0 * s_diag * s_offd)
        + t3 / (2.0 * s_offd * s_offd))
        .sqrt();
    let (lower, upper) = match alternative {
        Alternative::TwoSided => {
            let q = qnorm((1.0 - conf_level) / 2.0);
            (or * (q * se_log).exp(), or * (-q * se_log).exp())
        }
        Alternative::Less => (0.0, or * (qnorm(conf_level) * se_log).exp()),
        Alternative::Greater => (or * (-qnorm(conf_level) * se_log).exp(), f64::INFINITY),
    };
    Ok(MantelHaenszel {
        statistic,
        p_value,
        corrected: yates > 0.0,
        common_odds_ratio: or,
        se_log,
        ci: Ci {
            lower,
            upper,
            level: conf_level,
        },
    })
}

fn check_count(x: u64, n: u64, what: &'static str) -> Result<(), StatsError> {
    if n == 0 {
        return Err(StatsError::EmptyInput { what });
    }
    if x > n {
        return Err(StatsError::InvalidInput {
            what,
            reason: format!("{x} responders out of {n}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_errors() {
        assert!(matches!(
            proportion(1, 0, ProportionCi::Wilson, 0.95),
            Err(StatsError::EmptyInput { .. })
        ));
        assert!(matches!(
            proportion(3, 2, ProportionCi::Wilson, 0.95),
            Err(StatsError::InvalidInput { .. })
        ));
        assert!(matches!(
            binom_test(1, 4, 1.5, Alternative::TwoSided, 0.95),
            Err(StatsError::InvalidProbability { .. })
        ));
    }

    #[test]
    fn proportion_edges() {
        let p = proportion(0, 10, ProportionCi::Wilson, 0.95).unwrap();
        assert_eq!(p.ci.lower, 0.0);
        let p = proportion(10, 10, ProportionCi::ClopperPearson, 0.95).unwrap();
        assert_eq!(p.ci.upper, 1.0);
        // R: binom.test(10, 10)$conf.int[1] = 0.69150289218123917
        assert!((p.ci.lower - 0.691_502_892_181_239_2).abs() < 1e-12);
    }

    #[test]
    fn binomial_test_at_mean_is_one() {
        let r = binom_test(4, 12, 1.0 / 3.0, Alternative::TwoSided, 0.95).unwrap();
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn odds_ratio_zero_cells() {
        let t = Table2x2::new(0, 5, 3, 4);
        assert!(matches!(
            odds_ratio(&t, 0.95, ZeroCells::Error),
            Err(StatsError::Undefined { .. })
        ));
        let r = odds_ratio(&t, 0.95, ZeroCells::AddHalf).unwrap();
        assert!(r.corrected);
        assert!((r.estimate - (0.5 * 4.5) / (5.5 * 3.5)).abs() < 1e-15);
    }

    #[test]
    fn chi_square_empty_margin() {
        assert!(matches!(
            chi_square_2x2(&Table2x2::new(0, 0, 3, 4), ContinuityCorrection::None),
            Err(StatsError::Undefined { .. })
        ));
    }

    #[test]
    fn fisher_small_table() {
        // R: fisher.test(matrix(c(3, 1, 1, 3), 2)) p = 0.48571428571428582,
        // estimate 6.40830886700578795, conf.int 0.21173291530550292 621.93375054541729696
        let r = fisher_exact(&Table2x2::new(3, 1, 1, 3), Alternative::TwoSided, 0.95).unwrap();
        assert!((r.p_value - 0.485_714_285_714_285_8).abs() < 1e-12);
        assert!((r.estimate / 6.408_308_867_005_788 - 1.0).abs() < 1e-9);
        assert!((r.ci.lower / 0.211_732_915_305_502_92 - 1.0).abs() < 1e-9);
        assert!((r.ci.upper / 621.933_750_545_417_3 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn mantel_haenszel_small_stratum() {
        let t = [Table2x2::new(1, 0, 0, 0), Table2x2::new(2, 3, 4, 5)];
        assert!(matches!(
            mantel_haenszel(&t, ContinuityCorrection::Yates, Alternative::TwoSided, 0.95),
            Err(StatsError::TooFewObservations { .. })
        ));
    }

    #[test]
    fn mantel_haenszel_degenerate_tables() {
        let mh = |t: &[Table2x2]| {
            mantel_haenszel(t, ContinuityCorrection::None, Alternative::TwoSided, 0.95)
        };
        assert!(matches!(mh(&[]), Err(StatsError::EmptyInput { .. })));
        // Everyone responds in every stratum: an empty margin everywhere, variance zero.
        let all = [Table2x2::new(3, 0, 4, 0), Table2x2::new(2, 0, 2, 0)];
        assert!(matches!(
            mh(&all),
            Err(StatsError::Undefined {
                what: "Mantel-Haenszel statistic",
                ..
            })
        ));
        // No discordant pairs (b c = 0 in every stratum): the odds ratio is infinite.
        let inf = [Table2x2::new(3, 0, 1, 2), Table2x2::new(2, 1, 0, 3)];
        assert!(matches!(
            mh(&inf),
            Err(StatsError::Undefined {
                what: "Mantel-Haenszel odds ratio",
                ..
            })
        ));
    }
}
