//! Response criteria: rules declared in the pipeline file, evaluated per subject and
//! post-baseline analysis visit on the ADLB analysis records, giving responder flags.
//!
//! ```toml
//! [[responses]]
//! id = "ALTNORM"
//! description = "ALT returned to normal"
//! when = "base(ALT) > uln(ALT) and aval(ALT) <= uln(ALT)"
//! ```
//!
//! The expression language is `crate::criteria`. Functions read the subject's ANL01FL record of
//! a parameter at the visit being evaluated: `aval(CODE)`, `base(CODE)`, `chg(CODE)`,
//! `pchg(CODE)`, `text(CODE)` (the character result), `uln(CODE)`, `lln(CODE)`, and
//! `missing(x)`; `basetext(CODE)` reads the character result of the subject's baseline record
//! (for qualitative tests, which have no numeric BASE), and `flag(ID)` the value of an earlier
//! rule at the same visit, so that response categories can be built from criteria. A rule whose
//! data are missing at a visit gives an unknown flag (null), never a guess. Pure: the caller hands
//! in the ADLB rows.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::criteria::{self, Env, EvalError, Value};
use crate::derive::AdlbRow;

/// One response rule of the pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseRule {
    /// Parameter code of the responder flag (1-8 letters or digits).
    pub id: String,
    /// What it means (PARAM).
    pub description: String,
    /// The expression.
    pub when: String,
}

/// Functions the response language offers.
pub const FUNCTIONS: &[&str] = &[
    "aval", "base", "chg", "pchg", "text", "basetext", "uln", "lln", "flag", "missing",
];

/// One flag for one subject and visit.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFlag {
    /// Rule id.
    pub id: String,
    /// USUBJID.
    pub usubjid: String,
    /// Planned arm code.
    pub armcd: Option<String>,
    /// Planned treatment.
    pub trtp: Option<String>,
    /// Analysis visit.
    pub avisit: String,
    /// Analysis visit number.
    pub avisitn: f64,
    /// True, false, or unknown.
    pub value: Option<bool>,
    /// Values used, `name=value`.
    pub detail: String,
    /// Evaluation error, if any.
    pub error: Option<String>,
}

struct VisitEnv<'a> {
    rows: BTreeMap<&'a str, &'a AdlbRow>,
    /// The subject's baseline records by parameter.
    base_rows: Option<&'a BTreeMap<&'a str, &'a AdlbRow>>,
    /// Values of the rules evaluated before this one, at this visit.
    earlier: BTreeMap<&'a str, Option<bool>>,
    used: std::cell::RefCell<Vec<String>>,
}

impl Env for VisitEnv<'_> {
    fn var(&self, name: &str) -> Result<Value, EvalError> {
        Err(EvalError(format!(
            "`{name}` is not a function call; use one of {}(CODE)",
            FUNCTIONS.join("(CODE), ")
        )))
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Value, EvalError> {
        if name == "missing" {
            return match args {
                [v] => Ok(Value::Bool(*v == Value::Missing)),
                _ => Err(EvalError("missing() takes one value".into())),
            };
        }
        let code = match args {
            [Value::Str(c)] => c.clone(),
            _ => return Err(EvalError(format!("{name}() takes one parameter code"))),
        };
        if name == "flag" {
            let v = match self.earlier.get(code.as_str()) {
                Some(Some(b)) => Value::Bool(*b),
                Some(None) => Value::Missing,
                None => {
                    return Err(EvalError(format!(
                        "flag({code}): `{code}` is not a rule declared before this one"
                    )));
                }
            };
            self.used.borrow_mut().push(format!("flag({code})={v}"));
            return Ok(v);
        }
        let row = self.rows.get(code.as_str());
        let num = |x: Option<f64>| x.map_or(Value::Missing, Value::Num);
        let v = match name {
            "aval" => num(row.and_then(|r| r.aval)),
            "base" => num(row.and_then(|r| r.base)),
            "chg" => num(row.and_then(|r| r.chg)),
            "pchg" => num(row.and_then(|r| r.pchg)),
            "uln" => num(row.and_then(|r| r.anrhi)),
            "lln" => num(row.and_then(|r| r.anrlo)),
            "text" => row
                .and_then(|r| r.avalc)
                .map_or(Value::Missing, |t| Value::Str(t.to_string())),
            "basetext" => self
                .base_rows
                .and_then(|b| b.get(code.as_str()))
                .and_then(|r| r.avalc)
                .map_or(Value::Missing, |t| Value::Str(t.to_string())),
            other => return Err(EvalError(format!("unknown function `{other}`"))),
        };
        self.used.borrow_mut().push(format!("{name}({code})={v}"));
        Ok(v)
    }

    fn raw_ident_args(&self, name: &str) -> bool {
        name != "missing"
    }
}

/// Evaluate every rule for every subject at every post-baseline visit that has at least one
/// analysis record. `baseline_visitn` is the AVISITN of the baseline window.
pub fn evaluate(
    rules: &[ResponseRule],
    adlb: &[AdlbRow],
    baseline_visitn: f64,
) -> Vec<ResponseFlag> {
    if rules.is_empty() {
        return Vec::new();
    }
    // (USUBJID, AVISITN bits, AVISIT) -> PARAMCD -> row.
    let mut visits: BTreeMap<(&str, u64, &str), BTreeMap<&str, &AdlbRow>> = BTreeMap::new();
    // USUBJID -> PARAMCD -> baseline record.
    let mut baselines: BTreeMap<&str, BTreeMap<&str, &AdlbRow>> = BTreeMap::new();
    for r in adlb {
        if r.ablfl.is_some() && r.dtype.is_none() {
            baselines
                .entry(r.usubjid.as_str())
                .or_default()
                .insert(r.paramcd.as_str(), r);
        }
        if r.anl01fl.is_none() {
            continue;
        }
        let (Some(n), Some(name)) = (r.avisitn, r.avisit.as_deref()) else {
            continue;
        };
        if n <= baseline_visitn {
            continue;
        }
        visits
            .entry((r.usubjid.as_str(), order_key(n), name))
            .or_default()
            .insert(r.paramcd.as_str(), r);
    }
    let parsed: Vec<Result<criteria::Expr, String>> = rules
        .iter()
        .map(|r| criteria::parse(&r.when).map_err(|e| e.to_string()))
        .collect();
    let mut out = Vec::new();
    for ((usubjid, _, avisit), rows) in &visits {
        let any = rows.values().next().copied();
        let mut earlier: BTreeMap<&str, Option<bool>> = BTreeMap::new();
        for (rule, p) in rules.iter().zip(&parsed) {
            let env = VisitEnv {
                rows: rows.clone(),
                base_rows: baselines.get(usubjid),
                earlier: earlier.clone(),
                used: Default::default(),
            };
            let (value, error) = match p {
                Err(e) => (None, Some(e.clone())),
                Ok(expr) => match expr.eval(&env) {
                    Ok(Value::Bool(b)) => (Some(b), None),
                    Ok(Value::Missing) => (None, None),
                    Ok(other) => (
                        None,
                        Some(format!("the rule gives {other}, not true or false")),
                    ),
                    Err(e) => (None, Some(e.0)),
                },
            };
            earlier.insert(rule.id.as_str(), value);
            out.push(ResponseFlag {
                id: rule.id.clone(),
                usubjid: usubjid.to_string(),
                armcd: any.and_then(|r| r.armcd.map(|x| x.to_string())),
                trtp: any.and_then(|r| r.trtp.map(|x| x.to_string())),
                avisit: avisit.to_string(),
                avisitn: any.and_then(|r| r.avisitn).unwrap_or(f64::NAN),
                value,
                detail: env.used.borrow().join(", "),
                error,
            });
        }
    }
    out
}

/// Sortable key of a non-negative or negative visit number.
fn order_key(x: f64) -> u64 {
    let b = x.to_bits();
    if x.is_sign_negative() {
        !b
    } else {
        b | (1 << 63)
    }
}

/// Problems with the rules: syntax, unknown functions, codes not in `known`.
pub fn check(rules: &[ResponseRule], known: &BTreeSet<&str>) -> Vec<(usize, &'static str, String)> {
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, r) in rules.iter().enumerate() {
        if !ids.insert(r.id.as_str()) {
            out.push((i, "id", format!("response id `{}` is used twice", r.id)));
        }
        if r.id.is_empty() || r.id.len() > 8 || !r.id.chars().all(|c| c.is_ascii_alphanumeric()) {
            out.push((
                i,
                "id",
                format!(
                    "response id `{}` must be 1-8 letters or digits (PARAMCD)",
                    r.id
                ),
            ));
        }
        match criteria::parse(&r.when) {
            Err(e) => out.push((i, "when", format!("`{}`: {e}", r.when))),
            Ok(expr) => {
                let (mut vars, mut calls) = (Vec::new(), Vec::new());
                expr.names(&mut vars, &mut calls);
                for v in vars {
                    out.push((
                        i,
                        "when",
                        format!(
                            "`{v}` is not a function call; use one of {}",
                            FUNCTIONS.join(", ")
                        ),
                    ));
                }
                for (f, args) in calls {
                    if !FUNCTIONS.contains(&f.as_str()) {
                        out.push((
                            i,
                            "when",
                            format!("unknown function `{f}`; known: {}", FUNCTIONS.join(", ")),
                        ));
                    } else if f == "flag" {
                        let before: BTreeSet<&str> =
                            rules[..i].iter().map(|r| r.id.as_str()).collect();
                        for a in args.iter().filter(|a| !before.contains(a.as_str())) {
                            out.push((
                                i,
                                "when",
                                format!("flag({a}): `{a}` is not a rule declared before this one"),
                            ));
                        }
                    } else if f != "missing" {
                        for a in args.iter().filter(|a| !known.contains(a.as_str())) {
                            out.push((
                                i,
                                "when",
                                format!("{f}({a}): `{a}` is not a test code of the lab panel"),
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        usubjid: &str,
        paramcd: &str,
        visit: &str,
        n: f64,
        aval: f64,
        base: f64,
        hi: f64,
    ) -> AdlbRow {
        AdlbRow {
            usubjid: usubjid.into(),
            subjid: usubjid.into(),
            siteid: "01".into(),
            trtp: Some("T".into()),
            armcd: Some("T".into()),
            trta: None,
            paramcd: paramcd.into(),
            param: paramcd.into(),
            paramn: 1,
            aval: Some(aval),
            avalc: Some(format!("{aval}").as_str().into()),
            avalu: "U/L".into(),
            adt: None,
            ady: None,
            avisit: Some(visit.into()),
            avisitn: Some(n),
            awtarget: None,
            awlo: None,
            awhi: None,
            ablfl: (n == 0.0).then_some(crate::derive::Y),
            base: Some(base),
            chg: (n > 0.0).then_some(aval - base),
            pchg: (n > 0.0).then_some((aval - base) / base * 100.0),
            anrlo: Some(0.0),
            anrhi: Some(hi),
            anrind: None,
            bnrind: None,
            shift1: None,
            anl01fl: Some(crate::derive::Y),
            worsthfl: None,
            worstlfl: None,
            dtype: None,
            lbseq: None,
            srcfile: Default::default(),
            srcline: 0,
        }
    }

    #[test]
    fn alt_normalisation_and_halving() {
        let rules = vec![
            ResponseRule {
                id: "ALTNORM".into(),
                description: "ALT normal".into(),
                when: "base(ALT) > uln(ALT) and aval(ALT) <= uln(ALT)".into(),
            },
            ResponseRule {
                id: "DNA50".into(),
                description: "50% drop".into(),
                when: "pchg(DNA) <= -50".into(),
            },
        ];
        let adlb = vec![
            row("A", "ALT", "BASELINE", 0.0, 80.0, 80.0, 40.0),
            row("A", "ALT", "WEEK 12", 12.0, 35.0, 80.0, 40.0),
            row("A", "DNA", "WEEK 12", 12.0, 40.0, 100.0, 1e9),
            row("B", "ALT", "WEEK 12", 12.0, 50.0, 80.0, 40.0),
        ];
        let f = evaluate(&rules, &adlb, 0.0);
        assert_eq!(f.len(), 4);
        assert_eq!(
            (f[0].id.as_str(), f[0].usubjid.as_str(), f[0].value),
            ("ALTNORM", "A", Some(true))
        );
        assert_eq!(
            f[0].detail,
            "base(ALT)=80, uln(ALT)=40, aval(ALT)=35, uln(ALT)=40"
        );
        assert_eq!((f[1].id.as_str(), f[1].value), ("DNA50", Some(true)));
        assert_eq!((f[2].usubjid.as_str(), f[2].value), ("B", Some(false)));
        // B has no DNA record at week 12: unknown, not a guess.
        assert_eq!(
            (f[3].id.as_str(), f[3].value, f[3].error.clone()),
            ("DNA50", None, None)
        );
    }

    #[test]
    fn basetext_and_flag_of_earlier_rules() {
        let rules = vec![
            ResponseRule {
                id: "LOSS".into(),
                description: "HBeAg lost".into(),
                when: "basetext(HBEAG) == \"POSITIVE\" and text(HBEAG) == \"NEGATIVE\"".into(),
            },
            ResponseRule {
                id: "NOLOSS".into(),
                description: "not LOSS".into(),
                when: "not flag(LOSS)".into(),
            },
        ];
        let q = |u: &str, visit: &str, n: f64, c: &str| {
            let mut r = row(u, "HBEAG", visit, n, 0.0, 0.0, 0.0);
            (r.aval, r.base, r.chg, r.pchg) = (None, None, None, None);
            r.avalc = Some(c.into());
            r
        };
        let adlb = vec![
            q("A", "BASELINE", 0.0, "POSITIVE"),
            q("A", "WEEK 12", 12.0, "NEGATIVE"),
            q("B", "BASELINE", 0.0, "NEGATIVE"),
            q("B", "WEEK 12", 12.0, "NEGATIVE"),
            q("C", "WEEK 12", 12.0, "NEGATIVE"),
        ];
        let f = evaluate(&rules, &adlb, 0.0);
        let v: Vec<(&str, &str, Option<bool>)> = f
            .iter()
            .map(|x| (x.usubjid.as_str(), x.id.as_str(), x.value))
            .collect();
        assert_eq!(
            v,
            vec![
                ("A", "LOSS", Some(true)),
                ("A", "NOLOSS", Some(false)),
                ("B", "LOSS", Some(false)),
                ("B", "NOLOSS", Some(true)),
                // C has no baseline: unknown, and so is its negation.
                ("C", "LOSS", None),
                ("C", "NOLOSS", None),
            ]
        );
        assert_eq!(f[1].detail, "flag(LOSS)=true");
        // flag() may only name a rule declared before.
        let known = BTreeSet::from(["HBEAG"]);
        let bad = vec![ResponseRule {
            id: "X".into(),
            description: String::new(),
            when: "flag(X)".into(),
        }];
        assert_eq!(
            check(&bad, &known)[0].2,
            "flag(X): `X` is not a rule declared before this one"
        );
    }

    #[test]
    fn check_reports_problems() {
        let known = BTreeSet::from(["ALT"]);
        let rules = vec![ResponseRule {
            id: "TOO_LONG_ID".into(),
            description: String::new(),
            when: "aval(AST) < alt".into(),
        }];
        let p = check(&rules, &known);
        let msgs: Vec<&str> = p.iter().map(|x| x.2.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "response id `TOO_LONG_ID` must be 1-8 letters or digits (PARAMCD)",
                "`alt` is not a function call; use one of aval, base, chg, pchg, text, basetext, uln, lln, flag, missing",
                "aval(AST): `AST` is not a test code of the lab panel"
            ]
        );
    }
}
