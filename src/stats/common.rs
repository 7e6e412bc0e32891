//! Types shared by the hypothesis tests: the alternative hypothesis, the
//! confidence interval and the test result, plus input-validation helpers.

use super::error::StatsError;

/// Direction of the alternative hypothesis (R's `alternative =`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alternative {
    /// `"two.sided"` (R's default).
    #[default]
    TwoSided,
    /// `"less"`: the location of `x` (or the shift `x - y`) is below the null value.
    Less,
    /// `"greater"`: the location of `x` (or the shift `x - y`) is above the null value.
    Greater,
}

/// A confidence interval. One-sided intervals have an infinite bound
/// (`f64::NEG_INFINITY` or `f64::INFINITY`), exactly as R reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ci {
    /// Lower bound (may be `-inf` for `Alternative::Less`).
    pub lower: f64,
    /// Upper bound (may be `+inf` for `Alternative::Greater`).
    pub upper: f64,
    /// Confidence level actually achieved. Equal to the requested level except
    /// where R lowers it for the Wilcoxon intervals ("requested conf.level not
    /// achievable").
    pub level: f64,
}

/// Result of a one- or two-sample test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// Point estimate: difference of means, mean difference, Hodges-Lehmann
    /// shift or pseudomedian, depending on the test.
    pub estimate: f64,
    /// Standard error of `estimate` (t-tests only).
    pub se: Option<f64>,
    /// Degrees of freedom (t-tests only).
    pub df: Option<f64>,
    /// Test statistic as R reports it: `t`, Wilcoxon `W`, or signed-rank `V`.
    pub statistic: f64,
    /// p-value for the chosen alternative.
    pub p_value: f64,
    /// Confidence interval for `estimate`.
    pub ci: Option<Ci>,
    /// Method name, as R's `htest$method` (leading blank of the pooled t-test trimmed).
    pub method: &'static str,
}

/// Checks that a confidence level lies strictly between 0 and 1.
pub(crate) fn check_conf_level(conf_level: f64) -> Result<(), StatsError> {
    if conf_level.is_finite() && conf_level > 0.0 && conf_level < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidConfLevel(conf_level))
    }
}

/// Checks that `values` is non-empty and entirely finite.
pub(crate) fn check_finite(values: &[f64], what: &'static str) -> Result<(), StatsError> {
    if values.is_empty() {
        return Err(StatsError::EmptyInput { what });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NonFiniteInput {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Element-wise differences `x[i] - y[i]` of two finite, equally long inputs.
pub(crate) fn paired_differences(x: &[f64], y: &[f64]) -> Result<Vec<f64>, StatsError> {
    if x.len() != y.len() {
        return Err(StatsError::LengthMismatch {
            x_len: x.len(),
            y_len: y.len(),
        });
    }
    check_finite(x, "x")?;
    check_finite(y, "y")?;
    Ok(x.iter().zip(y).map(|(a, b)| a - b).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_level_bounds() {
        assert!(check_conf_level(0.95).is_ok());
        assert_eq!(
            check_conf_level(1.0),
            Err(StatsError::InvalidConfLevel(1.0))
        );
        assert_eq!(
            check_conf_level(0.0),
            Err(StatsError::InvalidConfLevel(0.0))
        );
        assert!(matches!(
            check_conf_level(f64::NAN),
            Err(StatsError::InvalidConfLevel(_))
        ));
    }

    #[test]
    fn finite_checks() {
        assert_eq!(
            check_finite(&[], "x"),
            Err(StatsError::EmptyInput { what: "x" })
        );
        assert!(matches!(
            check_finite(&[1.0, f64::INFINITY], "x"),
            Err(StatsError::NonFiniteInput { index: 1, .. })
        ));
        assert_eq!(
            paired_differences(&[1.0], &[1.0, 2.0]),
            Err(StatsError::LengthMismatch { x_len: 1, y_len: 2 })
        );
    }
}
