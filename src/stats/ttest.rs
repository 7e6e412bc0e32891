//! Student and Welch t-tests, as R's `t.test()`: one-sample, paired (a
//! one-sample test on the differences) and two-sample with either a pooled
//! variance or the Welch-Satterthwaite approximation.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::common::{
    Alternative, Ci, TestResult, check_conf_level, check_finite, paired_differences,
};
use super::descriptive::{mean, variance_about};
use super::error::StatsError;

/// Variance assumption of the two-sample t-test (R's `var.equal =`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VarianceAssumption {
    /// Unequal variances, Welch-Satterthwaite degrees of freedom (R's default, `var.equal = FALSE`).
    #[default]
    Welch,
    /// Equal variances, pooled variance estimate, `n1 + n2 - 2` degrees of freedom (`var.equal = TRUE`).
    Pooled,
}

/// One-sample t-test of `H0: mean(x) = mu`, as R's `t.test(x, mu = mu)`.
///
/// Errors: `EmptyInput` / `NonFiniteInput` for bad data (remove missing values
/// first), `TooFewObservations` when `n < 2`, `ZeroVariance` when the data are
/// essentially constant, `InvalidConfLevel`.
pub fn t_test_one_sample(
    x: &[f64],
    mu: f64,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    one_sample(x, mu, alternative, conf_level, "One Sample t-test")
}

/// Paired t-test on `x[i] - y[i]`, as R's `t.test(x, y, paired = TRUE)`,
/// which equals `t.test(x - y)`; the estimate is the mean difference.
///
/// Errors as [`t_test_one_sample`], plus `LengthMismatch`.
pub fn t_test_paired(
    x: &[f64],
    y: &[f64],
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    let d = paired_differences(x, y)?;
    one_sample(&d, 0.0, alternative, conf_level, "Paired t-test")
}

fn one_sample(
    x: &[f64],
    mu: f64,
    alternative: Alternative,
    conf_level: f64,
    method: &'static str,
) -> Result<TestResult, StatsError> {
    check_conf_level(conf_level)?;
    check_finite(x, "x")?;
    check_finite(&[mu], "mu")?;
    let n = x.len();
    if n < 2 {
        return Err(StatsError::TooFewObservations {
            what: "x",
            n,
            required: 2,
        });
    }
    let mx = mean(x);
    let vx = variance_about(x, mx);
    let nf = n as f64;
    let stderr = (vx / nf).sqrt();
    if stderr == 0.0 || stderr < 10.0 * f64::EPSILON * mx.abs() {
        return Err(StatsError::ZeroVariance { what: "x" });
    }
    let df = nf - 1.0;
    let t = (mx - mu) / stderr;
    finish(mx, mu, t, df, stderr, alternative, conf_level, method)
}

/// Two-sample t-test of `H0: mean(x) - mean(y) = 0`, as R's
/// `t.test(x, y, var.equal = ...)`. The estimate is `mean(x) - mean(y)`.
///
/// Errors: `EmptyInput` / `NonFiniteInput`, `TooFewObservations` (Welch needs
/// two observations per group; pooled needs one per group and three in all),
/// `ZeroVariance`, `InvalidConfLevel`.
pub fn t_test_two_sample(
    x: &[f64],
    y: &[f64],
    variance: VarianceAssumption,
    alternative: Alternative,
    conf_level: f64,
) -> Result<TestResult, StatsError> {
    check_conf_level(conf_level)?;
    check_finite(x, "x")?;
    check_finite(y, "y")?;
    let (nx, ny) = (x.len(), y.len());
    let required = match variance {
        VarianceAssumption::Welch => 2,
        VarianceAssumption::Pooled => 1,
    };
    if nx < required {
        return Err(StatsError::TooFewObservations {
            what: "x",
            n: nx,
            required,
        });
    }
    if ny < required {
        return Err(StatsError::TooFewObservations {
            what: "y",
            n: ny,
            required,
        });
    }
    if nx + ny < 3 {
        return Err(StatsError::TooFewObservations {
            what: "x and y",
            n: nx + ny,
            required: 3,
        });
    }
    let (nxf, nyf) = (nx as f64, ny as f64);
    let mx = mean(x);
    let my = mean(y);
    let (df, stderr, method) = match variance {
        VarianceAssumption::Pooled => {
            let df = nxf + nyf - 2.0;
            let mut v = 0.0;
            if nx > 1 {
                v += (nxf - 1.0) * variance_about(x, mx);
            }
            if ny > 1 {
                v += (nyf - 1.0) * variance_about(y, my);
            }
            v /= df;
            (
                df,
                (v * (1.0 / nxf + 1.0 / nyf)).sqrt(),
                "Two Sample t-test",
            )
        }
        VarianceAssumption::Welch => {
            let sx = (variance_about(x, mx) / nxf).sqrt();
            let sy = (variance_about(y, my) / nyf).sqrt();
            let stderr = (sx.powi(2) + sy.powi(2)).sqrt();
            let df = stderr.powi(4) / (sx.powi(4) / (nxf - 1.0) + sy.powi(4) / (nyf - 1.0));
            (df, stderr, "Welch Two Sample t-test")
        }
    };
    if stderr == 0.0 || stderr < 10.0 * f64::EPSILON * mx.abs().max(my.abs()) {
        return Err(StatsError::ZeroVariance { what: "x and y" });
    }
    let t = (mx - my) / stderr;
    finish(mx - my, 0.0, t, df, stderr, alternative, conf_level, method)
}

/// p-value and confidence interval from `t`, as the tail of R's `t.test.default`.
#[allow(clippy::too_many_arguments)]
fn finish(
    estimate: f64,
    mu: f64,
    t: f64,
    df: f64,
    stderr: f64,
    alternative: Alternative,
    conf_level: f64,
    method: &'static str,
) -> Result<TestResult, StatsError> {
    // df >= 1 by the checks above; a Welch df that overflowed is reported, not panicked on.
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|_| StatsError::NonFiniteInput {
        what: "degrees of freedom",
        index: 0,
        value: df,
    })?;
    let (p_value, lower, upper) = match alternative {
        Alternative::Less => (
            dist.cdf(t),
            f64::NEG_INFINITY,
            mu + (t + dist.inverse_cdf(conf_level)) * stderr,
        ),
        Alternative::Greater => (
            dist.sf(t),
            mu + (t - dist.inverse_cdf(conf_level)) * stderr,
            f64::INFINITY,
        ),
        Alternative::TwoSided => {
            let q = dist.inverse_cdf(1.0 - (1.0 - conf_level) / 2.0);
            (
                (2.0 * dist.sf(t.abs())).min(1.0),
                mu + (t - q) * stderr,
                mu + (t + q) * stderr,
            )
        }
    };
    Ok(TestResult {
        estimate,
        se: Some(stderr),
        df: Some(df),
        statistic: t,
        p_value,
        ci: Some(Ci {
            lower,
            upper,
            level: conf_level,
        }),
        method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: [f64; 6] = [5.1, 4.9, 6.2, 5.8, 6.0, 5.5];
    const Y: [f64; 5] = [4.1, 4.6, 5.0, 3.9, 4.4];

    #[test]
    fn welch_matches_r() {
        // R: t.test(c(5.1,4.9,6.2,5.8,6,5.5), c(4.1,4.6,5,3.9,4.4))
        let r = t_test_two_sample(
            &X,
            &Y,
            VarianceAssumption::Welch,
            Alternative::TwoSided,
            0.95,
        )
        .unwrap();
        assert!((r.statistic - 4.167_826_624_664_203).abs() < 1e-9, "{r:?}");
        assert!(
            (r.df.unwrap() - 8.992_290_739_491_056).abs() < 1e-8,
            "{r:?}"
        );
        assert!((r.estimate - 1.183_333_333_333_333).abs() < 1e-12);
    }

    #[test]
    fn too_few_observations() {
        assert_eq!(
            t_test_two_sample(
                &[1.0],
                &Y,
                VarianceAssumption::Welch,
                Alternative::TwoSided,
                0.95
            ),
            Err(StatsError::TooFewObservations {
                what: "x",
                n: 1,
                required: 2
            })
        );
        assert_eq!(
            t_test_two_sample(
                &X,
                &[1.0],
                VarianceAssumption::Welch,
                Alternative::TwoSided,
                0.95
            ),
            Err(StatsError::TooFewObservations {
                what: "y",
                n: 1,
                required: 2
            })
        );
        // Pooled accepts a single observation in one group ...
        assert!(
            t_test_two_sample(
                &X,
                &[1.0],
                VarianceAssumption::Pooled,
                Alternative::TwoSided,
                0.95
            )
            .is_ok()
        );
        // ... but not two observations in all.
        assert_eq!(
            t_test_two_sample(
                &[1.0],
                &[2.0],
                VarianceAssumption::Pooled,
                Alternative::TwoSided,
                0.95
            ),
            Err(StatsError::TooFewObservations {
                what: "x and y",
                n: 2,
                required: 3
            })
        );
        assert_eq!(
            t_test_one_sample(&[1.0], 0.0, Alternative::TwoSided, 0.95),
            Err(StatsError::TooFewObservations {
                what: "x",
                n: 1,
                required: 2
            })
        );
    }

    #[test]
    fn empty_input() {
        assert_eq!(
            t_test_two_sample(
                &[],
                &Y,
                VarianceAssumption::Welch,
                Alternative::TwoSided,
                0.95
            ),
            Err(StatsError::EmptyInput { what: "x" })
        );
        assert_eq!(
            t_test_paired(&[], &[], Alternative::TwoSided, 0.95),
            Err(StatsError::EmptyInput { what: "x" })
        );
    }

    #[test]
    fn constant_data() {
        assert_eq!(
            t_test_two_sample(
                &[2.0, 2.0],
                &[2.0, 2.0, 2.0],
                VarianceAssumption::Welch,
                Alternative::TwoSided,
                0.95
            ),
            Err(StatsError::ZeroVariance { what: "x and y" })
        );
        assert_eq!(
            t_test_one_sample(&[0.0, 0.0, 0.0], 0.0, Alternative::TwoSided, 0.95),
            Err(StatsError::ZeroVariance { what: "x" })
        );
        assert_eq!(
            t_test_paired(&[1.3, 2.3], &[1.0, 2.0], Alternative::TwoSided, 0.95),
            Err(StatsError::ZeroVariance { what: "x" })
        );
    }

    #[test]
    fn non_finite_and_bad_level() {
        assert!(matches!(
            t_test_two_sample(
                &[1.0, f64::NAN],
                &Y,
                VarianceAssumption::Welch,
                Alternative::TwoSided,
                0.95
            ),
            Err(StatsError::NonFiniteInput {
                what: "x",
                index: 1,
                ..
            })
        ));
        assert_eq!(
            t_test_one_sample(&X, 0.0, Alternative::TwoSided, 1.5),
            Err(StatsError::InvalidConfLevel(1.5))
        );
        assert_eq!(
            t_test_paired(&X, &Y, Alternative::TwoSided, 0.95),
            Err(StatsError::LengthMismatch { x_len: 6, y_len: 5 })
        );
    }

    #[test]
    fn one_sided_intervals() {
        let r = t_test_two_sample(
            &X,
            &Y,
            VarianceAssumption::Pooled,
            Alternative::Greater,
            0.9,
        )
        .unwrap();
        let ci = r.ci.unwrap();
        assert!(ci.lower.is_finite() && ci.upper == f64::INFINITY);
        let r =
            t_test_two_sample(&X, &Y, VarianceAssumption::Pooled, Alternative::Less, 0.9).unwrap();
        let ci = r.ci.unwrap();
        assert!(ci.lower == f64::NEG_INFINITY && ci.upper.is_finite());
    }
}
