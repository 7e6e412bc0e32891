//! Analysis of covariance, as R's `lm()` followed by `emmeans()`: a linear
//! model `response ~ covariates + factors` with treatment (dummy) coding,
//! its coefficient table, and least-squares means (estimated marginal means)
//! of the treatment arm with the differences of each arm from a reference arm.
//!
//! Typical use: `CHG ~ BASE + ARM (+ strata factors)`. LS-means are
//! predictions at the mean of each continuous covariate with every other
//! factor's levels weighted equally (emmeans' default reference grid), so
//! they do not depend on how unbalanced the strata are.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::common::{Ci, check_conf_level, check_finite};
use super::error::StatsError;
use super::linalg::{Matrix, least_squares, quad_form};

/// A continuous covariate entering the model linearly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Covariate<'a> {
    /// Name, used for its coefficient (R's column name).
    pub name: &'a str,
    /// One value per observation.
    pub values: &'a [f64],
}

/// A factor: `codes[i]` indexes `levels`. Level 0 is the baseline of the
/// treatment coding (R's first factor level).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Factor<'a> {
    /// Name, used as the prefix of its coefficients (`ARMCDTRT`).
    pub name: &'a str,
    /// Level labels in order.
    pub levels: &'a [&'a str],
    /// Level code per observation.
    pub codes: &'a [usize],
}

/// An ANCOVA model specification.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AncovaModel<'a> {
    /// Response (e.g. change from baseline), one value per observation.
    pub response: &'a [f64],
    /// Continuous covariates, in model order.
    pub covariates: &'a [Covariate<'a>],
    /// Factors, in model order, the arm among them.
    pub factors: &'a [Factor<'a>],
    /// Index in `factors` of the treatment-arm factor.
    pub arm: usize,
    /// Level code of the reference (control) arm; differences are `level - reference`.
    pub reference: usize,
    /// Confidence level of the LS-mean intervals (e.g. 0.95).
    pub conf_level: f64,
}

/// One row of the coefficient table (`summary(lm(...))$coefficients`).
#[derive(Debug, Clone, PartialEq)]
pub struct Coefficient {
    /// R's name: `(Intercept)`, the covariate name, or factor name + level label.
    pub name: String,
    /// Estimate.
    pub estimate: f64,
    /// Standard error.
    pub se: f64,
    /// `t = estimate / se`.
    pub t: f64,
    /// Two-sided p-value on the residual degrees of freedom.
    pub p_value: f64,
}

/// Least-squares mean of one arm.
#[derive(Debug, Clone, PartialEq)]
pub struct LsMean {
    /// Arm level code.
    pub level: usize,
    /// Arm level label.
    pub label: String,
    /// Estimated marginal mean.
    pub estimate: f64,
    /// Its standard error.
    pub se: f64,
    /// Degrees of freedom (the residual df).
    pub df: f64,
    /// Two-sided `t` interval.
    pub ci: Ci,
}

/// Difference of LS-means, arm `level` minus the reference arm.
#[derive(Debug, Clone, PartialEq)]
pub struct LsMeanDifference {
    /// Arm level code.
    pub level: usize,
    /// Reference level code.
    pub reference: usize,
    /// `"<level> - <reference>"`, as emmeans labels contrasts.
    pub label: String,
    /// Difference of LS-means.
    pub estimate: f64,
    /// Its standard error.
    pub se: f64,
    /// Degrees of freedom (the residual df).
    pub df: f64,
    /// `t = estimate / se`.
    pub t: f64,
    /// Two-sided p-value, unadjusted for multiplicity.
    pub p_value: f64,
    /// Two-sided `t` interval, unadjusted.
    pub ci: Ci,
}

/// A fitted ANCOVA.
#[derive(Debug, Clone, PartialEq)]
pub struct Ancova {
    /// Observations used.
    pub n: usize,
    /// Coefficient table in model order.
    pub coefficients: Vec<Coefficient>,
    /// Covariance matrix of the coefficients, `σ² (XᵀX)⁻¹`.
    pub covariance: Matrix,
    /// Residual degrees of freedom `n - p`.
    pub df_residual: f64,
    /// Residual standard error `σ`.
    pub sigma: f64,
    /// LS-means per arm level.
    pub lsmeans: Vec<LsMean>,
    /// Each non-reference arm minus the reference arm.
    pub differences: Vec<LsMeanDifference>,
}

/// Fits the ANCOVA and computes LS-means, as
/// `fit <- lm(y ~ x1 + ... + f1 + ...)`, `summary(fit)`,
/// `emmeans(fit, ~ arm)` and `contrast(emm, "trt.vs.ctrl", ref = reference, adjust = "none")`.
///
/// Errors: `EmptyInput`, `NonFiniteInput` (remove missing values first),
/// `LengthMismatch`, `InvalidInput` (arm index or reference out of range,
/// a code without a level), `EmptyGroup` (a level without observations),
/// `TooFewObservations` (no residual degrees of freedom), `Singular`
/// (linearly dependent design columns), `ZeroVariance` (exact fit),
/// `InvalidConfLevel`.
pub fn ancova(model: &AncovaModel<'_>) -> Result<Ancova, StatsError> {
    check_conf_level(model.conf_level)?;
    let y = model.response;
    check_finite(y, "response")?;
    let n = y.len();
    for c in model.covariates {
        if c.values.len() != n {
            return Err(StatsError::LengthMismatch {
                x_len: n,
                y_len: c.values.len(),
            });
        }
        check_finite(c.values, "covariate")?;
    }
    for f in model.factors {
        if f.codes.len() != n {
            return Err(StatsError::LengthMismatch {
                x_len: n,
                y_len: f.codes.len(),
            });
        }
        if let Some(&bad) = f.codes.iter().find(|&&c| c >= f.levels.len()) {
            return Err(StatsError::InvalidInput {
                what: "factor codes",
                reason: format!("{}: code {bad} has no level", f.name),
            });
        }
        if let Some(level) = (0..f.levels.len()).find(|l| !f.codes.contains(l)) {
            return Err(StatsError::EmptyGroup {
                what: "factor level",
                level,
            });
        }
    }
    let arm = model
        .factors
        .get(model.arm)
        .ok_or(StatsError::InvalidInput {
            what: "arm",
            reason: format!("factor index {} out of range", model.arm),
        })?;
    if model.reference >= arm.levels.len() {
        return Err(StatsError::InvalidInput {
            what: "reference",
            reason: format!("level {} out of range for {}", model.reference, arm.name),
        });
    }

    // Design: intercept, covariates, then each factor's levels 1.. as dummies.
    let mut names = vec!["(Intercept)".to_string()];
    let mut columns = vec![vec![1.0; n]];
    for c in model.covariates {
        names.push(c.name.to_string());
        columns.push(c.values.to_vec());
    }
    let mut factor_offsets = Vec::with_capacity(model.factors.len());
    for f in model.factors {
        factor_offsets.push(columns.len());
        for (l, label) in f.levels.iter().enumerate().skip(1) {
            names.push(format!("{}{}", f.name, label));
            columns.push(
                f.codes
                    .iter()
                    .map(|&c| f64::from(u8::from(c == l)))
                    .collect(),
            );
        }
    }
    let p = columns.len();
    if n <= p {
        return Err(StatsError::TooFewObservations {
            what: "observations",
            n,
            required: p + 1,
        });
    }
    let fit = least_squares(&columns, y, "ANCOVA design matrix")?;
    let df = (n - p) as f64;
    let sigma2 = fit.rss / df;
    let scale = y.iter().map(|v| v.abs()).fold(0.0_f64, f64::max);
    if sigma2 <= 0.0 || sigma2.sqrt() < 1e-12 * scale {
        return Err(StatsError::ZeroVariance { what: "residuals" });
    }
    let cov: Matrix = fit
        .xtx_inv
        .iter()
        .map(|row| row.iter().map(|v| v * sigma2).collect())
        .collect();
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|_| StatsError::TooFewObservations {
        what: "residual degrees of freedom",
        n: 0,
        required: 1,
    })?;
    let q = dist.inverse_cdf(1.0 - (1.0 - model.conf_level) / 2.0);
    let two_sided = |t: f64| (2.0 * dist.sf(t.abs())).min(1.0);

    let coefficients = names
        .into_iter()
        .enumerate()
        .map(|(j, name)| {
            let se = cov[j][j].sqrt();
            let t = fit.coef[j] / se;
            Coefficient {
                name,
                estimate: fit.coef[j],
                se,
                t,
                p_value: two_sided(t),
            }
        })
        .collect();

    // Reference grid row for each arm level: covariates at their means,
    // other factors averaged over their levels with equal weights.
    let grid_row = |arm_level: usize| -> Vec<f64> {
        let mut l = vec![0.0; p];
        l[0] = 1.0;
        for (k, c) in model.covariates.iter().enumerate() {
            l[1 + k] = c.values.iter().sum::<f64>() / n as f64;
        }
        for (fi, f) in model.factors.iter().enumerate() {
            let off = factor_offsets[fi];
            for lvl in 1..f.levels.len() {
                l[off + lvl - 1] = if fi == model.arm {
                    f64::from(u8::from(lvl == arm_level))
                } else {
                    1.0 / f.levels.len() as f64
                };
            }
        }
        l
    };
    let dot = |l: &[f64]| l.iter().zip(&fit.coef).map(|(a, b)| a * b).sum::<f64>();
    let rows: Vec<Vec<f64>> = (0..arm.levels.len()).map(grid_row).collect();
    let lsmeans = rows
        .iter()
        .enumerate()
        .map(|(level, l)| {
            let estimate = dot(l);
            let se = quad_form(&cov, l).sqrt();
            LsMean {
                level,
                label: arm.levels[level].to_string(),
                estimate,
                se,
                df,
                ci: Ci {
                    lower: estimate - q * se,
                    upper: estimate + q * se,
                    level: model.conf_level,
                },
            }
        })
        .collect();
    let r = model.reference;
    let differences = (0..arm.levels.len())
        .filter(|&lvl| lvl != r)
        .map(|level| {
            let l: Vec<f64> = rows[level]
                .iter()
                .zip(&rows[r])
                .map(|(a, b)| a - b)
                .collect();
            let estimate = dot(&l);
            let se = quad_form(&cov, &l).sqrt();
            let t = estimate / se;
            LsMeanDifference {
                level,
                reference: r,
                label: format!("{} - {}", arm.levels[level], arm.levels[r]),
                estimate,
                se,
                df,
                t,
                p_value: two_sided(t),
                ci: Ci {
                    lower: estimate - q * se,
                    upper: estimate + q * se,
                    level: model.conf_level,
                },
            }
        })
        .collect();
    Ok(Ancova {
        n,
        coefficients,
        covariance: cov,
        df_residual: df,
        sigma: sigma2.sqrt(),
        lsmeans,
        differences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made-up numbers for edge cases only; the real-data checks against R
    // are in tests/survival_contingency_vs_r.rs.
    const Y: [f64; 8] = [1.0, 2.5, 2.0, 4.0, 3.5, 5.0, 4.0, 6.5];
    const X: [f64; 8] = [1.0, 2.0, 1.5, 3.0, 2.0, 3.5, 2.5, 4.0];
    const ARM: [usize; 8] = [0, 1, 0, 1, 0, 1, 0, 1];
    const LEVELS: [&str; 2] = ["PBO", "TRT"];

    fn model<'a>(
        y: &'a [f64],
        cov: &'a [Covariate<'a>],
        factors: &'a [Factor<'a>],
    ) -> AncovaModel<'a> {
        AncovaModel {
            response: y,
            covariates: cov,
            factors,
            arm: 0,
            reference: 0,
            conf_level: 0.95,
        }
    }

    #[test]
    fn lsmeans_without_strata_are_predictions_at_mean() {
        let cov = [Covariate {
            name: "BASE",
            values: &X,
        }];
        let f = [Factor {
            name: "ARM",
            levels: &LEVELS,
            codes: &ARM,
        }];
        let fit = ancova(&model(&Y, &cov, &f)).unwrap();
        let b = &fit.coefficients;
        assert_eq!(b[2].name, "ARMTRT");
        let xbar = X.iter().sum::<f64>() / 8.0;
        let pbo = b[0].estimate + b[1].estimate * xbar;
        assert!((fit.lsmeans[0].estimate - pbo).abs() < 1e-12);
        assert!((fit.differences[0].estimate - b[2].estimate).abs() < 1e-12);
        assert!((fit.differences[0].se - b[2].se).abs() < 1e-12);
        assert_eq!(fit.df_residual, 5.0);
        assert_eq!(fit.differences[0].label, "TRT - PBO");
    }

    #[test]
    fn singular_and_degenerate_designs() {
        let cov = [
            Covariate {
                name: "BASE",
                values: &X,
            },
            Covariate {
                name: "BASE2",
                values: &X,
            },
        ];
        let f = [Factor {
            name: "ARM",
            levels: &LEVELS,
            codes: &ARM,
        }];
        assert!(matches!(
            ancova(&model(&Y, &cov, &f)),
            Err(StatsError::Singular { .. })
        ));
        let f = [Factor {
            name: "ARM",
            levels: &LEVELS,
            codes: &[0; 8],
        }];
        assert!(matches!(
            ancova(&model(&Y, &cov[..1], &f)),
            Err(StatsError::EmptyGroup { level: 1, .. })
        ));
        let f = [Factor {
            name: "ARM",
            levels: &LEVELS,
            codes: &ARM[..2],
        }];
        assert!(matches!(
            ancova(&model(&Y[..2], &[], &f)),
            Err(StatsError::TooFewObservations { .. })
        ));
        // Exact fit: y = 2 x + arm.
        let y: Vec<f64> = X.iter().zip(ARM).map(|(x, a)| 2.0 * x + a as f64).collect();
        let f = [Factor {
            name: "ARM",
            levels: &LEVELS,
            codes: &ARM,
        }];
        assert!(matches!(
            ancova(&model(&y, &cov[..1], &f)),
            Err(StatsError::ZeroVariance { .. })
        ));
        let mut bad = Y;
        bad[3] = f64::NAN;
        assert!(matches!(
            ancova(&model(&bad, &cov[..1], &f)),
            Err(StatsError::NonFiniteInput { .. })
        ));
    }
}
