//! Average ranks with tie bookkeeping, as R's `rank(ties.method = "average")`
//! together with `table()` of the ranks.

/// Ranks of a sample and the information the rank tests need about ties.
pub(crate) struct Ranked {
    /// Average rank of each value, in input order (1-based, half-integers on ties).
    pub ranks: Vec<f64>,
    /// `sum(t^3 - t)` over the tie groups (group size `t`), R's `sum(NTIES^3 - NTIES)`.
    pub tie_term: f64,
    /// Whether any two values are equal.
    pub has_ties: bool,
}

/// Average ranks of finite values; equal values (`==`, so `-0.0 == 0.0`) share
/// the mean of the positions they occupy.
pub(crate) fn rank(values: &[f64]) -> Ranked {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut has_ties = false;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        // positions i..=j (0-based) share rank (i + j + 2) / 2
        let r = (i + j + 2) as f64 / 2.0;
        for &k in &order[i..=j] {
            ranks[k] = r;
        }
        let t = (j - i + 1) as f64;
        if j > i {
            has_ties = true;
            tie_term += t * t * t - t;
        }
        i = j + 1;
    }
    Ranked {
        ranks,
        tie_term,
        has_ties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_ranks() {
        // R: rank(c(3, 1, 3, 2, 3, -0, 0)) = 6 3.5 6 5 6 ... with zeros tied
        let r = rank(&[3.0, 1.0, 3.0, 2.0, 3.0, -0.0, 0.0]);
        assert_eq!(r.ranks, vec![6.0, 3.0, 6.0, 4.0, 6.0, 1.5, 1.5]);
        assert!(r.has_ties);
        assert_eq!(r.tie_term, (27.0 - 3.0) + (8.0 - 2.0));
        let r = rank(&[0.5, 0.25]);
        assert_eq!(r.ranks, vec![2.0, 1.0]);
        assert!(!r.has_ties);
        assert_eq!(r.tie_term, 0.0);
    }
}
