//! Small dense linear algebra for the model fits in this module (Cox
//! information matrices, ANCOVA design matrices): a Cholesky (LDLᵀ)
//! factorisation with a rank check, as `survival`'s `cholesky2`, and a
//! Householder QR least-squares solver with R's `lm` rank tolerance.
//!
//! Matrices are `Vec<Vec<f64>>` in row-major order; sizes are a handful of
//! columns, so clarity wins over blocking or cache tricks.

// Index loops mirror the triangular formulas (and `cholesky2`) they transcribe.
#![allow(clippy::needless_range_loop)]

use super::error::StatsError;

/// A square matrix, row-major.
pub(crate) type Matrix = Vec<Vec<f64>>;

/// `n × n` zero matrix.
pub(crate) fn zeros(n: usize, m: usize) -> Matrix {
    vec![vec![0.0; m]; n]
}

/// LDLᵀ factorisation of a symmetric positive-definite matrix, computed as
/// `survival`'s `cholesky2`: `l` holds the unit lower factor below the
/// diagonal and `D` on the diagonal.
pub(crate) struct Cholesky {
    l: Matrix,
}

impl Cholesky {
    /// Factorises `a` (only its lower triangle is read). A pivot below
    /// `toler × max(diag)` (or non-finite) means the matrix is singular to
    /// working precision: `StatsError::Singular`.
    pub(crate) fn new(a: &Matrix, toler: f64, what: &'static str) -> Result<Self, StatsError> {
        let n = a.len();
        let mut l = a.clone();
        for i in 0..n {
            for j in (i + 1)..n {
                l[i][j] = l[j][i];
            }
        }
        let mut eps = (0..n).map(|i| l[i][i]).fold(0.0_f64, f64::max);
        eps = if eps == 0.0 { toler } else { eps * toler };
        for i in 0..n {
            let pivot = l[i][i];
            if !pivot.is_finite() || pivot < eps {
                return Err(StatsError::Singular { what });
            }
            for j in (i + 1)..n {
                let temp = l[j][i] / pivot;
                l[j][i] = temp;
                l[j][j] -= temp * temp * pivot;
                for k in (j + 1)..n {
                    l[k][j] -= temp * l[k][i];
                }
            }
        }
        Ok(Self { l })
    }

    /// Solves `A x = b` (as `chsolve2`).
    pub(crate) fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.l.len();
        let l = &self.l;
        let mut y = b.to_vec();
        for i in 0..n {
            let mut temp = y[i];
            for j in 0..i {
                temp -= y[j] * l[i][j];
            }
            y[i] = temp;
        }
        for i in (0..n).rev() {
            let mut temp = y[i] / l[i][i];
            for j in (i + 1)..n {
                temp -= y[j] * l[j][i];
            }
            y[i] = temp;
        }
        y
    }

    /// `A⁻¹`, column by column.
    pub(crate) fn inverse(&self) -> Matrix {
        let n = self.l.len();
        let mut inv = zeros(n, n);
        for c in 0..n {
            let mut e = vec![0.0; n];
            e[c] = 1.0;
            let col = self.solve(&e);
            for (r, v) in col.into_iter().enumerate() {
                inv[r][c] = v;
            }
        }
        // Symmetrise away rounding noise.
        for i in 0..n {
            for j in 0..i {
                let m = 0.5 * (inv[i][j] + inv[j][i]);
                inv[i][j] = m;
                inv[j][i] = m;
            }
        }
        inv
    }
}

/// Quadratic form `xᵀ A x`.
pub(crate) fn quad_form(a: &Matrix, x: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, row) in a.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            s += x[i] * v * x[j];
        }
    }
    s
}

/// Result of an ordinary least-squares fit by Householder QR.
pub(crate) struct LeastSquares {
    /// Coefficients, in column order.
    pub(crate) coef: Vec<f64>,
    /// `(XᵀX)⁻¹`.
    pub(crate) xtx_inv: Matrix,
    /// Residual sum of squares.
    pub(crate) rss: f64,
}

/// Least squares `min ‖y − X b‖` for an `n × p` design given as columns.
///
/// A column whose norm, after removing its projection on the earlier columns,
/// falls below `1e-7` times its original norm is linearly dependent (R's
/// `lm` tolerance `tol = 1e-7` in `dqrdc2`): `StatsError::Singular`, where R
/// would silently report an `NA` coefficient.
pub(crate) fn least_squares(
    columns: &[Vec<f64>],
    y: &[f64],
    what: &'static str,
) -> Result<LeastSquares, StatsError> {
    const TOL: f64 = 1e-7;
    let p = columns.len();
    let n = y.len();
    let mut a: Vec<Vec<f64>> = columns.to_vec();
    let mut qty = y.to_vec();
    let norms: Vec<f64> = a.iter().map(|c| norm(c)).collect();
    for k in 0..p {
        // Householder reflection zeroing a[k][k+1..].
        let alpha = norm(&a[k][k..]);
        if norms[k] == 0.0 || alpha <= TOL * norms[k] {
            return Err(StatsError::Singular { what });
        }
        let sign = if a[k][k] >= 0.0 { 1.0 } else { -1.0 };
        let mut v: Vec<f64> = a[k][k..].to_vec();
        v[0] += sign * alpha;
        let vnorm2: f64 = v.iter().map(|x| x * x).sum();
        for col in a.iter_mut().skip(k) {
            reflect(&v, vnorm2, &mut col[k..]);
        }
        reflect(&v, vnorm2, &mut qty[k..]);
    }
    // R is upper triangular: r[i][j] = a[j][i] for i <= j.
    let r = |i: usize, j: usize| a[j][i];
    let mut coef = vec![0.0; p];
    for i in (0..p).rev() {
        let mut s = qty[i];
        for (j, c) in coef.iter().enumerate().skip(i + 1) {
            s -= r(i, j) * c;
        }
        coef[i] = s / r(i, i);
    }
    let rss: f64 = qty[p..].iter().map(|x| x * x).sum();
    // R⁻¹ (upper triangular), then (XᵀX)⁻¹ = R⁻¹ R⁻ᵀ.
    let mut rinv = zeros(p, p);
    for j in 0..p {
        rinv[j][j] = 1.0 / r(j, j);
        for i in (0..j).rev() {
            let mut s = 0.0;
            for k in (i + 1)..=j {
                s += r(i, k) * rinv[k][j];
            }
            rinv[i][j] = -s / r(i, i);
        }
    }
    let mut xtx_inv = zeros(p, p);
    for i in 0..p {
        for j in 0..=i {
            let mut s = 0.0;
            for k in i.max(j)..p {
                s += rinv[i][k] * rinv[j][k];
            }
            xtx_inv[i][j] = s;
            xtx_inv[j][i] = s;
        }
    }
    debug_assert!(n >= p);
    Ok(LeastSquares { coef, xtx_inv, rss })
}

fn norm(x: &[f64]) -> f64 {
    let scale = x.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        return 0.0;
    }
    scale * x.iter().map(|v| (v / scale).powi(2)).sum::<f64>().sqrt()
}

/// `x ← (I − 2 v vᵀ / ‖v‖²) x`.
fn reflect(v: &[f64], vnorm2: f64, x: &mut [f64]) {
    let dot: f64 = v.iter().zip(x.iter()).map(|(a, b)| a * b).sum();
    let f = 2.0 * dot / vnorm2;
    for (xi, vi) in x.iter_mut().zip(v) {
        *xi -= f * vi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_and_inverts() {
        let a = vec![
            vec![4.0, 2.0, 0.4],
            vec![2.0, 3.0, 0.5],
            vec![0.4, 0.5, 2.0],
        ];
        let c = Cholesky::new(&a, 1e-12, "a").unwrap();
        let x = c.solve(&[1.0, 2.0, 3.0]);
        for (i, row) in a.iter().enumerate() {
            let ax: f64 = row.iter().zip(&x).map(|(p, q)| p * q).sum();
            assert!((ax - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
        let inv = c.inverse();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|k| a[i][k] * inv[k][j]).sum();
                assert!((s - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!(
            (quad_form(&inv, &[1.0, 2.0, 3.0])
                - x.iter()
                    .zip([1.0, 2.0, 3.0])
                    .map(|(p, q)| p * q)
                    .sum::<f64>())
            .abs()
                < 1e-12
        );
    }

    #[test]
    fn cholesky_flags_singular() {
        let a = vec![vec![1.0, 1.0], vec![1.0, 1.0]];
        assert_eq!(
            Cholesky::new(&a, 1e-12, "info").err(),
            Some(StatsError::Singular { what: "info" })
        );
    }

    #[test]
    fn least_squares_line() {
        // y = 1 + 2 x exactly, plus one perturbed point.
        let x = [0.0, 1.0, 2.0, 3.0];
        let y = [1.0, 3.0, 5.0, 8.0];
        let cols = vec![vec![1.0; 4], x.to_vec()];
        let fit = least_squares(&cols, &y, "X").unwrap();
        // R: coef(lm(y ~ x)) = 0.8, 2.3; sum(resid^2) = 0.3
        assert!((fit.coef[0] - 0.8).abs() < 1e-12);
        assert!((fit.coef[1] - 2.3).abs() < 1e-12);
        assert!((fit.rss - 0.3).abs() < 1e-12);
        // (X'X)^-1 = [[0.7, -0.3], [-0.3, 0.2]]
        assert!((fit.xtx_inv[0][0] - 0.7).abs() < 1e-12);
        assert!((fit.xtx_inv[0][1] + 0.3).abs() < 1e-12);
        assert!((fit.xtx_inv[1][1] - 0.2).abs() < 1e-12);
    }

    #[test]
    fn least_squares_flags_collinear() {
        let cols = vec![vec![1.0; 3], vec![2.0; 3]];
        assert!(matches!(
            least_squares(&cols, &[1.0, 2.0, 3.0], "X"),
            Err(StatsError::Singular { .. })
        ));
    }
}
