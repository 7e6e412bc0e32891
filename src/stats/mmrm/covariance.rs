//! Covariance structures of the MMRM: the map from unconstrained parameters
//! `θ` to the visit-by-visit covariance matrix `Σ(θ)`, written once over a
//! generic scalar so that first and second derivatives come from hyper-dual
//! numbers (exact to rounding, no finite differences).

use std::ops::{Add, Div, Mul, Neg, Sub};

/// Covariance structure of the within-subject errors (SAS `TYPE=`, {mmrm}
/// function name in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CovStructure {
    /// Unstructured, `T(T+1)/2` parameters (SAS `UN`, {mmrm} `us`).
    #[default]
    Unstructured,
    /// Compound symmetry: one variance, one correlation (SAS `CS`, {mmrm} `cs`).
    CompoundSymmetry,
    /// Heterogeneous compound symmetry: `T` variances, one correlation
    /// (SAS `CSH`, {mmrm} `csh`).
    HeterogeneousCompoundSymmetry,
    /// First-order autoregressive: one variance, `ρ^|i-j|` (SAS `AR(1)`, {mmrm} `ar1`).
    Ar1,
    /// Heterogeneous AR(1): `T` variances (SAS `ARH(1)`, {mmrm} `ar1h`).
    HeterogeneousAr1,
    /// Toeplitz: one variance, `T - 1` lag correlations (SAS `TOEP`, {mmrm} `toep`).
    Toeplitz,
    /// Heterogeneous Toeplitz: `T` variances, `T - 1` lag correlations
    /// (SAS `TOEPH`, {mmrm} `toeph`).
    HeterogeneousToeplitz,
}

impl CovStructure {
    /// Every structure, in the order of the enum.
    pub const ALL: [CovStructure; 7] = [
        CovStructure::Unstructured,
        CovStructure::CompoundSymmetry,
        CovStructure::HeterogeneousCompoundSymmetry,
        CovStructure::Ar1,
        CovStructure::HeterogeneousAr1,
        CovStructure::Toeplitz,
        CovStructure::HeterogeneousToeplitz,
    ];

    /// The SAS `TYPE=` name.
    pub fn sas_name(self) -> &'static str {
        match self {
            CovStructure::Unstructured => "UN",
            CovStructure::CompoundSymmetry => "CS",
            CovStructure::HeterogeneousCompoundSymmetry => "CSH",
            CovStructure::Ar1 => "AR(1)",
            CovStructure::HeterogeneousAr1 => "ARH(1)",
            CovStructure::Toeplitz => "TOEP",
            CovStructure::HeterogeneousToeplitz => "TOEPH",
        }
    }

    /// Label of a fit with this structure, for errors (`"MMRM (UN covariance)"`).
    pub fn fit_label(self) -> &'static str {
        match self {
            CovStructure::Unstructured => "MMRM (UN covariance)",
            CovStructure::CompoundSymmetry => "MMRM (CS covariance)",
            CovStructure::HeterogeneousCompoundSymmetry => "MMRM (CSH covariance)",
            CovStructure::Ar1 => "MMRM (AR(1) covariance)",
            CovStructure::HeterogeneousAr1 => "MMRM (ARH(1) covariance)",
            CovStructure::Toeplitz => "MMRM (TOEP covariance)",
            CovStructure::HeterogeneousToeplitz => "MMRM (TOEPH covariance)",
        }
    }

    /// Number of covariance parameters for `n_visits` visits.
    pub fn n_parameters(self, n_visits: usize) -> usize {
        self.n_sd(n_visits) + self.n_corr(n_visits)
    }

    fn heterogeneous(self) -> bool {
        matches!(
            self,
            CovStructure::HeterogeneousCompoundSymmetry
                | CovStructure::HeterogeneousAr1
                | CovStructure::HeterogeneousToeplitz
        )
    }

    /// Number of standard-deviation parameters (not used for UN).
    fn n_sd(self, t: usize) -> usize {
        match self {
            CovStructure::Unstructured => 0,
            _ if self.heterogeneous() => t,
            _ => 1,
        }
    }

    /// Number of correlation parameters (for UN: all Cholesky entries).
    fn n_corr(self, t: usize) -> usize {
        match self {
            CovStructure::Unstructured => t * (t + 1) / 2,
            CovStructure::CompoundSymmetry
            | CovStructure::HeterogeneousCompoundSymmetry
            | CovStructure::Ar1
            | CovStructure::HeterogeneousAr1 => usize::from(t >= 2),
            CovStructure::Toeplitz | CovStructure::HeterogeneousToeplitz => t.saturating_sub(1),
        }
    }

    /// `Σ(θ)` as a dense row-major `t × t` matrix.
    ///
    /// Parametrization (all of `θ` unconstrained):
    /// * UN: `Σ = L Lᵀ`, `L` lower triangular filled row by row, diagonal
    ///   entries `exp(θ)` (log-Cholesky).
    /// * others: standard deviations `exp(θ)` (one, or one per visit), then
    ///   correlations: CS/CSH `ρ = -1/(T-1) + T/(T-1) · logistic(θ)`, AR(1)
    ///   `ρ = tanh(θ)`, Toeplitz: partial autocorrelations `tanh(θ_k)` mapped to
    ///   lag correlations by the Durbin-Levinson recursion (always positive
    ///   definite).
    pub(crate) fn sigma<S: Scalar>(self, theta: &[S], t: usize) -> Vec<S> {
        debug_assert_eq!(theta.len(), self.n_parameters(t));
        let mut out = vec![S::cst(0.0); t * t];
        if self == CovStructure::Unstructured {
            let mut l = vec![S::cst(0.0); t * t];
            let mut k = 0;
            for i in 0..t {
                for j in 0..=i {
                    l[i * t + j] = if i == j { theta[k].exp() } else { theta[k] };
                    k += 1;
                }
            }
            for a in 0..t {
                for b in 0..=a {
                    let mut s = S::cst(0.0);
                    for c in 0..=b {
                        s = s + l[a * t + c] * l[b * t + c];
                    }
                    out[a * t + b] = s;
                    out[b * t + a] = s;
                }
            }
            return out;
        }
        let n_sd = self.n_sd(t);
        let sd: Vec<S> = (0..t)
            .map(|i| {
                if n_sd == 1 {
                    theta[0].exp()
                } else {
                    theta[i].exp()
                }
            })
            .collect();
        let corr = &theta[n_sd..];
        // Correlation by lag 0..t-1.
        let lag_corr: Vec<S> = match self {
            CovStructure::CompoundSymmetry | CovStructure::HeterogeneousCompoundSymmetry => {
                let mut r = vec![S::cst(1.0); t];
                if t >= 2 {
                    let rho = cs_rho(corr[0], t);
                    for v in r.iter_mut().skip(1) {
                        *v = rho;
                    }
                }
                r
            }
            CovStructure::Ar1 | CovStructure::HeterogeneousAr1 => {
                let mut r = vec![S::cst(1.0); t];
                if t >= 2 {
                    let rho = corr[0].tanh();
                    for k in 1..t {
                        r[k] = r[k - 1] * rho;
                    }
                }
                r
            }
            _ => {
                let pacf: Vec<S> = corr.iter().map(|&c| c.tanh()).collect();
                pacf_to_acf(&pacf)
            }
        };
        for a in 0..t {
            for b in 0..=a {
                let v = sd[a] * sd[b] * lag_corr[a - b];
                out[a * t + b] = v;
                out[b * t + a] = v;
            }
        }
        out
    }

    /// Starting values from a (possibly indefinite, possibly incomplete:
    /// `NaN` where no pair was observed) moment estimate `cov` of `Σ`.
    /// `shrink` in [0, 1] pulls the correlations towards 0 (1 = independence).
    pub(crate) fn initial_theta(self, cov: &[f64], t: usize, shrink: f64) -> Vec<f64> {
        let var: Vec<f64> = (0..t).map(|i| cov[i * t + i]).collect();
        let mut corr = vec![0.0; t * t];
        for a in 0..t {
            for b in 0..t {
                let c = if a == b {
                    1.0
                } else {
                    let v = cov[a * t + b] / (var[a] * var[b]).sqrt();
                    if v.is_finite() {
                        (v * (1.0 - shrink)).clamp(-0.95, 0.95)
                    } else {
                        0.0
                    }
                };
                corr[a * t + b] = c;
            }
        }
        let mut theta = Vec::with_capacity(self.n_parameters(t));
        if self == CovStructure::Unstructured {
            // Shrink the correlation matrix towards the identity until it is
            // positive definite, then take the Cholesky factor.
            let mut lambda = 1.0;
            loop {
                let mut m = vec![0.0; t * t];
                for a in 0..t {
                    for b in 0..t {
                        let r = if a == b {
                            1.0
                        } else {
                            lambda * corr[a * t + b]
                        };
                        m[a * t + b] = r * (var[a] * var[b]).sqrt();
                    }
                }
                if super::linalg::cholesky_in_place(&mut m, t).is_ok() {
                    for i in 0..t {
                        for j in 0..=i {
                            let v = m[i * t + j];
                            theta.push(if i == j { v.ln() } else { v });
                        }
                    }
                    return theta;
                }
                lambda *= 0.5;
                if lambda < 1e-3 {
                    lambda = 0.0;
                }
            }
        }
        if self.n_sd(t) == 1 {
            let mean_var = var.iter().sum::<f64>() / t as f64;
            theta.push(0.5 * mean_var.ln());
        } else {
            theta.extend(var.iter().map(|v| 0.5 * v.ln()));
        }
        let lag_mean = |k: usize| -> f64 {
            if t <= k {
                return 0.0;
            }
            let s: f64 = (k..t).map(|a| corr[a * t + a - k]).sum();
            s / (t - k) as f64
        };
        match self {
            CovStructure::CompoundSymmetry | CovStructure::HeterogeneousCompoundSymmetry => {
                if t >= 2 {
                    let mut s = 0.0;
                    for a in 0..t {
                        for b in 0..a {
                            s += corr[a * t + b];
                        }
                    }
                    let rho = s / (t * (t - 1) / 2) as f64;
                    let lo = -1.0 / (t as f64 - 1.0);
                    let frac = ((rho - lo) / (1.0 - lo)).clamp(0.02, 0.98);
                    theta.push((frac / (1.0 - frac)).ln());
                }
            }
            CovStructure::Ar1 | CovStructure::HeterogeneousAr1 => {
                if t >= 2 {
                    theta.push(lag_mean(1).clamp(-0.9, 0.9).atanh());
                }
            }
            _ => {
                let acf: Vec<f64> = (0..t).map(lag_mean).collect();
                for p in acf_to_pacf(&acf) {
                    theta.push(p.atanh());
                }
            }
        }
        theta
    }

    /// Names of the parameters, for diagnostics.
    pub(crate) fn parameter_names(self, t: usize) -> Vec<String> {
        let mut names = Vec::new();
        if self == CovStructure::Unstructured {
            for i in 0..t {
                for j in 0..=i {
                    if i == j {
                        names.push(format!("log L[{},{}]", i + 1, i + 1));
                    } else {
                        names.push(format!("L[{},{}]", i + 1, j + 1));
                    }
                }
            }
            return names;
        }
        if self.n_sd(t) == 1 {
            names.push("log sd".to_string());
        } else {
            names.extend((1..=t).map(|i| format!("log sd[{i}]")));
        }
        match self {
            CovStructure::Toeplitz | CovStructure::HeterogeneousToeplitz => {
                names.extend((1..t).map(|k| format!("atanh pacf[lag {k}]")));
            }
            CovStructure::Ar1 | CovStructure::HeterogeneousAr1 if t >= 2 => {
                names.push("atanh rho".to_string());
            }
            _ if t >= 2 => names.push("logit rho (scaled)".to_string()),
            _ => {}
        }
        names
    }

    /// First derivatives `∂Σ/∂θ_r`, each a dense row-major `t × t` matrix.
    pub(crate) fn first_derivatives(self, theta: &[f64], t: usize) -> Vec<Vec<f64>> {
        let k = theta.len();
        (0..k)
            .map(|r| {
                let hd: Vec<HyperDual> = theta
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| HyperDual::seed(v, i == r, false))
                    .collect();
                self.sigma(&hd, t).iter().map(|h| h.e1).collect()
            })
            .collect()
    }

    /// Second derivatives `∂²Σ/∂θ_r∂θ_s` for `s ≤ r`, stored at packed index
    /// `r(r+1)/2 + s`.
    pub(crate) fn second_derivatives(self, theta: &[f64], t: usize) -> Vec<Vec<f64>> {
        let k = theta.len();
        let mut out = Vec::with_capacity(k * (k + 1) / 2);
        for r in 0..k {
            for s in 0..=r {
                let hd: Vec<HyperDual> = theta
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| HyperDual::seed(v, i == r, i == s))
                    .collect();
                out.push(self.sigma(&hd, t).iter().map(|h| h.e12).collect());
            }
        }
        out
    }
}

/// CS correlation: `(-1/(T-1), 1)` through the logistic function.
fn cs_rho<S: Scalar>(x: S, t: usize) -> S {
    let lo = -1.0 / (t as f64 - 1.0);
    S::cst(lo) + S::cst(1.0 - lo) * x.logistic()
}

/// Durbin-Levinson: partial autocorrelations `φ_1..φ_K` (|φ| < 1) to
/// autocorrelations `r_0 = 1, r_1..r_K`.
fn pacf_to_acf<S: Scalar>(pacf: &[S]) -> Vec<S> {
    let kmax = pacf.len();
    let mut r = vec![S::cst(1.0); kmax + 1];
    let mut a: Vec<S> = Vec::with_capacity(kmax);
    let mut v = S::cst(1.0);
    for k in 1..=kmax {
        let phi = pacf[k - 1];
        let mut s = S::cst(0.0);
        for j in 1..k {
            s = s + a[j - 1] * r[k - j];
        }
        r[k] = s + phi * v;
        let prev = a.clone();
        for j in 1..k {
            a[j - 1] = prev[j - 1] - phi * prev[k - j - 1];
        }
        a.push(phi);
        v = v * (S::cst(1.0) - phi * phi);
    }
    r
}

/// Inverse of [`pacf_to_acf`] for starting values; stops (zeros) once the
/// input is not a valid autocorrelation sequence, clipping to ±0.9.
fn acf_to_pacf(acf: &[f64]) -> Vec<f64> {
    let kmax = acf.len().saturating_sub(1);
    let mut out = vec![0.0; kmax];
    let mut a: Vec<f64> = Vec::new();
    let mut v = 1.0;
    for k in 1..=kmax {
        let mut s = 0.0;
        for j in 1..k {
            s += a[j - 1] * acf[k - j];
        }
        let phi = (acf[k] - s) / v;
        if !phi.is_finite() || phi.abs() >= 0.9 {
            out[k - 1] = if phi.is_finite() {
                phi.clamp(-0.9, 0.9)
            } else {
                0.0
            };
            break;
        }
        out[k - 1] = phi;
        let prev = a.clone();
        for j in 1..k {
            a[j - 1] = prev[j - 1] - phi * prev[k - j - 1];
        }
        a.push(phi);
        v *= 1.0 - phi * phi;
    }
    out
}

/// Arithmetic needed by [`CovStructure::sigma`].
pub(crate) trait Scalar:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    fn cst(v: f64) -> Self;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    fn logistic(self) -> Self;
}

impl Scalar for f64 {
    fn cst(v: f64) -> Self {
        v
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn logistic(self) -> Self {
        if self >= 0.0 {
            1.0 / (1.0 + (-self).exp())
        } else {
            let e = self.exp();
            e / (1.0 + e)
        }
    }
}

/// Hyper-dual number `re + e1·ε₁ + e2·ε₂ + e12·ε₁ε₂` with `ε₁² = ε₂² = 0`:
/// seeding `ε₁` along `θ_r` and `ε₂` along `θ_s` yields `f`, `∂_r f`, `∂_s f`
/// and `∂_r∂_s f` exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HyperDual {
    pub re: f64,
    pub e1: f64,
    pub e2: f64,
    pub e12: f64,
}

impl HyperDual {
    fn seed(v: f64, first: bool, second: bool) -> Self {
        HyperDual {
            re: v,
            e1: f64::from(u8::from(first)),
            e2: f64::from(u8::from(second)),
            e12: 0.0,
        }
    }

    /// Applies a scalar function with value `f0`, derivative `f1` and second
    /// derivative `f2` at `self.re`.
    fn chain(self, f0: f64, f1: f64, f2: f64) -> Self {
        HyperDual {
            re: f0,
            e1: f1 * self.e1,
            e2: f1 * self.e2,
            e12: f1 * self.e12 + f2 * self.e1 * self.e2,
        }
    }
}

impl Add for HyperDual {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        HyperDual {
            re: self.re + o.re,
            e1: self.e1 + o.e1,
            e2: self.e2 + o.e2,
            e12: self.e12 + o.e12,
        }
    }
}

impl Sub for HyperDual {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        HyperDual {
            re: self.re - o.re,
            e1: self.e1 - o.e1,
            e2: self.e2 - o.e2,
            e12: self.e12 - o.e12,
        }
    }
}

impl Mul for HyperDual {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        HyperDual {
            re: self.re * o.re,
            e1: self.re * o.e1 + self.e1 * o.re,
            e2: self.re * o.e2 + self.e2 * o.re,
            e12: self.re * o.e12 + self.e1 * o.e2 + self.e2 * o.e1 + self.e12 * o.re,
        }
    }
}

impl Div for HyperDual {
    type Output = Self;
    fn div(self, o: Self) -> Self {
        let inv = 1.0 / o.re;
        self * o.chain(inv, -inv * inv, 2.0 * inv * inv * inv)
    }
}

impl Neg for HyperDual {
    type Output = Self;
    fn neg(self) -> Self {
        HyperDual {
            re: -self.re,
            e1: -self.e1,
            e2: -self.e2,
            e12: -self.e12,
        }
    }
}

impl Scalar for HyperDual {
    fn cst(v: f64) -> Self {
        HyperDual {
            re: v,
            e1: 0.0,
            e2: 0.0,
            e12: 0.0,
        }
    }
    fn exp(self) -> Self {
        let e = self.re.exp();
        self.chain(e, e, e)
    }
    fn tanh(self) -> Self {
        let th = self.re.tanh();
        let d = 1.0 - th * th;
        self.chain(th, d, -2.0 * th * d)
    }
    fn logistic(self) -> Self {
        let s = Scalar::logistic(self.re);
        let d = s * (1.0 - s);
        self.chain(s, d, d * (1.0 - 2.0 * s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num_first(st: CovStructure, theta: &[f64], t: usize, r: usize) -> Vec<f64> {
        let h = 1e-6;
        let mut tp = theta.to_vec();
        let mut tm = theta.to_vec();
        tp[r] += h;
        tm[r] -= h;
        let sp = st.sigma(&tp, t);
        let sm = st.sigma(&tm, t);
        sp.iter()
            .zip(&sm)
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect()
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let t = 4;
        for st in CovStructure::ALL {
            let k = st.n_parameters(t);
            let theta: Vec<f64> = (0..k).map(|i| 0.3 - 0.17 * i as f64).collect();
            let d1 = st.first_derivatives(&theta, t);
            let d2 = st.second_derivatives(&theta, t);
            for r in 0..k {
                let num = num_first(st, &theta, t, r);
                for (a, b) in d1[r].iter().zip(&num) {
                    assert!(
                        (a - b).abs() < 1e-6 * (1.0 + a.abs()),
                        "{st:?} d{r}: {a} {b}"
                    );
                }
                for s in 0..=r {
                    // d/dθ_s of the analytic first derivative along r.
                    let h = 1e-6;
                    let mut tp = theta.clone();
                    let mut tm = theta.clone();
                    tp[s] += h;
                    tm[s] -= h;
                    let dp = st.first_derivatives(&tp, t);
                    let dm = st.first_derivatives(&tm, t);
                    for (idx, v) in d2[r * (r + 1) / 2 + s].iter().enumerate() {
                        let num = (dp[r][idx] - dm[r][idx]) / (2.0 * h);
                        assert!((v - num).abs() < 1e-5 * (1.0 + v.abs()), "{st:?} d{r}{s}");
                    }
                }
            }
        }
    }

    #[test]
    fn structures_are_positive_definite_and_round_trip() {
        let t = 5;
        for st in CovStructure::ALL {
            let k = st.n_parameters(t);
            let theta: Vec<f64> = (0..k).map(|i| 1.5 * (i as f64 * 1.3).sin()).collect();
            let mut s = st.sigma(&theta, t);
            let sigma = s.clone();
            assert!(
                super::super::linalg::cholesky_in_place(&mut s, t).is_ok(),
                "{st:?}"
            );
            // Starting values from the exact Σ reproduce Σ (within clipping).
            let th0 = st.initial_theta(&sigma, t, 0.0);
            assert_eq!(th0.len(), k);
        }
        // Toeplitz lag correlations survive the PACF round trip.
        let acf = [1.0, 0.5, 0.2, 0.1];
        let pacf = acf_to_pacf(&acf);
        let back = pacf_to_acf(&pacf);
        for (a, b) in acf.iter().zip(&back) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
