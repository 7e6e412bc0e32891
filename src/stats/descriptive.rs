//! Descriptive statistics (n, mean, SD, SE, median, quartiles, range) and
//! sample quantiles following R's `quantile()` definitions (Hyndman & Fan
//! 1996). The default definition is R's default, type 7.

use super::common::check_finite;
use super::error::StatsError;

/// Sample-quantile definition, numbered as in R's `quantile(type = )` and
/// Hyndman & Fan (1996). [`QuantileType::Type7`] is the default, as in R.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuantileType {
    /// Inverse of the empirical distribution function.
    Type1,
    /// Type 1 with averaging at discontinuities (SAS `PCTLDEF=5`).
    Type2,
    /// Nearest even order statistic (SAS `PCTLDEF=2`).
    Type3,
    /// Linear interpolation of the empirical CDF, `p(k) = k / n`.
    Type4,
    /// Piecewise linear, `p(k) = (k - 0.5) / n`.
    Type5,
    /// `p(k) = k / (n + 1)` (Minitab, SPSS).
    Type6,
    /// `p(k) = (k - 1) / (n - 1)`: R's and S's default.
    #[default]
    Type7,
    /// Approximately median-unbiased, `p(k) = (k - 1/3) / (n + 1/3)`.
    Type8,
    /// Approximately unbiased for normal data, `p(k) = (k - 3/8) / (n + 1/4)`.
    Type9,
}

/// Descriptive summary of one sample. `NaN` values are treated as missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptive {
    /// Number of non-missing values.
    pub n: usize,
    /// Number of missing (`NaN`) values.
    pub n_missing: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (denominator `n - 1`); `None` when `n < 2`.
    pub sd: Option<f64>,
    /// Standard error of the mean, `sd / sqrt(n)`; `None` when `n < 2`.
    pub se: Option<f64>,
    /// Median (mean of the two middle values when `n` is even), as R's `median()`.
    pub median: f64,
    /// First quartile (25th percentile) with the chosen quantile definition.
    pub q1: f64,
    /// Third quartile (75th percentile) with the chosen quantile definition.
    pub q3: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Descriptive statistics with quartiles by R's default quantile type 7.
///
/// `NaN` counts as missing; infinities are rejected. Errors: `EmptyInput` when
/// no non-missing value remains, `NonFiniteInput` for `±inf`.
pub fn descriptive(values: &[f64]) -> Result<Descriptive, StatsError> {
    descriptive_with(values, QuantileType::Type7)
}

/// Descriptive statistics with quartiles by the given quantile definition.
pub fn descriptive_with(values: &[f64], qtype: QuantileType) -> Result<Descriptive, StatsError> {
    if let Some(index) = values.iter().position(|v| v.is_infinite()) {
        return Err(StatsError::NonFiniteInput {
            what: "values",
            index,
            value: values[index],
        });
    }
    let mut x: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let n_missing = values.len() - x.len();
    if x.is_empty() {
        return Err(StatsError::EmptyInput { what: "values" });
    }
    x.sort_by(f64::total_cmp);
    let n = x.len();
    let m = mean(&x);
    let sd = if n >= 2 {
        Some(variance_about(&x, m).sqrt())
    } else {
        None
    };
    Ok(Descriptive {
        n,
        n_missing,
        mean: m,
        sd,
        se: sd.map(|s| s / (n as f64).sqrt()),
        median: median_sorted(&x),
        q1: quantile_sorted(&x, 0.25, qtype),
        q3: quantile_sorted(&x, 0.75, qtype),
        min: x[0],
        max: x[n - 1],
    })
}

/// One sample quantile of `values` at probability `prob`, as R's
/// `quantile(values, prob, type = ...)`.
///
/// Errors: `EmptyInput`, `NonFiniteInput` (missing values must be removed
/// first), `InvalidProbability` when `prob` is outside [0, 1].
pub fn quantile(values: &[f64], prob: f64, qtype: QuantileType) -> Result<f64, StatsError> {
    Ok(quantiles(values, &[prob], qtype)?[0])
}

/// Several sample quantiles of `values` (sorted once), as R's
/// `quantile(values, probs, type = ...)`.
pub fn quantiles(
    values: &[f64],
    probs: &[f64],
    qtype: QuantileType,
) -> Result<Vec<f64>, StatsError> {
    check_finite(values, "values")?;
    if let Some(index) = probs.iter().position(|p| !(0.0..=1.0).contains(p)) {
        return Err(StatsError::InvalidProbability {
            what: "probs",
            index,
            value: probs[index],
        });
    }
    let mut x = values.to_vec();
    x.sort_by(f64::total_cmp);
    Ok(probs
        .iter()
        .map(|&p| quantile_sorted(&x, p, qtype))
        .collect())
}

/// Median of finite values, as R's `median()`.
pub fn median(values: &[f64]) -> Result<f64, StatsError> {
    check_finite(values, "values")?;
    let mut x = values.to_vec();
    x.sort_by(f64::total_cmp);
    Ok(median_sorted(&x))
}

/// Median of a sorted, non-empty slice.
pub(crate) fn median_sorted(x: &[f64]) -> f64 {
    let n = x.len();
    let half = n / 2;
    if n % 2 == 1 {
        x[half]
    } else {
        (x[half - 1] + x[half]) / 2.0
    }
}

/// Mean as R computes it: the plain mean followed by one refinement pass
/// (R accumulates in extended precision; a compensated sum stands in for it).
pub(crate) fn mean(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let s = compensated_sum(x.iter().copied()) / n;
    let t = compensated_sum(x.iter().map(|v| v - s));
    s + t / n
}

/// Sample variance about a given mean (two-pass, denominator `n - 1`).
pub(crate) fn variance_about(x: &[f64], mean: f64) -> f64 {
    let ss = compensated_sum(x.iter().map(|v| (v - mean) * (v - mean)));
    ss / (x.len() as f64 - 1.0)
}

/// Neumaier's compensated summation.
fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0_f64;
    let mut comp = 0.0_f64;
    for v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            comp += (sum - t) + v;
        } else {
            comp += (v - t) + sum;
        }
        sum = t;
    }
    sum + comp
}

/// Quantile of a sorted, non-empty slice; a transcription of R's
/// `quantile.default` (R 4.2), `prob` in [0, 1].
pub(crate) fn quantile_sorted(x: &[f64], prob: f64, qtype: QuantileType) -> f64 {
    let n = x.len();
    let nf = n as f64;
    if qtype == QuantileType::Type7 {
        let index = 1.0 + (nf - 1.0) * prob;
        let lo = index.floor();
        let hi = index.ceil();
        let qs = x[lo as usize - 1];
        let xhi = x[hi as usize - 1];
        if index > lo && xhi != qs {
            let h = index - lo;
            return (1.0 - h) * qs + h * xhi;
        }
        return qs;
    }
    let (j, h) = match qtype {
        QuantileType::Type1 | QuantileType::Type2 | QuantileType::Type3 => {
            let nppm = if qtype == QuantileType::Type3 {
                nf * prob - 0.5
            } else {
                nf * prob
            };
            let j = nppm.floor();
            let h = match qtype {
                QuantileType::Type1 => f64::from(u8::from(nppm > j)),
                QuantileType::Type2 => (f64::from(u8::from(nppm > j)) + 1.0) / 2.0,
                _ => f64::from(u8::from(nppm != j || j.rem_euclid(2.0) == 1.0)),
            };
            (j, h)
        }
        _ => {
            let (a, b) = match qtype {
                QuantileType::Type4 => (0.0, 1.0),
                QuantileType::Type5 => (0.5, 0.5),
                QuantileType::Type6 => (0.0, 0.0),
                QuantileType::Type8 => (1.0 / 3.0, 1.0 / 3.0),
                _ => (3.0 / 8.0, 3.0 / 8.0),
            };
            let fuzz = 4.0 * f64::EPSILON;
            let nppm = a + prob * (nf + 1.0 - a - b);
            let j = (nppm + fuzz).floor();
            let mut h = nppm - j;
            if h.abs() < fuzz {
                h = 0.0;
            }
            (j, h)
        }
    };
    // R pads the sorted sample as c(x[1], x[1], x, x[n], x[n]) and reads
    // positions j + 2 and j + 3 (1-based); `j` lies in [-1, n + 1].
    let padded = |pos: f64| -> f64 {
        // pos is the 1-based position in the padded vector.
        let k = pos as i64 - 2; // 1-based position in x, may be out of range
        if k < 1 {
            x[0]
        } else if k as usize > n {
            x[n - 1]
        } else {
            x[k as usize - 1]
        }
    };
    let lo = padded(j + 2.0);
    let hi = padded(j + 3.0);
    if h == 1.0 {
        hi
    } else if h > 0.0 && h < 1.0 && lo != hi {
        (1.0 - h) * lo + h * hi
    } else {
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_summary() {
        let d = descriptive(&[3.0, 1.0, f64::NAN, 2.0, 10.0]).unwrap();
        assert_eq!(d.n, 4);
        assert_eq!(d.n_missing, 1);
        assert_eq!(d.mean, 4.0);
        assert_eq!(d.median, 2.5);
        // R: quantile(c(1,2,3,10), c(.25,.75)) -> 1.75, 4.75
        assert_eq!(d.q1, 1.75);
        assert_eq!(d.q3, 4.75);
        assert_eq!(d.min, 1.0);
        assert_eq!(d.max, 10.0);
        assert!((d.sd.unwrap() - 4.082_482_904_638_63).abs() < 1e-12);
    }

    #[test]
    fn single_value_has_no_sd() {
        let d = descriptive(&[5.0]).unwrap();
        assert_eq!(d.sd, None);
        assert_eq!(d.se, None);
        assert_eq!(d.median, 5.0);
        assert_eq!(d.q1, 5.0);
    }

    #[test]
    fn constant_values_are_fine() {
        let d = descriptive(&[0.1, 0.1, 0.1]).unwrap();
        assert!(d.sd.unwrap().abs() < 1e-15);
    }

    #[test]
    fn empty_and_all_missing() {
        assert_eq!(
            descriptive(&[]),
            Err(StatsError::EmptyInput { what: "values" })
        );
        assert_eq!(
            descriptive(&[f64::NAN, f64::NAN]),
            Err(StatsError::EmptyInput { what: "values" })
        );
    }

    #[test]
    fn infinite_rejected() {
        assert!(matches!(
            descriptive(&[1.0, f64::NEG_INFINITY]),
            Err(StatsError::NonFiniteInput { index: 1, .. })
        ));
    }

    #[test]
    fn quantile_types_match_r() {
        // R: x <- c(2, 4, 7, 11, 16); sapply(1:9, function(t) quantile(x, 0.3, type = t))
        let x = [16.0, 2.0, 11.0, 4.0, 7.0];
        let expected = [
            4.0,
            4.0,
            4.0,
            3.0,
            4.0,
            3.6,
            4.6,
            3.866_666_666_666_667,
            3.9,
        ];
        let types = [
            QuantileType::Type1,
            QuantileType::Type2,
            QuantileType::Type3,
            QuantileType::Type4,
            QuantileType::Type5,
            QuantileType::Type6,
            QuantileType::Type7,
            QuantileType::Type8,
            QuantileType::Type9,
        ];
        for (t, e) in types.iter().zip(expected) {
            let q = quantile(&x, 0.3, *t).unwrap();
            assert!((q - e).abs() < 1e-12, "{t:?}: {q} vs {e}");
        }
    }

    #[test]
    fn quantile_errors() {
        assert_eq!(
            quantile(&[], 0.5, QuantileType::Type7),
            Err(StatsError::EmptyInput { what: "values" })
        );
        assert!(matches!(
            quantile(&[1.0], 1.5, QuantileType::Type7),
            Err(StatsError::InvalidProbability { index: 0, .. })
        ));
        assert!(matches!(
            quantile(&[f64::NAN], 0.5, QuantileType::Type7),
            Err(StatsError::NonFiniteInput { .. })
        ));
        assert!(matches!(median(&[]), Err(StatsError::EmptyInput { .. })));
    }
}
