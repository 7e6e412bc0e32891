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
//! * **APRI** (Wai et al., Hepatology 2003;38:518-526):
//!   `APRI = (AST / AST upper limit of normal) · 100 / platelets (10^9/L)`.
//! * **FIB-4** (Sterling et al., Hepatology 2006;43:1317-1325):
//!   `FIB-4 = age (years) · AST (U/L) / (platelets (10^9/L) · √ALT (U/L))`.
//! * **Child-Pugh** (Pugh et al., Br J Surg 1973;60:646-649, with the INR in place of the
//!   prothrombin time as is now usual): 1 to 3 points each for bilirubin (mg/dL: < 2, 2–3, > 3),
//!   albumin (g/dL: > 3.5, 2.8–3.5, < 2.8), INR (< 1.7, 1.7–2.3, > 2.3) or prothrombin time
//!   prolonged beyond control (s: < 4, 4–6, > 6), ascites (none, slight, moderate to severe) and
//!   hepatic encephalopathy (none, grade 1–2, grade 3–4); score 5–15, class A (5–6), B (7–9),
//!   C (10–15).
//! * **Hy's law** laboratory criterion (FDA, Guidance for Industry: Drug-Induced Liver Injury:
//!   Premarketing Clinical Evaluation, July 2009): ALT or AST ≥ 3 × ULN together with total
//!   bilirubin ≥ 2 × ULN; optionally also alkaline phosphatase < 2 × ULN.
//!
//! Inputs are in the units the formulas name; the caller converts with the unit registry.

/// Which scores exist (PARAMCD of the derived ADLB parameters).
pub const SCORES: &[&str] = &[
    "MELD", "MELDNA", "ALBI", "ALBIGR", "APRI", "FIB4", "CPS", "CPSCL", "HYSLAW",
];

/// Panel tests a score needs (all of them), or `None` for an unknown score. `HYSLAW` needs
/// `BILI` and at least one of `ALT` and `AST` (see [`hys_law`]); `CPS` and `CPSCL` also need
/// the assessments input for ascites and encephalopathy.
pub fn needs(score: &str) -> Option<&'static [&'static str]> {
    Some(match score {
        "MELD" => &["BILI", "CREAT", "INR"],
        "MELDNA" => &["BILI", "CREAT", "INR", "SODIUM"],
        "ALBI" | "ALBIGR" => &["BILI", "ALB"],
        "APRI" => &["AST", "PLAT"],
        "FIB4" => &["AST", "ALT", "PLAT"],
        "CPS" | "CPSCL" => &["BILI", "ALB", "INR"],
        "HYSLAW" => &["BILI"],
        _ => return None,
    })
}

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

/// APRI: AST and its upper limit of normal in the same unit (U/L), platelets in 10^9/L.
pub fn apri(ast: f64, ast_uln: f64, platelets_10e9_l: f64) -> Result<f64, ScoreError> {
    let ast = positive("AST", ast)?;
    let uln = positive("AST upper limit of normal", ast_uln)?;
    let plt = positive("platelets", platelets_10e9_l)?;
    Ok(ast / uln * 100.0 / plt)
}

/// FIB-4: age in years, AST and ALT in U/L, platelets in 10^9/L.
pub fn fib4(age_years: f64, ast: f64, alt: f64, platelets_10e9_l: f64) -> Result<f64, ScoreError> {
    let age = positive("age", age_years)?;
    let ast = positive("AST", ast)?;
    let alt = positive("ALT", alt)?;
    let plt = positive("platelets", platelets_10e9_l)?;
    Ok(age * ast / (plt * alt.sqrt()))
}

/// Ascites grade as Child-Pugh scores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ascites {
    /// None (1 point).
    None,
    /// Slight (2 points).
    Slight,
    /// Moderate to severe (3 points).
    ModerateSevere,
}

/// Hepatic encephalopathy grade as Child-Pugh scores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Encephalopathy {
    /// None (1 point).
    None,
    /// Grade 1–2 (2 points).
    Grade1To2,
    /// Grade 3–4 (3 points).
    Grade3To4,
}

/// The coagulation component of Child-Pugh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coagulation {
    /// INR (< 1.7, 1.7–2.3, > 2.3).
    Inr(f64),
    /// Prothrombin time prolonged beyond control, in seconds (< 4, 4–6, > 6), as in Pugh 1973.
    PtProlongedSeconds(f64),
}

/// Child-Pugh score (5–15): bilirubin in mg/dL, albumin in g/dL.
pub fn child_pugh(
    bilirubin_mg_dl: f64,
    albumin_g_dl: f64,
    coagulation: Coagulation,
    ascites: Ascites,
    encephalopathy: Encephalopathy,
) -> Result<u8, ScoreError> {
    let b = positive("bilirubin", bilirubin_mg_dl)?;
    let a = positive("albumin", albumin_g_dl)?;
    let bili_pts = if b < 2.0 {
        1
    } else if b <= 3.0 {
        2
    } else {
        3
    };
    let alb_pts = if a > 3.5 {
        1
    } else if a >= 2.8 {
        2
    } else {
        3
    };
    let coag_pts = match coagulation {
        Coagulation::Inr(i) => {
            let i = positive("INR", i)?;
            if i < 1.7 {
                1
            } else if i <= 2.3 {
                2
            } else {
                3
            }
        }
        Coagulation::PtProlongedSeconds(s) => {
            if !s.is_finite() {
                return Err(ScoreError::BadInput {
                    name: "prothrombin time prolongation",
                    value: s,
                });
            }
            if s < 4.0 {
                1
            } else if s <= 6.0 {
                2
            } else {
                3
            }
        }
    };
    let asc_pts = match ascites {
        Ascites::None => 1,
        Ascites::Slight => 2,
        Ascites::ModerateSevere => 3,
    };
    let enc_pts = match encephalopathy {
        Encephalopathy::None => 1,
        Encephalopathy::Grade1To2 => 2,
        Encephalopathy::Grade3To4 => 3,
    };
    Ok(bili_pts + alb_pts + coag_pts + asc_pts + enc_pts)
}

/// Child-Pugh class of a score: `A` (5–6), `B` (7–9), `C` (10–15).
pub fn child_pugh_class(score: u8) -> char {
    match score {
        0..=6 => 'A',
        7..=9 => 'B',
        _ => 'C',
    }
}

/// Whether Hy's law's alkaline phosphatase condition is part of the criterion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HysLawAlp {
    /// Not applied (the default): aminotransferases and bilirubin only.
    #[default]
    NotApplied,
    /// Also require alkaline phosphatase < 2 × ULN on the same date (no cholestatic pattern).
    #[serde(rename = "below_2uln")]
    Below2Uln,
}

/// Hy's law laboratory criterion on one date, from values as multiples of their upper limit of
/// normal: `aminotransferases` holds one entry per aminotransferase of the panel (ALT, AST),
/// `None` when not measured that date. Three-valued: `Some(true)` when an aminotransferase is
/// ≥ 3 × ULN and bilirubin ≥ 2 × ULN (and, with [`HysLawAlp::Below2Uln`], ALP < 2 × ULN);
/// `Some(false)` when the measured values rule it out; `None` when they cannot decide (no
/// bilirubin, no aminotransferase, or a missing value that could still meet the criterion).
pub fn hys_law(
    aminotransferases: &[Option<f64>],
    bilirubin: Option<f64>,
    alp: Option<f64>,
    rule: HysLawAlp,
) -> Option<bool> {
    let bili = bilirubin?;
    if aminotransferases.iter().all(Option::is_none) {
        return None;
    }
    if bili < 2.0 {
        return Some(false);
    }
    let elevated = aminotransferases.iter().flatten().any(|&x| x >= 3.0);
    if !elevated {
        // A missing aminotransferase could still be elevated.
        return aminotransferases
            .iter()
            .all(Option::is_some)
            .then_some(false);
    }
    match rule {
        HysLawAlp::NotApplied => Some(true),
        HysLawAlp::Below2Uln => alp.map(|a| a < 2.0),
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

    // APRI and FIB-4: no published worked patient example was at hand when these tests were
    // written; the values below are worked by hand from the published formulas, step by step.

    #[test]
    fn apri_formula() {
        // AST 65 U/L, ULN 40 U/L, platelets 458: 65/40 = 1.625; ·100 = 162.5; /458 = 0.354803.
        let a = apri(65.0, 40.0, 458.0).unwrap();
        assert!((a - 162.5 / 458.0).abs() < 1e-12);
        assert_eq!(format!("{a:.2}"), "0.35");
        // Cirrhosis-range: AST 120, ULN 40, platelets 60: 3 · 100 / 60 = 5.0.
        assert!((apri(120.0, 40.0, 60.0).unwrap() - 5.0).abs() < 1e-12);
        // The ULN matters: the same AST with ULN 50 (a male range): 2.4 · 100 / 60 = 4.0.
        assert!((apri(120.0, 50.0, 60.0).unwrap() - 4.0).abs() < 1e-12);
        assert!(apri(65.0, 0.0, 458.0).is_err());
        assert!(apri(65.0, 40.0, f64::NAN).is_err());
    }

    #[test]
    fn fib4_formula() {
        // Age 50, AST 40, ALT 36, platelets 200: 50·40 = 2000; 200·√36 = 200·6 = 1200;
        // 2000 / 1200 = 1.6667 (between the 1.45 and 3.25 cut-offs of Sterling et al.).
        let f = fib4(50.0, 40.0, 36.0, 200.0).unwrap();
        assert!((f - 2000.0 / 1200.0).abs() < 1e-12);
        // Age 64, AST 90, ALT 49, platelets 80: 64·90 = 5760; 80·√49 = 560; 5760/560 = 10.2857.
        let f = fib4(64.0, 90.0, 49.0, 80.0).unwrap();
        assert!((f - 5760.0 / 560.0).abs() < 1e-12);
        assert_eq!(format!("{f:.2}"), "10.29");
        assert!(fib4(50.0, 40.0, 0.0, 200.0).is_err());
        assert!(fib4(0.0, 40.0, 36.0, 200.0).is_err());
    }

    // Child-Pugh: no published worked patient example was at hand; the totals below are added
    // up by hand from the point table (Pugh et al. 1973, INR bands as now usual).

    #[test]
    fn child_pugh_points_and_classes() {
        use Ascites as A;
        use Encephalopathy as E;
        // Bili 1.0 (1), albumin 4.0 (1), INR 1.1 (1), no ascites (1), no encephalopathy (1) = 5.
        let s = child_pugh(1.0, 4.0, Coagulation::Inr(1.1), A::None, E::None).unwrap();
        assert_eq!((s, child_pugh_class(s)), (5, 'A'));
        // Bili 2.5 (2), albumin 3.0 (2), INR 1.8 (2), slight ascites (2), none (1) = 9 → B.
        let s = child_pugh(2.5, 3.0, Coagulation::Inr(1.8), A::Slight, E::None).unwrap();
        assert_eq!((s, child_pugh_class(s)), (9, 'B'));
        // Bili 4 (3), albumin 2.5 (3), INR 2.5 (3), moderate ascites (3), grade 3 (3) = 15 → C.
        let s = child_pugh(
            4.0,
            2.5,
            Coagulation::Inr(2.5),
            A::ModerateSevere,
            E::Grade3To4,
        )
        .unwrap();
        assert_eq!((s, child_pugh_class(s)), (15, 'C'));
        // Boundaries: bilirubin 2.0 and 3.0 score 2, albumin 3.5 and 2.8 score 2, INR 1.7 and
        // 2.3 score 2: 2 + 2 + 2 + 1 + 1 = 8 either way.
        let ok = |b, a, i| child_pugh(b, a, Coagulation::Inr(i), A::None, E::None).unwrap();
        assert_eq!(ok(2.0, 3.5, 1.7), 8);
        assert_eq!(ok(3.0, 2.8, 2.3), 8);
        assert_eq!(ok(1.99, 3.51, 1.69), 5);
        assert_eq!(ok(3.01, 2.79, 2.31), 11);
        // Prothrombin time prolonged 3.9 s (1), 4 s (2), 6 s (2), 6.1 s (3).
        let pt = |s| {
            child_pugh(
                1.0,
                4.0,
                Coagulation::PtProlongedSeconds(s),
                A::None,
                E::None,
            )
            .unwrap()
        };
        assert_eq!((pt(3.9), pt(4.0), pt(6.0), pt(6.1)), (5, 6, 6, 7));
        // Encephalopathy grade 1–2 adds 1 point over none.
        let s = child_pugh(1.0, 4.0, Coagulation::Inr(1.0), A::None, E::Grade1To2).unwrap();
        assert_eq!(s, 6);
        assert_eq!([6, 7, 9, 10].map(child_pugh_class), ['A', 'B', 'B', 'C']);
        assert!(child_pugh(0.0, 4.0, Coagulation::Inr(1.0), A::None, E::None).is_err());
    }

    #[test]
    fn hys_law_is_three_valued() {
        let na = HysLawAlp::NotApplied;
        // ALT 3.0 × ULN and bilirubin 2.0 × ULN: both thresholds are inclusive.
        assert_eq!(
            hys_law(&[Some(3.0), Some(1.0)], Some(2.0), None, na),
            Some(true)
        );
        // AST alone suffices.
        assert_eq!(
            hys_law(&[Some(1.0), Some(3.5)], Some(2.5), None, na),
            Some(true)
        );
        assert_eq!(
            hys_law(&[Some(2.99), Some(2.99)], Some(5.0), None, na),
            Some(false)
        );
        assert_eq!(
            hys_law(&[Some(10.0), Some(10.0)], Some(1.99), None, na),
            Some(false)
        );
        // Bilirubin below 2 × ULN decides even with an aminotransferase missing.
        assert_eq!(
            hys_law(&[Some(10.0), None], Some(1.0), None, na),
            Some(false)
        );
        // A missing AST could still be ≥ 3 × ULN: undecided.
        assert_eq!(hys_law(&[Some(1.0), None], Some(2.5), None, na), None);
        assert_eq!(hys_law(&[None, None], Some(2.5), None, na), None);
        assert_eq!(hys_law(&[Some(5.0), Some(5.0)], None, None, na), None);
        // With the ALP refinement: ALP < 2 × ULN needed, and must be measured.
        let alp = HysLawAlp::Below2Uln;
        assert_eq!(hys_law(&[Some(5.0)], Some(3.0), Some(1.5), alp), Some(true));
        assert_eq!(
            hys_law(&[Some(5.0)], Some(3.0), Some(2.0), alp),
            Some(false)
        );
        assert_eq!(hys_law(&[Some(5.0)], Some(3.0), None, alp), None);
        assert_eq!(hys_law(&[Some(5.0)], Some(1.0), None, alp), Some(false));
    }

    #[test]
    fn every_score_names_its_inputs() {
        for s in SCORES {
            assert!(needs(s).is_some(), "{s}");
        }
        assert!(needs("CHILD").is_none());
    }
}
