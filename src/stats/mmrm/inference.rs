//! Inference on the fixed effects after the fit: standard errors, the
//! denominator degrees of freedom (Satterthwaite, Kenward-Roger, residual,
//! between-within), t- and F-tests and confidence intervals.

use faer::Mat;
use faer::Side;
use statrs::distribution::{ContinuousCDF, FisherSnedecor, StudentsT};

use super::super::common::Ci;
use super::super::error::StatsError;
use super::linalg::{bilinear, mat_vec, pidx};
use super::{ContrastResult, DdfMethod, FTestResult, invalid};

/// Everything needed to test linear combinations of `β`.
#[derive(Debug, Clone)]
pub(crate) struct Inference {
    pub beta: Vec<f64>,
    /// `Φ = (XᵀV̂⁻¹X)⁻¹`.
    pub phi: Mat<f64>,
    /// Covariance used for standard errors: `Φ`, or `Φ_A` for Kenward-Roger.
    pub vcov: Mat<f64>,
    /// `A_r = XᵀV⁻¹ V_r V⁻¹X`, so that `∂Φ/∂θ_r = Φ A_r Φ`.
    pub a_mats: Vec<Mat<f64>>,
    /// `W`: asymptotic covariance of `θ̂`, twice the inverse Hessian of `-2 log L`.
    pub w: Mat<f64>,
    pub ddf: DdfMethod,
    /// `n - rank(X)`.
    pub residual_df: f64,
    /// Between-within df of each coefficient.
    pub bw_df: Vec<f64>,
    pub conf_level: f64,
}

impl Inference {
    /// Satterthwaite df of `lᵀβ̂` from the unadjusted `Φ`:
    /// `2 (lᵀΦl)² / (gᵀ W g)`, `g_r = lᵀ Φ A_r Φ l`.
    fn satterthwaite_df(&self, l: &[f64]) -> f64 {
        let phi_l = mat_vec(&self.phi, l);
        let var: f64 = l.iter().zip(&phi_l).map(|(a, b)| a * b).sum();
        let g: Vec<f64> = self
            .a_mats
            .iter()
            .map(|a| bilinear(&phi_l, a, &phi_l))
            .collect();
        let denom = bilinear(&g, &self.w, &g);
        let df = 2.0 * var * var / denom;
        if df.is_finite() && df > 0.0 {
            df
        } else {
            f64::INFINITY
        }
    }

    /// Denominator df of a single contrast under the chosen method.
    fn df_1d(&self, l: &[f64]) -> f64 {
        match self.ddf {
            DdfMethod::Satterthwaite | DdfMethod::KenwardRoger => self.satterthwaite_df(l),
            DdfMethod::Residual => self.residual_df,
            DdfMethod::BetweenWithin => l
                .iter()
                .zip(&self.bw_df)
                .filter(|(c, _)| **c != 0.0)
                .map(|(_, d)| *d)
                .fold(f64::INFINITY, f64::min),
        }
    }

    /// t-test and two-sided confidence interval for `lᵀβ`.
    pub fn contrast(&self, l: &[f64]) -> Result<ContrastResult, StatsError> {
        let p = self.beta.len();
        if l.len() != p {
            return Err(invalid(
                "contrast",
                format!("contrast has {} coefficients, the model has {p}", l.len()),
            ));
        }
        if let Some(index) = l.iter().position(|v| !v.is_finite()) {
            return Err(StatsError::NonFiniteInput {
                what: "contrast",
                index,
                value: l[index],
            });
        }
        let estimate: f64 = l.iter().zip(&self.beta).map(|(a, b)| a * b).sum();
        let var = bilinear(l, &self.vcov, l);
        if var.is_nan() || var <= 0.0 {
            return Err(invalid(
                "contrast",
                "contrast has zero variance (all coefficients zero?)".to_string(),
            ));
        }
        let se = var.sqrt();
        let df = self.df_1d(l);
        let t = estimate / se;
        let (p_value, q) = t_tail_and_quantile(t, df, self.conf_level)?;
        Ok(ContrastResult {
            estimate,
            se,
            df,
            t,
            p_value,
            ci: Ci {
                lower: estimate - q * se,
                upper: estimate + q * se,
                level: self.conf_level,
            },
        })
    }

    /// F-test of `L β = 0` for a contrast matrix with one row per hypothesis.
    pub fn f_test(&self, rows: &[Vec<f64>]) -> Result<FTestResult, StatsError> {
        let p = self.beta.len();
        let c = rows.len();
        if c == 0 {
            return Err(StatsError::EmptyInput {
                what: "contrast matrix",
            });
        }
        if let Some(r) = rows.iter().find(|r| r.len() != p) {
            return Err(invalid(
                "contrast",
                format!(
                    "contrast row has {} coefficients, the model has {p}",
                    r.len()
                ),
            ));
        }
        if rows.iter().flatten().any(|v| !v.is_finite()) {
            return Err(invalid(
                "contrast",
                "contrast matrix has non-finite entries".to_string(),
            ));
        }
        let l = Mat::from_fn(c, p, |i, j| rows[i][j]);
        let lb: Vec<f64> = mat_vec(&l, &self.beta);
        // Rank check on L Φ Lᵀ.
        let lphil = &l * &self.phi * l.transpose();
        let eig = lphil
            .self_adjoint_eigen(Side::Lower)
            .map_err(|_| invalid("contrast", "eigen decomposition failed".to_string()))?;
        let s = eig.S();
        let vals: Vec<f64> = (0..c).map(|i| s[i]).collect();
        let max = vals.iter().copied().fold(0.0, f64::max);
        let tol = f64::EPSILON.sqrt() * max;
        if vals.iter().any(|&v| v <= tol) {
            return Err(invalid(
                "contrast",
                "contrast matrix is not of full row rank".to_string(),
            ));
        }
        let quad_form = |cov: &Mat<f64>| -> Result<f64, StatsError> {
            let m = &l * cov * l.transpose();
            let llt = m.llt(Side::Lower).map_err(|_| {
                invalid(
                    "contrast",
                    "contrast covariance is not positive definite".to_string(),
                )
            })?;
            let rhs = Mat::from_fn(c, 1, |i, _| lb[i]);
            let sol = faer::linalg::solvers::Solve::solve(&llt, &rhs);
            Ok((0..c).map(|i| lb[i] * sol[(i, 0)]).sum::<f64>() / c as f64)
        };
        let (f_value, den_df) = match self.ddf {
            DdfMethod::Satterthwaite => {
                let u = eig.U();
                let mut f_sum = 0.0;
                let mut dfs = Vec::with_capacity(c);
                for m in 0..c {
                    // Row m of Uᵀ L.
                    let row: Vec<f64> = (0..p)
                        .map(|j| (0..c).map(|i| u[(i, m)] * l[(i, j)]).sum())
                        .collect();
                    let est: f64 = row.iter().zip(&self.beta).map(|(a, b)| a * b).sum();
                    f_sum += est * est / vals[m];
                    dfs.push(self.satterthwaite_df(&row));
                }
                (f_sum / c as f64, md_denominator_df(&dfs))
            }
            DdfMethod::KenwardRoger => {
                let (m, lambda) = self.kenward_roger_df(&l)?;
                (lambda * quad_form(&self.vcov)?, m)
            }
            DdfMethod::Residual => (quad_form(&self.vcov)?, self.residual_df),
            DdfMethod::BetweenWithin => {
                let df = (0..p)
                    .filter(|&j| (0..c).any(|i| l[(i, j)] != 0.0))
                    .map(|j| self.bw_df[j])
                    .fold(f64::INFINITY, f64::min);
                (quad_form(&self.vcov)?, df)
            }
        };
        let p_value = if den_df.is_infinite() {
            // χ²_c / c limit.
            let chi = statrs::distribution::ChiSquared::new(c as f64)
                .map_err(|_| invalid("contrast", "invalid F distribution".to_string()))?;
            chi.sf(f_value * c as f64)
        } else {
            FisherSnedecor::new(c as f64, den_df)
                .map_err(|_| invalid("contrast", format!("invalid F df ({c}, {den_df})")))?
                .sf(f_value)
        };
        Ok(FTestResult {
            num_df: c,
            den_df,
            f_value,
            p_value,
        })
    }

    /// Kenward-Roger (1997) denominator df `m` and scale `λ` for `L β = 0`.
    fn kenward_roger_df(&self, l: &Mat<f64>) -> Result<(f64, f64), StatsError> {
        let c = l.nrows() as f64;
        let lphil = l * &self.phi * l.transpose();
        let llt = lphil.llt(Side::Lower).map_err(|_| {
            invalid(
                "contrast",
                "contrast covariance is not positive definite".to_string(),
            )
        })?;
        let inv = faer::linalg::solvers::DenseSolveCore::inverse(&llt);
        let theta = l.transpose() * &inv * l;
        let f: Vec<Mat<f64>> = self
            .a_mats
            .iter()
            .map(|a| &theta * &self.phi * a * &self.phi)
            .collect();
        let tr: Vec<f64> = f
            .iter()
            .map(|m| (0..m.nrows()).map(|i| m[(i, i)]).sum())
            .collect();
        let k = f.len();
        let mut a1 = 0.0;
        let mut a2 = 0.0;
        for h in 0..k {
            for j in 0..k {
                let w = self.w[(h, j)];
                a1 += w * tr[h] * tr[j];
                let prod = &f[h] * &f[j];
                a2 += w * (0..prod.nrows()).map(|i| prod[(i, i)]).sum::<f64>();
            }
        }
        let b = (a1 + 6.0 * a2) / (2.0 * c);
        let g = ((c + 1.0) * a1 - (c + 4.0) * a2) / ((c + 2.0) * a2);
        let denom = 3.0 * c + 2.0 - 2.0 * g;
        let c1 = g / denom;
        let c2 = (c - g) / denom;
        let c3 = (c + 2.0 - g) / denom;
        let e_star = 1.0 / (1.0 - a2 / c);
        let v_star = 2.0 / c * (1.0 + c1 * b) / ((1.0 - c2 * b).powi(2) * (1.0 - c3 * b));
        let rho = v_star / (2.0 * e_star * e_star);
        let m = 4.0 + (c + 2.0) / (c * rho - 1.0);
        let lambda = m / (e_star * (m - 2.0));
        if !(m.is_finite() && m > 0.0 && lambda.is_finite()) {
            return Err(invalid(
                "contrast",
                "Kenward-Roger degrees of freedom are not defined for this contrast".to_string(),
            ));
        }
        Ok((m, lambda))
    }
}

/// Kenward-Roger adjusted covariance (linear variant: second derivatives of
/// `Σ` dropped): `Φ_A = Φ + 2Φ {Σ_rs W_rs (Q_rs - A_r Φ A_s)} Φ`.
pub(crate) fn kenward_roger_vcov(
    phi: &Mat<f64>,
    a_mats: &[Mat<f64>],
    q_mats: &[Mat<f64>],
    w: &Mat<f64>,
) -> Mat<f64> {
    let p = phi.nrows();
    let k = a_mats.len();
    let mut inner = Mat::<f64>::zeros(p, p);
    let phi_a: Vec<Mat<f64>> = a_mats.iter().map(|a| phi * a).collect();
    for r in 0..k {
        for s in 0..k {
            let wrs = w[(r, s)];
            if wrs == 0.0 {
                continue;
            }
            let q = &q_mats[pidx(r, s)];
            let apa = &a_mats[r] * &phi_a[s];
            inner += (q - &apa) * faer::Scale(wrs);
        }
    }
    let adj = phi * &inner * phi;
    let mut out = phi + &adj * faer::Scale(2.0);
    // Symmetrize against rounding.
    for i in 0..p {
        for j in 0..i {
            let v = 0.5 * (out[(i, j)] + out[(j, i)]);
            out[(i, j)] = v;
            out[(j, i)] = v;
        }
    }
    out
}

/// mmrm's and SAS's combination of the per-eigen-direction Satterthwaite df
/// into one denominator df: `2E/(E - c)`, `E = Σ ν_m/(ν_m - 2)`.
fn md_denominator_df(dfs: &[f64]) -> f64 {
    let c = dfs.len();
    if c == 1 {
        return dfs[0];
    }
    let first = dfs[0];
    if dfs.iter().all(|d| (d - first).abs() < f64::EPSILON.sqrt()) {
        return dfs.iter().sum::<f64>() / c as f64;
    }
    if dfs.iter().any(|&d| d <= 2.0) {
        return 2.0;
    }
    let e: f64 = dfs.iter().map(|d| d / (d - 2.0)).sum();
    2.0 * e / (e - c as f64)
}

/// Two-sided p-value of `t` and the `1 - α/2` quantile for `df` degrees of
/// freedom (the normal limit for infinite `df`).
pub(crate) fn t_tail_and_quantile(
    t: f64,
    df: f64,
    conf_level: f64,
) -> Result<(f64, f64), StatsError> {
    if df.is_nan() || df <= 0.0 {
        return Err(StatsError::Undefined {
            what: "denominator degrees of freedom",
            reason: "not positive (too few subjects or observations for the method)",
        });
    }
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|_| StatsError::NonFiniteInput {
        what: "degrees of freedom",
        index: 0,
        value: df,
    })?;
    let p = (2.0 * dist.sf(t.abs())).min(1.0);
    let q = dist.inverse_cdf(1.0 - (1.0 - conf_level) / 2.0);
    Ok((p, q))
}
