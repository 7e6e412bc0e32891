//! Multiplicity adjustment of p-values, as R's `p.adjust()`.

use super::error::StatsError;

/// Adjustment method (R's `p.adjust(method = )`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    /// Holm (1979) step-down, `"holm"`: strong FWER control under any dependence.
    Holm,
    /// Hochberg (1988) step-up, `"hochberg"`: FWER control under independence
    /// or positive dependence.
    Hochberg,
    /// Benjamini & Hochberg (1995), `"BH"` / `"fdr"`: false discovery rate.
    BenjaminiHochberg,
    /// Bonferroni, `"bonferroni"`: `min(1, m p)`.
    Bonferroni,
}

/// Adjusted p-values in input order, as R's `p.adjust(p, method)` with
/// `n = length(p)`.
///
/// Errors: `EmptyInput`; `NonFiniteInput` for `NaN`/`inf` (remove missing
/// p-values first; R would shrink `n` to the non-missing ones);
/// `InvalidProbability` for values outside [0, 1].
pub fn p_adjust(p: &[f64], method: Adjustment) -> Result<Vec<f64>, StatsError> {
    if p.is_empty() {
        return Err(StatsError::EmptyInput { what: "p-values" });
    }
    for (index, &value) in p.iter().enumerate() {
        if !value.is_finite() {
            return Err(StatsError::NonFiniteInput {
                what: "p-values",
                index,
                value,
            });
        }
        if !(0.0..=1.0).contains(&value) {
            return Err(StatsError::InvalidProbability {
                what: "p-values",
                index,
                value,
            });
        }
    }
    let n = p.len();
    let nf = n as f64;
    let mut out = vec![0.0; n];
    match method {
        Adjustment::Bonferroni => {
            for (o, &v) in out.iter_mut().zip(p) {
                *o = (nf * v).min(1.0);
            }
        }
        Adjustment::Holm => {
            // increasing order; i = 1..n; cummax((n + 1 - i) * p[o])
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
            let mut running = f64::NEG_INFINITY;
            for (k, &idx) in order.iter().enumerate() {
                let i = (k + 1) as f64;
                running = running.max((nf + 1.0 - i) * p[idx]);
                out[idx] = running.min(1.0);
            }
        }
        Adjustment::Hochberg | Adjustment::BenjaminiHochberg => {
            // decreasing order; i = n..1; cummin(multiplier * p[o])
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
            let mut running = f64::INFINITY;
            for (k, &idx) in order.iter().enumerate() {
                let i = (n - k) as f64;
                let scaled = if method == Adjustment::Hochberg {
                    (nf + 1.0 - i) * p[idx]
                } else {
                    nf / i * p[idx]
                };
                running = running.min(scaled);
                out[idx] = running.min(1.0);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: [f64; 5] = [0.01, 0.04, 0.03, 0.005, 0.5];

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-15)
    }

    #[test]
    fn matches_r() {
        // R: p <- c(0.01, 0.04, 0.03, 0.005, 0.5); p.adjust(p, m) for each m
        let holm = p_adjust(&P, Adjustment::Holm).unwrap();
        assert!(close(&holm, &[0.04, 0.09, 0.09, 0.025, 0.5]), "{holm:?}");
        let hoch = p_adjust(&P, Adjustment::Hochberg).unwrap();
        assert!(close(&hoch, &[0.04, 0.08, 0.08, 0.025, 0.5]), "{hoch:?}");
        let bh = p_adjust(&P, Adjustment::BenjaminiHochberg).unwrap();
        assert!(close(&bh, &[0.025, 0.05, 0.05, 0.025, 0.5]), "{bh:?}");
        let bon = p_adjust(&P, Adjustment::Bonferroni).unwrap();
        assert!(close(&bon, &[0.05, 0.2, 0.15, 0.025, 1.0]), "{bon:?}");
    }

    #[test]
    fn errors() {
        assert_eq!(
            p_adjust(&[], Adjustment::Holm),
            Err(StatsError::EmptyInput { what: "p-values" })
        );
        assert!(matches!(
            p_adjust(&[0.1, f64::NAN], Adjustment::Holm),
            Err(StatsError::NonFiniteInput { index: 1, .. })
        ));
        assert!(matches!(
            p_adjust(&[1.5], Adjustment::BenjaminiHochberg),
            Err(StatsError::InvalidProbability { index: 0, .. })
        ));
    }
}
