//! Brent's root finder as R's `uniroot()` runs it (`R_zeroin2`, from NETLIB
//! `zeroin` by Forsythe, Malcolm & Moler), transcribed step by step so that
//! statistics R defines through `uniroot` (the Hodges-Lehmann estimates and
//! intervals of `wilcox.test` in the normal-approximation case) are
//! reproduced, not merely approximated.

use super::error::StatsError;

/// R's `uniroot(f, lower, upper, f.lower, f.upper, tol, maxiter = 1000)$root`
/// with the function values at the ends already known.
pub(crate) fn uniroot<F>(
    mut f: F,
    lower: f64,
    upper: f64,
    f_lower: f64,
    f_upper: f64,
    tol: f64,
) -> Result<f64, StatsError>
where
    F: FnMut(f64) -> Result<f64, StatsError>,
{
    if lower >= upper || lower.is_nan() || upper.is_nan() {
        return Err(StatsError::RootFinding("lower < upper is not fulfilled"));
    }
    if f_lower.is_nan() || f_upper.is_nan() {
        return Err(StatsError::RootFinding(
            "function value at an end point is NaN",
        ));
    }
    if f_lower.signum() * f_upper.signum() > 0.0 && f_lower != 0.0 && f_upper != 0.0 {
        return Err(StatsError::RootFinding(
            "function values at end points not of opposite sign",
        ));
    }
    zeroin2(&mut f, lower, upper, f_lower, f_upper, tol, 1000)
}

/// `R_zeroin2` (R `src/library/stats/src/zeroin.c`). Non-finite function
/// values are replaced by `±f64::MAX` as R's `uniroot` wrapper does.
fn zeroin2<F>(
    f: &mut F,
    ax: f64,
    bx: f64,
    fa_in: f64,
    fb_in: f64,
    tol: f64,
    max_iter: usize,
) -> Result<f64, StatsError>
where
    F: FnMut(f64) -> Result<f64, StatsError>,
{
    const EPSILON: f64 = f64::EPSILON;
    let (mut a, mut b) = (ax, bx);
    let (mut fa, mut fb) = (fa_in, fb_in);
    let mut c = a;
    let mut fc = fa;

    if fa == 0.0 {
        return Ok(a);
    }
    if fb == 0.0 {
        return Ok(b);
    }

    for _ in 0..=max_iter {
        let prev_step = b - a;
        if fc.abs() < fb.abs() {
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol_act = 2.0 * EPSILON * b.abs() + tol / 2.0;
        let mut new_step = (c - b) / 2.0;

        if new_step.abs() <= tol_act || fb == 0.0 {
            return Ok(b);
        }

        if prev_step.abs() >= tol_act && fa.abs() > fb.abs() {
            let cb = c - b;
            let mut p;
            let mut q;
            if a == c {
                let t1 = fb / fa;
                p = cb * t1;
                q = 1.0 - t1;
            } else {
                q = fa / fc;
                let t1 = fb / fc;
                let t2 = fb / fa;
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0));
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            if p < (0.75 * cb * q - (tol_act * q).abs() / 2.0) && p < (prev_step * q / 2.0).abs() {
                new_step = p / q;
            }
        }

        if new_step.abs() < tol_act {
            new_step = if new_step > 0.0 { tol_act } else { -tol_act };
        }
        a = b;
        fa = fb;
        b += new_step;
        fb = finite_or_max(f(b)?);
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            c = a;
            fc = fa;
        }
    }
    Err(StatsError::RootFinding("no convergence in 1000 iterations"))
}

/// R's `uniroot` maps `-Inf` to `-DBL_MAX` and `NaN`/`+Inf` to `+DBL_MAX`.
fn finite_or_max(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else if v == f64::NEG_INFINITY {
        -f64::MAX
    } else {
        f64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_r_uniroot() {
        // R: uniroot(function(x) x^2 - 2, c(0, 2), tol = 1e-4)$root
        let f = |x: f64| Ok(x * x - 2.0);
        let r = uniroot(f, 0.0, 2.0, -2.0, 2.0, 1e-4).unwrap();
        assert!((r - 1.414_213_319_995_502_5).abs() < 1e-15, "{r}");
    }

    #[test]
    fn rejects_bad_bracket() {
        let f = |x: f64| Ok(x);
        assert!(matches!(
            uniroot(f, 1.0, 2.0, 1.0, 2.0, 1e-4),
            Err(StatsError::RootFinding(_))
        ));
        assert!(matches!(
            uniroot(f, 2.0, 1.0, -1.0, 1.0, 1e-4),
            Err(StatsError::RootFinding(_))
        ));
    }
}
