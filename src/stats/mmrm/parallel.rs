//! Deterministic data parallelism over rows or subjects (`rayon`).
//!
//! Sums over subjects are cut into chunks of a fixed size, [`CHUNK`], that
//! does not depend on the number of threads; each chunk is summed in order
//! on some thread and the partial sums are then added in chunk order on the
//! calling thread. The result is therefore the same bit for bit whatever the
//! number of threads, and, for at most one chunk, bit for bit the plain
//! sequential sum.

use std::ops::Range;

use rayon::prelude::*;

/// Items (subjects or rows) per chunk of a parallel sum.
pub(crate) const CHUNK: usize = 4096;

/// `acc += Σ_chunks f(chunk)` where `f(range, partial)` adds the terms of
/// the items in `range` into a zeroed `partial` of `acc.len()` entries.
/// With at most [`CHUNK`] items, `f` adds straight into `acc`.
pub(crate) fn sum_into<F>(n: usize, acc: &mut [f64], f: F)
where
    F: Fn(Range<usize>, &mut [f64]) + Sync,
{
    if n <= CHUNK {
        f(0..n, acc);
        return;
    }
    let len = acc.len();
    let partials: Vec<Vec<f64>> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut part = vec![0.0; len];
            f(c * CHUNK..((c + 1) * CHUNK).min(n), &mut part);
            part
        })
        .collect();
    for part in &partials {
        for (a, p) in acc.iter_mut().zip(part) {
            *a += p;
        }
    }
}

/// `Σ_i a_i b_i`, in chunks of [`CHUNK`] reduced in order.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = [0.0];
    sum_into(a.len(), &mut s, |r, acc| {
        acc[0] += a[r.clone()]
            .iter()
            .zip(&b[r])
            .map(|(x, y)| x * y)
            .sum::<f64>();
    });
    s[0]
}

/// `v -= d · q`, element by element in parallel (no reduction, so exact).
pub(crate) fn axpy_neg(v: &mut [f64], d: f64, q: &[f64]) {
    v.par_chunks_mut(CHUNK)
        .zip(q.par_chunks(CHUNK))
        .for_each(|(vc, qc)| {
            for (vi, qi) in vc.iter_mut().zip(qc) {
                *vi -= d * qi;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_sum_does_not_depend_on_the_thread_count() {
        let n = 5 * CHUNK + 17;
        let a: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 7.0).collect();
        let b: Vec<f64> = (0..n).map(|i| 1.0 / (1.0 + i as f64)).collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| dot(&a, &b));
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap()
            .install(|| dot(&a, &b));
        assert_eq!(one.to_bits(), three.to_bits());
        let seq: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((one - seq).abs() <= 1e-12 * seq.abs());
    }

    #[test]
    fn one_chunk_is_the_sequential_sum() {
        let a: Vec<f64> = (0..CHUNK).map(|i| (i as f64).sqrt()).collect();
        let seq: f64 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a).to_bits(), seq.to_bits());
    }
}
