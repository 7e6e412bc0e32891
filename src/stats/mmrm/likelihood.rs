//! The (restricted) likelihood of the MMRM, its analytic gradient and
//! Hessian with respect to the covariance parameters, and the matrices that
//! Satterthwaite and Kenward-Roger inference need.
//!
//! Subjects are grouped by missingness pattern (the set of visits they
//! have). Every quantity is a sum over patterns of terms in the pattern's
//! `Σ_k⁻¹ = W_k` (one small Cholesky per pattern and evaluation) and in the
//! data through `Σ_i Z_iᵀ M Z_i` ("quad") or `Σ_i Z_i N Z_iᵀ` ("tquad"),
//! where `Z_i = [X_i | y_i]`. For patterns shared by many subjects the
//! cross-products `Σ_i z_ia z_ibᵀ` are summed once, so that an evaluation
//! costs nothing per subject; rare patterns keep their rows. The sums over
//! subjects (building the cross-products, and the per-subject rows of rare
//! patterns) run in parallel in fixed chunks reduced in order
//! (`super::parallel`), so results do not depend on the number of threads.
//!
//! With `P = V⁻¹ - V⁻¹XΦXᵀV⁻¹`, `Φ = (XᵀV⁻¹X)⁻¹`, `r = y - Xβ̂`:
//! * `-2ℓ_R = (n-p) log 2π + log|V| + log|XᵀV⁻¹X| + rᵀV⁻¹r` (REML),
//!   `-2ℓ = n log 2π + log|V| + rᵀV⁻¹r` (ML, β profiled);
//! * gradient `tr(P V_r) - yᵀP V_r P y` (ML: `tr(V⁻¹V_r) - rᵀV⁻¹V_rV⁻¹r`);
//! * Hessian `tr(P V_rs) - tr(P V_r P V_s) + 2 yᵀP V_r P V_s P y - yᵀP V_rs P y`
//!   (ML: the same with `V⁻¹` for `P` in the traces, plus the profiling term).

use std::collections::BTreeMap;

use faer::Mat;

use super::covariance::CovStructure;
use super::design::Design;
use super::linalg::{
    cholesky_in_place, cholesky_inverse, cholesky_logdet, frobenius, matmul, packed_block,
    packed_len, pidx, scatter_add, submatrix, symmetrize, trace_of_product,
};
use super::parallel;
use super::{Estimation, StoragePolicy};

/// Data of one missingness pattern.
#[derive(Debug, Clone)]
enum PatternData {
    /// Per visit pair `a ≤ b` (packed index), the packed symmetric `q × q`
    /// matrix `Σ_i z_ia z_iaᵀ` (`a = b`) or `Σ_i (z_ia z_ibᵀ + z_ib z_iaᵀ)`.
    Aggregated(Vec<Vec<f64>>),
    /// The rows `z_ia` of every subject, subject-major, `n_k × t_k × q`.
    PerSubject(Vec<f64>),
}

/// Subjects sharing one set of observed visits.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// Observed visit indices, increasing.
    pub visits: Vec<usize>,
    /// Number of subjects with this pattern.
    pub n_subjects: usize,
    data: PatternData,
}

/// Cached per-pattern quantities of one evaluation.
struct PatternState {
    /// `W_k = Σ_k⁻¹`, dense `t_k × t_k`.
    w: Vec<f64>,
    /// `M_k = n_k W_k - W_k (S_k + R_k) W_k` (gradient weight).
    m: Vec<f64>,
}

/// The parameters that derivatives (gradient, Hessian, `A_r`, Kenward-Roger
/// matrices) are taken with respect to. At a stationary point every
/// inference quantity is invariant to this choice; away from it (a fit at
/// fixed covariance parameters) the Hessian is not, and SAS uses the
/// elements of `Σ` for `TYPE=UN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// The structure's unconstrained parameters `θ` (used for optimizing).
    Theta,
    /// The distinct elements `σ_ij` (`i ≥ j`, row by row) of an unstructured
    /// `Σ`; `Σ` is linear in them, so second derivatives vanish.
    SigmaElements,
}

/// How much of the derivative information to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Order {
    Value,
    Gradient,
    Hessian,
}

/// Result of one evaluation at `θ`.
#[derive(Debug, Clone)]
pub(crate) struct Eval {
    /// `-2 log L` (REML or ML), including the `2π` constant.
    pub value: f64,
    /// GLS estimate `β̂(θ)`.
    pub beta: Vec<f64>,
    /// `Φ = (XᵀV⁻¹X)⁻¹`.
    pub phi: Mat<f64>,
    /// Gradient of `value` (empty below `Order::Gradient`).
    pub gradient: Vec<f64>,
    /// Hessian of `value`, dense `k × k` (empty below `Order::Hessian`).
    pub hessian: Vec<f64>,
    /// `A_r = XᵀV⁻¹ V_r V⁻¹X = -∂(XᵀV⁻¹X)/∂θ_r` (Hessian order only).
    pub a_mats: Vec<Mat<f64>>,
}

/// The fitting problem: patterns, sizes and the model choices.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    /// Number of fixed effects.
    pub p: usize,
    /// `p + 1` (design columns and the response).
    pub q: usize,
    /// Number of visits.
    pub t: usize,
    /// Number of observations.
    pub n_obs: usize,
    pub structure: CovStructure,
    pub estimation: Estimation,
    pub patterns: Vec<Pattern>,
    /// Derivative parameters.
    pub basis: Basis,
}

impl Problem {
    /// Groups the design's subjects by missingness pattern.
    pub fn new(
        design: &Design,
        structure: CovStructure,
        estimation: Estimation,
        storage: StoragePolicy,
    ) -> Problem {
        let p = design.p();
        let q = p + 1;
        let t = design.visit_levels.len();
        // Rows of each subject (compressed: offsets into one index array), ordered by visit.
        let ns = design.n_subjects;
        let mut offsets = vec![0usize; ns + 1];
        for &s in &design.subject {
            offsets[s + 1] += 1;
        }
        for s in 0..ns {
            offsets[s + 1] += offsets[s];
        }
        let mut fill = offsets.clone();
        let mut order = vec![0usize; design.subject.len()];
        for (k, &s) in design.subject.iter().enumerate() {
            order[fill[s]] = k;
            fill[s] += 1;
        }
        for s in 0..ns {
            order[offsets[s]..offsets[s + 1]].sort_by_key(|&k| design.visit[k]);
        }
        let rows = |s: usize| &order[offsets[s]..offsets[s + 1]];
        let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
        let mut key: Vec<usize> = Vec::with_capacity(t);
        for s in 0..ns {
            key.clear();
            key.extend(rows(s).iter().map(|&k| design.visit[k]));
            match groups.get_mut(key.as_slice()) {
                Some(members) => members.push(s),
                None => {
                    groups.insert(key.clone(), vec![s]);
                }
            }
        }
        let z_row = |k: usize, out: &mut Vec<f64>| {
            out.extend_from_slice(&design.x[k * p..(k + 1) * p]);
            out.push(design.y[k]);
        };
        let patterns = groups
            .into_iter()
            .map(|(visits, subjects)| {
                let tk = visits.len();
                let nk = subjects.len();
                let aggregated_cost = packed_len(tk) * packed_len(q);
                let per_subject_cost = nk * tk * q * (tk + q.div_ceil(2));
                let aggregate = match storage {
                    StoragePolicy::Auto => aggregated_cost <= per_subject_cost,
                    StoragePolicy::Aggregated => true,
                    StoragePolicy::PerSubject => false,
                };
                let data = if aggregate {
                    // Block (a, b) of the packed visit pairs, each a packed q × q matrix.
                    let bl = packed_len(q);
                    let mut flat = vec![0.0; packed_len(tk) * bl];
                    parallel::sum_into(nk, &mut flat, |range, acc| {
                        let mut z = Vec::with_capacity(tk * q);
                        for &s in &subjects[range] {
                            z.clear();
                            for &k in rows(s) {
                                z_row(k, &mut z);
                            }
                            for a in 0..tk {
                                let za = &z[a * q..(a + 1) * q];
                                for b in a..tk {
                                    let zb = &z[b * q..(b + 1) * q];
                                    let o = pidx(a, b) * bl;
                                    let block = &mut acc[o..o + bl];
                                    if a == b {
                                        for c in 0..q {
                                            for d in 0..=c {
                                                block[pidx(c, d)] += za[c] * za[d];
                                            }
                                        }
                                    } else {
                                        for c in 0..q {
                                            for d in 0..=c {
                                                block[pidx(c, d)] += za[c] * zb[d] + zb[c] * za[d];
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    });
                    PatternData::Aggregated(flat.chunks_exact(bl).map(<[f64]>::to_vec).collect())
                } else {
                    let mut z = Vec::with_capacity(nk * tk * q);
                    for &s in &subjects {
                        for &k in rows(s) {
                            z_row(k, &mut z);
                        }
                    }
                    PatternData::PerSubject(z)
                };
                Pattern {
                    visits,
                    n_subjects: nk,
                    data,
                }
            })
            .collect();
        Problem {
            p,
            q,
            t,
            n_obs: design.n_obs(),
            structure,
            estimation,
            patterns,
            basis: Basis::Theta,
        }
    }

    /// `∂Σ/∂ψ_r` for the derivative basis `ψ`, dense `t × t` each.
    fn first_derivatives(&self, theta: &[f64]) -> Vec<Vec<f64>> {
        let t = self.t;
        match self.basis {
            Basis::Theta => self.structure.first_derivatives(theta, t),
            Basis::SigmaElements => {
                let mut out = Vec::with_capacity(t * (t + 1) / 2);
                for i in 0..t {
                    for j in 0..=i {
                        let mut d = vec![0.0; t * t];
                        d[i * t + j] = 1.0;
                        d[j * t + i] = 1.0;
                        out.push(d);
                    }
                }
                out
            }
        }
    }

    /// `∂²Σ/∂ψ_r∂ψ_s` (packed, `s ≤ r`); `None` when they all vanish.
    fn second_derivatives(&self, theta: &[f64]) -> Option<Vec<Vec<f64>>> {
        match self.basis {
            Basis::Theta => Some(self.structure.second_derivatives(theta, self.t)),
            Basis::SigmaElements => None,
        }
    }

    /// Number of covariance parameters.
    pub fn n_theta(&self) -> usize {
        self.structure.n_parameters(self.t)
    }

    /// `out += scale · Σ_i Z_iᵀ M Z_i` (packed `q × q`) for a symmetric dense `t_k × t_k` `M`.
    fn quad_into(&self, pat: &Pattern, m: &[f64], out: &mut [f64], scale: f64) {
        let tk = pat.visits.len();
        let q = self.q;
        match &pat.data {
            PatternData::Aggregated(blocks) => {
                for a in 0..tk {
                    for b in a..tk {
                        let coef = scale * m[a * tk + b];
                        if coef == 0.0 {
                            continue;
                        }
                        for (o, h) in out.iter_mut().zip(&blocks[pidx(a, b)]) {
                            *o += coef * h;
                        }
                    }
                }
            }
            PatternData::PerSubject(z) => {
                let stride = tk * q;
                parallel::sum_into(pat.n_subjects, out, |range, out| {
                    let mut y = vec![0.0; stride];
                    for zi in z[range.start * stride..range.end * stride].chunks_exact(stride) {
                        // y = M Z_i
                        y.iter_mut().for_each(|v| *v = 0.0);
                        for a in 0..tk {
                            for b in 0..tk {
                                let mab = m[a * tk + b];
                                for c in 0..q {
                                    y[a * q + c] += mab * zi[b * q + c];
                                }
                            }
                        }
                        for a in 0..tk {
                            for c in 0..q {
                                let zac = scale * zi[a * q + c];
                                if zac == 0.0 {
                                    continue;
                                }
                                let base = c * (c + 1) / 2;
                                for d in 0..=c {
                                    out[base + d] += zac * y[a * q + d];
                                }
                            }
                        }
                    }
                });
            }
        }
    }

    /// `Σ_i Z_i N Z_iᵀ` (dense symmetric `t_k × t_k`) for a packed symmetric `q × q` `N`.
    fn tquad(&self, pat: &Pattern, n_packed: &[f64]) -> Vec<f64> {
        let tk = pat.visits.len();
        let q = self.q;
        let mut out = vec![0.0; tk * tk];
        match &pat.data {
            PatternData::Aggregated(blocks) => {
                // Off-diagonal entries of N count twice in the Frobenius product.
                let mut weights = n_packed.to_vec();
                for c in 0..q {
                    for d in 0..c {
                        weights[pidx(c, d)] *= 2.0;
                    }
                }
                for a in 0..tk {
                    for b in a..tk {
                        let f = frobenius(&weights, &blocks[pidx(a, b)]);
                        if a == b {
                            out[a * tk + a] = f;
                        } else {
                            out[a * tk + b] = 0.5 * f;
                            out[b * tk + a] = 0.5 * f;
                        }
                    }
                }
            }
            PatternData::PerSubject(z) => {
                let mut dense = vec![0.0; q * q];
                for c in 0..q {
                    for d in 0..q {
                        dense[c * q + d] = n_packed[pidx(c, d)];
                    }
                }
                let stride = tk * q;
                parallel::sum_into(pat.n_subjects, &mut out, |range, out| {
                    for zi in z[range.start * stride..range.end * stride].chunks_exact(stride) {
                        let v = matmul(zi, &dense, tk, q, q);
                        for a in 0..tk {
                            for b in 0..=a {
                                let s: f64 = (0..q).map(|c| v[a * q + c] * zi[b * q + c]).sum();
                                out[a * tk + b] += s;
                                if a != b {
                                    out[b * tk + a] += s;
                                }
                            }
                        }
                    }
                });
            }
        }
        out
    }

    /// Evaluates `-2 log L` and, by `order`, its gradient and Hessian. `None`
    /// when `Σ(θ)` or `XᵀV⁻¹X` is not numerically positive definite.
    pub fn evaluate(&self, theta: &[f64], order: Order) -> Option<Eval> {
        let (p, q, t) = (self.p, self.q, self.t);
        if theta.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let sigma = self.structure.sigma(theta, t);
        let mut zvz = vec![0.0; packed_len(q)];
        let mut logdet_v = 0.0;
        let mut states: Vec<PatternState> = Vec::with_capacity(self.patterns.len());
        for pat in &self.patterns {
            let tk = pat.visits.len();
            let mut l = submatrix(&sigma, t, &pat.visits);
            cholesky_in_place(&mut l, tk).ok()?;
            logdet_v += pat.n_subjects as f64 * cholesky_logdet(&l, tk);
            let w = cholesky_inverse(&l, tk);
            self.quad_into(pat, &w, &mut zvz, 1.0);
            states.push(PatternState { w, m: Vec::new() });
        }
        // Cholesky of XᵀV⁻¹X, GLS estimate and residual quadratic form.
        let mut lx = vec![0.0; p * p];
        for i in 0..p {
            for j in 0..p {
                lx[i * p + j] = zvz[pidx(i, j)];
            }
        }
        cholesky_in_place(&mut lx, p).ok()?;
        let xvy: Vec<f64> = (0..p).map(|i| zvz[pidx(p, i)]).collect();
        let yvy = zvz[pidx(p, p)];
        // Forward substitution: L w = XᵀV⁻¹y.
        let mut wv = vec![0.0; p];
        for i in 0..p {
            let s: f64 = (0..i).map(|k| lx[i * p + k] * wv[k]).sum();
            wv[i] = (xvy[i] - s) / lx[i * p + i];
        }
        // Back substitution: Lᵀ β = w.
        let mut beta = vec![0.0; p];
        for i in (0..p).rev() {
            let s: f64 = ((i + 1)..p).map(|k| lx[k * p + i] * beta[k]).sum();
            beta[i] = (wv[i] - s) / lx[i * p + i];
        }
        let rvr = (yvy - wv.iter().map(|v| v * v).sum::<f64>()).max(0.0);
        let n = self.n_obs as f64;
        let two_pi = (2.0 * std::f64::consts::PI).ln();
        let value = match self.estimation {
            Estimation::Reml => (n - p as f64) * two_pi + logdet_v + cholesky_logdet(&lx, p) + rvr,
            Estimation::Ml => n * two_pi + logdet_v + rvr,
        };
        if !value.is_finite() {
            return None;
        }
        let phi_dense = cholesky_inverse(&lx, p);
        let phi = Mat::from_fn(p, p, |i, j| phi_dense[i * p + j]);
        let mut eval = Eval {
            value,
            beta,
            phi,
            gradient: Vec::new(),
            hessian: Vec::new(),
            a_mats: Vec::new(),
        };
        if order == Order::Value {
            return Some(eval);
        }

        // Gradient: g_r = tr(D_r M), M = Σ_k embed(n_k W_k - W_k (S_k + R_k) W_k).
        let reml = self.estimation == Estimation::Reml;
        let mut u = eval.beta.iter().map(|b| -b).collect::<Vec<f64>>();
        u.push(1.0);
        let mut n_packed = vec![0.0; packed_len(q)];
        for c in 0..q {
            for d in 0..=c {
                let mut v = u[c] * u[d];
                if reml && c < p {
                    v += phi_dense[c * p + d];
                }
                n_packed[pidx(c, d)] = v;
            }
        }
        let mut m_full = vec![0.0; t * t];
        for (pat, st) in self.patterns.iter().zip(states.iter_mut()) {
            let tk = pat.visits.len();
            let sr = self.tquad(pat, &n_packed);
            let wsr = matmul(&st.w, &sr, tk, tk, tk);
            let wsrw = matmul(&wsr, &st.w, tk, tk, tk);
            let nk = pat.n_subjects as f64;
            let mut m: Vec<f64> = st.w.iter().zip(&wsrw).map(|(w, x)| nk * w - x).collect();
            symmetrize(&mut m, tk);
            scatter_add(&mut m_full, t, &pat.visits, &m, 1.0);
            st.m = m;
        }
        let d1 = self.first_derivatives(theta);
        eval.gradient = d1.iter().map(|d| frobenius(d, &m_full)).collect();
        if order == Order::Gradient {
            return Some(eval);
        }

        // Hessian.
        let k = d1.len();
        let mut hess = vec![0.0; k * k];
        if let Some(d2) = self.second_derivatives(theta) {
            for r in 0..k {
                for s in 0..=r {
                    let v = frobenius(&d2[pidx(r, s)], &m_full);
                    hess[r * k + s] = v;
                    hess[s * k + r] = v;
                }
            }
        }
        // B_s = Σ_k embed(W_k D_s (n_k W_k - 2 M_k)) and K_s = Σ_k quad(W_k D_s W_k).
        let mut b_full: Vec<Vec<f64>> = Vec::with_capacity(k);
        let mut k_packed: Vec<Vec<f64>> = Vec::with_capacity(k);
        for d in &d1 {
            let mut bf = vec![0.0; t * t];
            let mut kp = vec![0.0; packed_len(q)];
            for (pat, st) in self.patterns.iter().zip(&states) {
                let tk = pat.visits.len();
                let dk = submatrix(d, t, &pat.visits);
                let wd = matmul(&st.w, &dk, tk, tk, tk);
                let nk = pat.n_subjects as f64;
                let right: Vec<f64> =
                    st.w.iter()
                        .zip(&st.m)
                        .map(|(w, m)| nk * w - 2.0 * m)
                        .collect();
                let bk = matmul(&wd, &right, tk, tk, tk);
                scatter_add(&mut bf, t, &pat.visits, &bk, 1.0);
                let mut wdw = matmul(&wd, &st.w, tk, tk, tk);
                symmetrize(&mut wdw, tk);
                self.quad_into(pat, &wdw, &mut kp, 1.0);
            }
            b_full.push(bf);
            k_packed.push(kp);
        }
        let a_mats: Vec<Mat<f64>> = k_packed.iter().map(|kp| packed_block(kp, p)).collect();
        let a_vecs: Vec<Vec<f64>> = k_packed
            .iter()
            .map(|kp| {
                (0..p)
                    .map(|c| (0..q).map(|d| kp[pidx(c, d)] * u[d]).sum())
                    .collect()
            })
            .collect();
        let phi_a: Vec<Vec<f64>> = a_vecs
            .iter()
            .map(|a| super::linalg::mat_vec(&eval.phi, a))
            .collect();
        let c_mats: Vec<Vec<f64>> = if reml {
            a_mats
                .iter()
                .map(|a| super::linalg::to_dense(&(&eval.phi * a)))
                .collect()
        } else {
            Vec::new()
        };
        for r in 0..k {
            for s in 0..=r {
                let mut v = trace_of_product(&d1[r], &b_full[s], t);
                if reml {
                    v -= trace_of_product(&c_mats[r], &c_mats[s], p);
                }
                v -= 2.0
                    * a_vecs[r]
                        .iter()
                        .zip(&phi_a[s])
                        .map(|(x, y)| x * y)
                        .sum::<f64>();
                hess[r * k + s] += v;
                if r != s {
                    hess[s * k + r] += v;
                }
            }
        }
        symmetrize(&mut hess, k);
        eval.hessian = hess;
        eval.a_mats = a_mats;
        Some(eval)
    }

    /// Kenward-Roger `Q_rs = XᵀV⁻¹ V_r V⁻¹ V_s V⁻¹X` (symmetrized), for
    /// `s ≤ r` at packed index `r(r+1)/2 + s`.
    pub fn kr_q_matrices(&self, theta: &[f64]) -> Option<Vec<Mat<f64>>> {
        let (p, q, t) = (self.p, self.q, self.t);
        let sigma = self.structure.sigma(theta, t);
        let d1 = self.first_derivatives(theta);
        let k = d1.len();
        let mut acc = vec![vec![0.0; packed_len(q)]; packed_len(k)];
        for pat in &self.patterns {
            let tk = pat.visits.len();
            let mut l = submatrix(&sigma, t, &pat.visits);
            cholesky_in_place(&mut l, tk).ok()?;
            let w = cholesky_inverse(&l, tk);
            let wd: Vec<Vec<f64>> = d1
                .iter()
                .map(|d| matmul(&w, &submatrix(d, t, &pat.visits), tk, tk, tk))
                .collect();
            for r in 0..k {
                for s in 0..=r {
                    let wdwd = matmul(&wd[r], &wd[s], tk, tk, tk);
                    let mut m = matmul(&wdwd, &w, tk, tk, tk);
                    symmetrize(&mut m, tk);
                    self.quad_into(pat, &m, &mut acc[pidx(r, s)], 1.0);
                }
            }
        }
        Some(acc.iter().map(|a| packed_block(a, p)).collect())
    }

    /// Moment estimate of `Σ` from ordinary least-squares residuals: for
    /// each visit pair, the mean cross-product over the subjects observed at
    /// both visits (`NaN` where no subject is).
    pub fn moment_covariance(&self) -> Option<Vec<f64>> {
        let (p, q, t) = (self.p, self.q, self.t);
        let mut ztz = vec![0.0; packed_len(q)];
        for pat in &self.patterns {
            let tk = pat.visits.len();
            let mut eye = vec![0.0; tk * tk];
            for a in 0..tk {
                eye[a * tk + a] = 1.0;
            }
            self.quad_into(pat, &eye, &mut ztz, 1.0);
        }
        let mut l = vec![0.0; p * p];
        for i in 0..p {
            for j in 0..p {
                l[i * p + j] = ztz[pidx(i, j)];
            }
        }
        cholesky_in_place(&mut l, p).ok()?;
        let inv = cholesky_inverse(&l, p);
        let xty: Vec<f64> = (0..p).map(|i| ztz[pidx(p, i)]).collect();
        let beta = matmul(&inv, &xty, p, p, 1);
        let mut u: Vec<f64> = beta.iter().map(|b| -b).collect();
        u.push(1.0);
        let mut uu = vec![0.0; packed_len(q)];
        for c in 0..q {
            for d in 0..=c {
                uu[pidx(c, d)] = u[c] * u[d];
            }
        }
        let mut sum = vec![0.0; t * t];
        let mut count = vec![0.0; t * t];
        for pat in &self.patterns {
            let tk = pat.visits.len();
            let rr = self.tquad(pat, &uu);
            scatter_add(&mut sum, t, &pat.visits, &rr, 1.0);
            let ones = vec![1.0; tk * tk];
            scatter_add(&mut count, t, &pat.visits, &ones, pat.n_subjects as f64);
        }
        Some(
            sum.iter()
                .zip(&count)
                .map(|(s, c)| if *c > 0.0 { s / c } else { f64::NAN })
                .collect(),
        )
    }
}
