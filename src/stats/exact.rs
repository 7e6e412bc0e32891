//! Exact null distributions of the Wilcoxon rank-sum statistic `W` (R's
//! `dwilcox`/`pwilcox`/`qwilcox`) and of the signed-rank statistic `V` (R's
//! `psignrank`/`qsignrank`), built by counting.
//!
//! Counts are held in `f64` and built only by additions, as R does, so they are
//! exact up to 2^53 and carry at most a few ulps of relative error beyond.

use super::error::StatsError;

/// Largest `m * n` for which the exact rank-sum distribution is enumerated
/// (the counting costs about `m * n * (m * n) / 4` additions).
pub(crate) const MAX_RANK_SUM_PRODUCT: usize = 40_000;

/// Largest `n` for which the exact signed-rank distribution is enumerated
/// (`2^n` must stay within `f64`).
pub(crate) const MAX_SIGNED_RANK_N: usize = 1_000;

/// Null distribution of the Mann-Whitney form of the rank-sum statistic,
/// `W = sum(ranks of x) - m (m + 1) / 2`, for sample sizes `m` and `n`.
pub(crate) struct RankSumDist {
    mn: usize,
    /// `counts[k]`: number of rank arrangements giving `W = k`.
    counts: Vec<f64>,
    /// `choose(m + n, n)`.
    total: f64,
}

impl RankSumDist {
    /// Counts by R's recurrence `c(k; i, j) = c(k - j; i - 1, j) + c(k; i, j - 1)`,
    /// kept one `i`-layer at a time.
    pub(crate) fn new(m: usize, n: usize) -> Result<Self, StatsError> {
        if m.saturating_mul(n) > MAX_RANK_SUM_PRODUCT {
            return Err(StatsError::ExactTooLarge {
                detail: format!("n1 * n2 = {m} * {n} exceeds {MAX_RANK_SUM_PRODUCT}"),
            });
        }
        // prev[j][k] = c(k; i - 1, j), k in 0..=(i - 1) * j.
        let mut prev: Vec<Vec<f64>> = (0..=n).map(|_| vec![1.0]).collect();
        for i in 1..=m {
            let mut cur: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
            cur.push(vec![1.0]); // c(k; i, 0) = [k == 0]
            for j in 1..=n {
                let len = i * j + 1;
                let mut row = vec![0.0; len];
                // c(k - j; i - 1, j): prev[j] has (i - 1) * j + 1 entries.
                for (k, v) in prev[j].iter().enumerate() {
                    row[k + j] += v;
                }
                // c(k; i, j - 1): cur[j - 1] has i * (j - 1) + 1 entries.
                for (k, v) in cur[j - 1].iter().enumerate() {
                    row[k] += v;
                }
                cur.push(row);
            }
            prev = cur;
        }
        let counts = prev.swap_remove(n);
        let total = counts.iter().sum();
        Ok(Self {
            mn: m * n,
            counts,
            total,
        })
    }

    /// `P(W <= q)` (or `P(W > q)` when `lower_tail` is false), as R's `pwilcox`.
    pub(crate) fn cdf(&self, q: f64, lower_tail: bool) -> f64 {
        tail_probability(
            &self.counts,
            self.mn,
            self.total,
            q,
            lower_tail,
            |c, total| c / total,
        )
    }

    /// Smallest `q` with `P(W <= q) >= p`, as R's `qwilcox(p, m, n)`.
    pub(crate) fn quantile(&self, p: f64) -> usize {
        quantile_from_counts(&self.counts, self.mn, p, |c| c / self.total)
    }
}

/// Null distribution of the signed-rank statistic `V` for `n` non-zero differences.
pub(crate) struct SignedRankDist {
    max: usize,
    /// `counts[k]`: number of subsets of `{1, ..., n}` with sum `k`.
    counts: Vec<f64>,
    /// R's `exp(-n * ln 2)`.
    factor: f64,
}

impl SignedRankDist {
    pub(crate) fn new(n: usize) -> Result<Self, StatsError> {
        if n > MAX_SIGNED_RANK_N {
            return Err(StatsError::ExactTooLarge {
                detail: format!("n = {n} exceeds {MAX_SIGNED_RANK_N}"),
            });
        }
        let max = n * (n + 1) / 2;
        let mut counts = vec![0.0; max + 1];
        counts[0] = 1.0;
        for j in 1..=n {
            let top = j * (j + 1) / 2;
            for k in (j..=top).rev() {
                counts[k] += counts[k - j];
            }
        }
        Ok(Self {
            max,
            counts,
            factor: (-(n as f64) * std::f64::consts::LN_2).exp(),
        })
    }

    /// `P(V <= q)` (or `P(V > q)`), as R's `psignrank`.
    pub(crate) fn cdf(&self, q: f64, lower_tail: bool) -> f64 {
        tail_probability(
            &self.counts,
            self.max,
            self.factor,
            q,
            lower_tail,
            |c, f| c * f,
        )
    }

    /// Smallest `q` with `P(V <= q) >= p`, as R's `qsignrank(p, n)`.
    pub(crate) fn quantile(&self, p: f64) -> usize {
        quantile_from_counts(&self.counts, self.max, p, |c| c * self.factor)
    }
}

/// Shared body of R's `pwilcox` / `psignrank`: sum the shorter tail of a
/// symmetric count vector on `0..=max`. `term(count, scale)` turns a count
/// into a probability exactly as R does (`c / choose(...)` or `c * 2^-n`).
fn tail_probability(
    counts: &[f64],
    max: usize,
    scale: f64,
    q: f64,
    lower_tail: bool,
    term: impl Fn(f64, f64) -> f64,
) -> f64 {
    let q = (q + 1e-7).floor();
    let maxf = max as f64;
    if q < 0.0 {
        return if lower_tail { 0.0 } else { 1.0 };
    }
    if q >= maxf {
        return if lower_tail { 1.0 } else { 0.0 };
    }
    let (p, flip) = if q <= maxf / 2.0 {
        let upto = q as usize;
        (
            counts[..=upto].iter().map(|&c| term(c, scale)).sum::<f64>(),
            false,
        )
    } else {
        let upto = (maxf - q) as usize;
        (
            counts[..upto].iter().map(|&c| term(c, scale)).sum::<f64>(),
            true,
        )
    };
    if lower_tail != flip { p } else { 0.5 - p + 0.5 }
}

/// Shared body of R's `qwilcox` / `qsignrank` for a lower-tail `p` in (0, 1).
fn quantile_from_counts(counts: &[f64], max: usize, p: f64, prob: impl Fn(f64) -> f64) -> usize {
    if p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return max;
    }
    let mut cum = 0.0;
    if p <= 0.5 {
        let target = p - 10.0 * f64::EPSILON;
        for (q, &c) in counts.iter().enumerate() {
            cum += prob(c);
            if cum >= target {
                return q;
            }
        }
        max
    } else {
        let target = 1.0 - p + 10.0 * f64::EPSILON;
        for (q, &c) in counts.iter().enumerate() {
            cum += prob(c);
            if cum > target {
                return max - q;
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_sum_small() {
        // R: dwilcox(0:6, 2, 3) * choose(5, 2) = 1 1 2 2 2 1 1
        let d = RankSumDist::new(2, 3).unwrap();
        assert_eq!(d.counts, vec![1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0]);
        assert_eq!(d.total, 10.0);
        assert!((d.cdf(2.0, true) - 0.4).abs() < 1e-15);
        assert!((d.cdf(2.0, false) - 0.6).abs() < 1e-15);
        assert!((d.cdf(4.0, true) - 0.8).abs() < 1e-15);
        // R: qwilcox(c(0.025, 0.5, 0.9), 2, 3) = 0 3 5
        assert_eq!(d.quantile(0.025), 0);
        assert_eq!(d.quantile(0.5), 3);
        assert_eq!(d.quantile(0.9), 5);
    }

    #[test]
    fn rank_sum_symmetric_in_sizes() {
        let a = RankSumDist::new(7, 4).unwrap();
        let b = RankSumDist::new(4, 7).unwrap();
        assert_eq!(a.counts, b.counts);
        assert_eq!(a.total, 330.0);
    }

    #[test]
    fn signed_rank_small() {
        // R: dsignrank(0:10, 4) * 16 = 1 1 1 2 2 2 2 2 1 1 1
        let d = SignedRankDist::new(4).unwrap();
        assert_eq!(
            d.counts,
            vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0]
        );
        assert!((d.cdf(3.0, true) - 5.0 / 16.0).abs() < 1e-15);
        assert!((d.cdf(7.0, false) - 3.0 / 16.0).abs() < 1e-15);
        // R: qsignrank(c(0.025, 0.5), 4) = 0 5
        assert_eq!(d.quantile(0.025), 0);
        assert_eq!(d.quantile(0.5), 5);
    }

    #[test]
    fn too_large() {
        assert!(matches!(
            RankSumDist::new(300, 300),
            Err(StatsError::ExactTooLarge { .. })
        ));
        assert!(matches!(
            SignedRankDist::new(2000),
            Err(StatsError::ExactTooLarge { .. })
        ));
    }
}
