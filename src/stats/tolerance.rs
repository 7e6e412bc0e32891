//! Numerical tolerances used when comparing this module's results with a
//! reference implementation (R), collected in one place so that every test
//! uses the same, documented thresholds.

/// Relative tolerance for closed-form statistics and for the Wilcoxon
/// Hodges-Lehmann estimates and intervals that replicate R's root finder
/// step by step: `1e-6`.
pub const CLOSED_FORM_REL: f64 = 1e-6;

/// Absolute floor of [`rel_close`]: two values whose absolute difference is at
/// most `1e-13` are treated as equal whatever their magnitude. It only matters
/// for quantities that are mathematically zero (or below ~1e-7), where
/// cancellation leaves noise of a few hundred ulps of the inputs' magnitude.
pub const ABS_FLOOR: f64 = 1e-13;

/// True when `a` and `b` agree to relative tolerance `rel`.
///
/// The difference is measured relative to `max(|a|, |b|, 1e-300)`, and any
/// absolute difference up to [`ABS_FLOOR`] is accepted, so values near 0 are
/// compared sensibly. Equal infinities compare equal; `NaN` never does.
pub fn rel_close(a: f64, b: f64, rel: f64) -> bool {
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    let diff = (a - b).abs();
    diff <= ABS_FLOOR || diff <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute() {
        assert!(rel_close(1.0, 1.0 + 5e-7, CLOSED_FORM_REL));
        assert!(!rel_close(1.0, 1.0 + 5e-6, CLOSED_FORM_REL));
        assert!(rel_close(1e9, 1e9 + 100.0, CLOSED_FORM_REL));
        assert!(rel_close(0.0, 1e-14, CLOSED_FORM_REL));
        assert!(!rel_close(0.0, 1e-9, CLOSED_FORM_REL));
        assert!(rel_close(f64::INFINITY, f64::INFINITY, CLOSED_FORM_REL));
        assert!(!rel_close(
            f64::INFINITY,
            f64::NEG_INFINITY,
            CLOSED_FORM_REL
        ));
        assert!(!rel_close(f64::NAN, f64::NAN, CLOSED_FORM_REL));
    }
}
