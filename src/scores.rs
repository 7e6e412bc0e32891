//! Clinical scores derived from same-date lab values (pure functions, no I/O).
//!
//! * **MELD** (UNOS implementation of Kamath et al., Hepatology 2001;33:464-470):
//!   `MELD(i) = 0.957·ln(creatinine mg/dL) + 0.378·ln(bilirubin mg/dL) + 1.120·ln(INR) + 0.643`,
//!   with each laboratory value below 1.0 set to 1.0 and creatinine capped at 4.0 mg/dL; the
//!   score is `MELD(i)` rounded to the tenth and multiplied by 10, then capped at 40. Dialysis
//!   (which sets creatinine to 4.0) is not recorded in lab exports, so it is not applied.
//! * **MELD-Na** (Kim et al., NEJM 2008;359:1018-1026, as adopted by UNOS in 2016): with sodium
//!   bounded to 125..137 mmol/L, when MELD > 11,
//!   `MELD-Na = MELD + 1.32·(137 − Na) − 0.033·MELD·(137 − Na)`, else MELD; capped at 40,
//!   rounded to an integer.
//! * **ALBI** (Johnson et al., J Clin Oncol 2015;33:550-558):
//!   `ALBI = 0.66·log10(bilirubin µmol/L) − 0.085·albumin g/L`; grade 1 when ≤ −2.60, grade 2 when
//!   ≤ −1.39, grade 3 above.
//!
//! Inputs are in the units the formulas name; the caller converts with the unit registry.

/// Which scores exist.
pub const SCORES: &[&str] = &["MELD", "MELDNA", "ALBI", "ALBIGR"];

/// Why a score cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// An input is missing, not finite, or not positive where a logarithm needs it.
    #[error("{name} = {value} cannot enter the score")]
    BadInput {
        /// Input name.
        name: &'static str,
        /// Its value.
        value: f64,
    },
}

fn positive(name: &'static str, value: f64) -> Result<f64, ScoreError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ScoreError::BadInput { name, value })
    }
}

/// MELD (UNOS): creatinine and bilirubin in mg/dL, INR as a ratio.
pub fn meld(creatinine_mg_dl: f64, bilirubin_mg_dl: f64, inr: f64) -> Result<f64, ScoreError> {
    let cr = positive("creatinine", creatinine_mg_dl)?.clamp(1.0, 4.0);
    let bili = positive("bilirubin", bilirubin_mg_dl)?.max(1.0);
    let inr = positive("INR", inr)?.max(1.0);
    let raw = 0.957 * cr.ln() + 0.378 * bili.ln() + 1.120 * inr.ln() + 0.643;
    let score = (raw * 10.0).round() / 10.0 * 10.0;
    Ok(score.min(40.0))
}

/// MELD-Na: MELD as [`meld`] and sodium in mmol/L.
pub fn meld_na(
    creatinine_mg_dl: f64,
    bilirubin_mg_dl: f64,
    inr: f64,
    sodium_mmol_l: f64,
) -> Result<f64, ScoreError> {
    let m = meld(creatinine_mg_dl, bilirubin_mg_dl, inr)?;
    let na = positive("sodium", sodium_mmol_l)?.clamp(125.0, 137.0);
    let score = if m > 11.0 {
        m + 1.32 * (137.0 - na) - 0.033 * m * (137.0 - na)
    } else {
        m
    };
    Ok(score.min(40.0).round())
}

/// ALBI score: bilirubin in µmol/L, albumin in g/L.
pub fn albi(bilirubin_umol_l: f64, albumin_g_l: f64) -> Result<f64, ScoreError> {
    let b = positive("bilirubin", bilirubin_umol_l)?;
    let a = positive("albumin", albumin_g_l)?;
    Ok(0.66 * b.log10() - 0.085 * a)
}

/// ALBI grade (1, 2 or 3) of a score.
pub fn albi_grade(score: f64) -> u8 {
    if score <= -2.60 {
        1
    } else if score <= -1.39 {
        2
    } else {
        3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are worked by hand from the published formulas (intermediate values
    // written out); published patient examples are still to be added.

    #[test]
    fn meld_formula_floors_and_caps() {
        // Cr 1.2, bili 2.0, INR 1.5: 0.957·0.18232 + 0.378·0.69315 + 1.120·0.40547 + 0.643
        // = 0.17448 + 0.26201 + 0.45412 + 0.643 = 1.53361 → 1.5 → 15.
        assert_eq!(meld(1.2, 2.0, 1.5).unwrap(), 15.0);
        // All below 1.0 → floored at 1.0 → 0.643 → 0.6 → 6 (the minimum MELD).
        assert_eq!(meld(0.5, 0.3, 0.9).unwrap(), 6.0);
        // Creatinine 8 is capped at 4: 0.957·1.38629 + 0.643 = 1.96968 → 2.0 → 20.
        assert_eq!(meld(8.0, 1.0, 1.0).unwrap(), 20.0);
        // Extreme values cap at 40.
        assert_eq!(meld(4.0, 40.0, 8.0).unwrap(), 40.0);
        assert!(meld(0.0, 1.0, 1.0).is_err());
        assert!(meld(1.0, f64::NAN, 1.0).is_err());
    }

    #[test]
    fn meld_na_adjusts_above_11_only() {
        // MELD 15 and Na 130: 15 + 1.32·7 − 0.033·15·7 = 15 + 9.24 − 3.465 = 20.775 → 21.
        assert_eq!(meld_na(1.2, 2.0, 1.5, 130.0).unwrap(), 21.0);
        // Sodium below 125 is bounded: Na 120 → 125: 15 + 15.84 − 5.94 = 24.9 → 25.
        assert_eq!(meld_na(1.2, 2.0, 1.5, 120.0).unwrap(), 25.0);
        // Sodium above 137 → 137: no change.
        assert_eq!(meld_na(1.2, 2.0, 1.5, 145.0).unwrap(), 15.0);
        // MELD 6 ≤ 11: no sodium term.
        assert_eq!(meld_na(0.5, 0.3, 0.9, 125.0).unwrap(), 6.0);
    }

    #[test]
    fn albi_score_and_grades() {
        // Bili 10 µmol/L, albumin 45 g/L: 0.66·1 − 0.085·45 = 0.66 − 3.825 = −3.165 → grade 1.
        let s = albi(10.0, 45.0).unwrap();
        assert!((s - (-3.165)).abs() < 1e-12);
        assert_eq!(albi_grade(s), 1);
        // Bili 40, albumin 30: 0.66·1.60206 − 2.55 = 1.05736 − 2.55 = −1.49264 → grade 2.
        let s = albi(40.0, 30.0).unwrap();
        assert!((s - (0.66 * 40f64.log10() - 2.55)).abs() < 1e-12);
        assert_eq!(albi_grade(s), 2);
        // Boundaries belong to the better grade.
        assert_eq!(albi_grade(-2.60), 1);
        assert_eq!(albi_grade(-1.39), 2);
        assert_eq!(albi_grade(-1.38), 3);
        assert!(albi(0.0, 30.0).is_err());
    }
}
