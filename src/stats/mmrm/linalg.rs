//! Small dense helpers for the `T × T` blocks of the likelihood (hot loops,
//! where a general library's per-call overhead would dominate) and the
//! conversions to and from `faer` matrices used for the `p × p` algebra.

use faer::Mat;

/// Packed index of `(i, j)` in the lower triangle of a symmetric matrix
/// stored row by row: `max(i,j)(max(i,j)+1)/2 + min(i,j)`.
#[inline]
pub(crate) fn pidx(i: usize, j: usize) -> usize {
    if i >= j {
        i * (i + 1) / 2 + j
    } else {
        j * (j + 1) / 2 + i
    }
}

/// Length of the packed lower triangle of an `n × n` matrix.
#[inline]
pub(crate) fn packed_len(n: usize) -> usize {
    n * (n + 1) / 2
}

/// In-place lower Cholesky factorization of a dense row-major `n × n`
/// matrix (the strict upper triangle is zeroed). Fails when a pivot is not
/// strictly positive and finite.
pub(crate) fn cholesky_in_place(a: &mut [f64], n: usize) -> Result<(), ()> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d.is_nan() || d <= 0.0 || !d.is_finite() {
            return Err(());
        }
        let djj = d.sqrt();
        a[j * n + j] = djj;
        for i in (j + 1)..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / djj;
        }
        for i in 0..j {
            a[i * n + j] = 0.0;
        }
    }
    Ok(())
}

/// `log det` of the matrix whose Cholesky factor is `l`.
pub(crate) fn cholesky_logdet(l: &[f64], n: usize) -> f64 {
    2.0 * (0..n).map(|i| l[i * n + i].ln()).sum::<f64>()
}

/// Inverse `(L Lᵀ)⁻¹` (dense, symmetric) from the lower Cholesky factor `l`.
pub(crate) fn cholesky_inverse(l: &[f64], n: usize) -> Vec<f64> {
    // L⁻¹ by forward substitution, then L⁻ᵀ L⁻¹.
    let mut linv = vec![0.0; n * n];
    for j in 0..n {
        linv[j * n + j] = 1.0 / l[j * n + j];
        for i in (j + 1)..n {
            let mut s = 0.0;
            for k in j..i {
                s -= l[i * n + k] * linv[k * n + j];
            }
            linv[i * n + j] = s / l[i * n + i];
        }
    }
    let mut inv = vec![0.0; n * n];
    for a in 0..n {
        for b in 0..=a {
            let mut s = 0.0;
            for k in a..n {
                s += linv[k * n + a] * linv[k * n + b];
            }
            inv[a * n + b] = s;
            inv[b * n + a] = s;
        }
    }
    inv
}

/// Dense row-major product `a (n × m) · b (m × k)`.
pub(crate) fn matmul(a: &[f64], b: &[f64], n: usize, m: usize, k: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * k];
    for i in 0..n {
        for l in 0..m {
            let x = a[i * m + l];
            if x == 0.0 {
                continue;
            }
            for j in 0..k {
                out[i * k + j] += x * b[l * k + j];
            }
        }
    }
    out
}

/// Sub-matrix of a dense row-major `t × t` matrix on the index set `idx`.
pub(crate) fn submatrix(full: &[f64], t: usize, idx: &[usize]) -> Vec<f64> {
    let m = idx.len();
    let mut out = vec![0.0; m * m];
    for (a, &ia) in idx.iter().enumerate() {
        for (b, &ib) in idx.iter().enumerate() {
            out[a * m + b] = full[ia * t + ib];
        }
    }
    out
}

/// Adds `scale · block` (dense `m × m` on index set `idx`) into the full `t × t` matrix.
pub(crate) fn scatter_add(full: &mut [f64], t: usize, idx: &[usize], block: &[f64], scale: f64) {
    let m = idx.len();
    for (a, &ia) in idx.iter().enumerate() {
        for (b, &ib) in idx.iter().enumerate() {
            full[ia * t + ib] += scale * block[a * m + b];
        }
    }
}

/// `Σ_ij a_ij b_ij` for two dense matrices of equal shape.
pub(crate) fn frobenius(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `Σ_ij a_ij b_ji`, i.e. `tr(a b)` for square row-major matrices of size `n`.
pub(crate) fn trace_of_product(a: &[f64], b: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..n {
        for j in 0..n {
            s += a[i * n + j] * b[j * n + i];
        }
    }
    s
}

/// Symmetrizes a dense square matrix: `(a + aᵀ) / 2`.
pub(crate) fn symmetrize(a: &mut [f64], n: usize) {
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (a[i * n + j] + a[j * n + i]);
            a[i * n + j] = v;
            a[j * n + i] = v;
        }
    }
}

/// The leading `p × p` block of a packed symmetric `q × q` matrix, as a faer matrix.
pub(crate) fn packed_block(packed: &[f64], p: usize) -> Mat<f64> {
    Mat::from_fn(p, p, |i, j| packed[pidx(i, j)])
}

/// Dense row-major copy of a faer matrix.
pub(crate) fn to_dense(m: &Mat<f64>) -> Vec<f64> {
    let (r, c) = (m.nrows(), m.ncols());
    let mut out = Vec::with_capacity(r * c);
    for i in 0..r {
        for j in 0..c {
            out.push(m[(i, j)]);
        }
    }
    out
}

/// `xᵀ A y` for a faer matrix.
pub(crate) fn bilinear(x: &[f64], a: &Mat<f64>, y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, xi) in x.iter().enumerate() {
        if *xi == 0.0 {
            continue;
        }
        let mut t = 0.0;
        for (j, yj) in y.iter().enumerate() {
            t += a[(i, j)] * yj;
        }
        s += xi * t;
    }
    s
}

/// `A x` for a faer matrix.
pub(crate) fn mat_vec(a: &Mat<f64>, x: &[f64]) -> Vec<f64> {
    (0..a.nrows())
        .map(|i| (0..a.ncols()).map(|j| a[(i, j)] * x[j]).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_inverse_and_logdet() {
        let a = vec![4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let mut l = a.clone();
        cholesky_in_place(&mut l, 3).unwrap();
        let inv = cholesky_inverse(&l, 3);
        let prod = matmul(&a, &inv, 3, 3, 3);
        for i in 0..3 {
            for j in 0..3 {
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((prod[i * 3 + j] - e).abs() < 1e-14);
            }
        }
        // det = 4(15-1) - 2(6-0.4) + 0.4(2-2) = 44.8
        assert!((cholesky_logdet(&l, 3) - 44.8_f64.ln()).abs() < 1e-13);
        let mut bad = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_in_place(&mut bad, 2).is_err());
    }
}
