//! Eligibility: evaluate the pipeline's inclusion and exclusion criteria for every subject.
//!
//! Each criterion is an expression of the criteria language (`crate::criteria`). Variables are
//! the subject's columns in the subjects file (private columns excluded); functions give the
//! baseline value of a panel test, its normal limits, and day differences between date columns.
//! A subject is **eligible** when every inclusion criterion is true and every exclusion criterion
//! is false, **ineligible** when an inclusion criterion is false or an exclusion criterion true,
//! and **unknown** otherwise (the data cannot show it). Pure: the caller supplies the facts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::criteria::{self, Env, EvalError, Value};
use crate::spec::{Criterion, CriterionKind};

/// What is known about one subject.
#[derive(Debug, Clone, Default)]
pub struct SubjectFacts {
    /// Subject id.
    pub subject_id: String,
    /// Raw text of every non-private column of the subjects file.
    pub columns: BTreeMap<String, String>,
    /// Baseline values in the standard unit, by test code.
    pub baseline: BTreeMap<String, f64>,
    /// (lower, upper) normal limits by test code for this subject.
    pub normal: BTreeMap<String, (Option<f64>, Option<f64>)>,
    /// Declared date format of the subjects file (None: ISO 8601).
    pub date_format: Option<String>,
}

/// The verdict on one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every criterion is satisfied.
    Eligible,
    /// At least one criterion is violated.
    Ineligible,
    /// None violated, but at least one cannot be shown.
    Unknown,
}

/// One criterion for one subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriterionResult {
    /// Subject id.
    pub subject_id: String,
    /// Criterion id.
    pub criterion: String,
    /// Inclusion or exclusion.
    pub kind: CriterionKind,
    /// Value of the expression (None: unknown).
    pub value: Option<bool>,
    /// Whether the subject satisfies the criterion in the eligible direction (None: unknown).
    pub satisfied: Option<bool>,
    /// The variables and function values the expression used, as `name=value`.
    pub detail: String,
    /// An evaluation error (wrong type, unknown variable), when there was one.
    pub error: Option<String>,
}

/// One subject's eligibility.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectEligibility {
    /// Subject id.
    pub subject_id: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Criteria violated.
    pub violated: Vec<String>,
    /// Criteria that could not be evaluated.
    pub unknown: Vec<String>,
}

struct FactsEnv<'a> {
    f: &'a SubjectFacts,
    used: std::cell::RefCell<Vec<String>>,
}

impl FactsEnv<'_> {
    fn note(&self, name: String, v: &Value) {
        let entry = format!("{name}={v}");
        let mut u = self.used.borrow_mut();
        if !u.contains(&entry) {
            u.push(entry);
        }
    }
}

fn text_value(raw: &str) -> Value {
    let t = raw.trim();
    if t.is_empty() {
        Value::Missing
    } else if let Some(v) = crate::ingest::parse_number(t) {
        Value::Num(v)
    } else {
        Value::Str(t.to_string())
    }
}

impl Env for FactsEnv<'_> {
    fn var(&self, name: &str) -> Result<Value, EvalError> {
        let raw = self.f.columns.get(name).ok_or_else(|| {
            EvalError(format!(
                "the subjects file has no column `{name}` (columns: {})",
                self.f
                    .columns
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let v = text_value(raw);
        self.note(name.to_string(), &v);
        Ok(v)
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Value, EvalError> {
        let code = |args: &[Value]| match args {
            [Value::Str(c)] => Ok(c.clone()),
            _ => Err(EvalError(format!("{name}() takes one test code"))),
        };
        let v = match name {
            "baseline" => {
                let c = code(args)?;
                let v = self
                    .f
                    .baseline
                    .get(&c)
                    .map_or(Value::Missing, |v| Value::Num(*v));
                self.note(format!("baseline({c})"), &v);
                v
            }
            "uln" | "lln" => {
                let c = code(args)?;
                let (lo, hi) = self.f.normal.get(&c).copied().unwrap_or((None, None));
                let x = if name == "uln" { hi } else { lo };
                let v = x.map_or(Value::Missing, Value::Num);
                self.note(format!("{name}({c})"), &v);
                v
            }
            "days" => match args {
                [Value::Str(a), Value::Str(b)] => {
                    let date = |col: &str| -> Result<Option<chrono::NaiveDate>, EvalError> {
                        let raw = self.f.columns.get(col).ok_or_else(|| {
                            EvalError(format!("the subjects file has no column `{col}`"))
                        })?;
                        Ok(crate::ingest::parse_date(
                            raw,
                            self.f.date_format.as_deref(),
                        ))
                    };
                    let v = match (date(a)?, date(b)?) {
                        (Some(x), Some(y)) => Value::Num((y - x).num_days() as f64),
                        _ => Value::Missing,
                    };
                    self.note(format!("days({a}, {b})"), &v);
                    v
                }
                _ => return Err(EvalError("days() takes two date column names".into())),
            },
            "missing" => match args {
                [v] => Value::Bool(*v == Value::Missing),
                _ => return Err(EvalError("missing() takes one value".into())),
            },
            other => return Err(EvalError(format!("unknown function `{other}`"))),
        };
        Ok(v)
    }

    fn raw_ident_args(&self, name: &str) -> bool {
        matches!(name, "baseline" | "uln" | "lln" | "days")
    }
}

/// Evaluate every criterion for every subject.
pub fn evaluate(
    criteria: &[Criterion],
    subjects: &[SubjectFacts],
) -> (Vec<CriterionResult>, Vec<SubjectEligibility>) {
    let parsed: Vec<Result<criteria::Expr, String>> = criteria
        .iter()
        .map(|c| criteria::parse(&c.when).map_err(|e| e.to_string()))
        .collect();
    let mut results = Vec::new();
    let mut verdicts = Vec::new();
    for f in subjects {
        let mut violated = Vec::new();
        let mut unknown = Vec::new();
        for (c, p) in criteria.iter().zip(&parsed) {
            let env = FactsEnv {
                f,
                used: Default::default(),
            };
            let (value, error) = match p {
                Err(e) => (None, Some(e.clone())),
                Ok(expr) => match expr.eval(&env) {
                    Ok(Value::Bool(b)) => (Some(b), None),
                    Ok(Value::Missing) => (None, None),
                    Ok(other) => (
                        None,
                        Some(format!("the expression gives {other}, not true or false")),
                    ),
                    Err(e) => (None, Some(e.0)),
                },
            };
            let satisfied = value.map(|v| match c.kind {
                CriterionKind::Inclusion => v,
                CriterionKind::Exclusion => !v,
            });
            match satisfied {
                Some(false) => violated.push(c.id.clone()),
                None => unknown.push(c.id.clone()),
                Some(true) => {}
            }
            results.push(CriterionResult {
                subject_id: f.subject_id.clone(),
                criterion: c.id.clone(),
                kind: c.kind,
                value,
                satisfied,
                detail: env.used.borrow().join(", "),
                error,
            });
        }
        let verdict = if !violated.is_empty() {
            Verdict::Ineligible
        } else if !unknown.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Eligible
        };
        verdicts.push(SubjectEligibility {
            subject_id: f.subject_id.clone(),
            verdict,
            violated,
            unknown,
        });
    }
    (results, verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit(id: &str, kind: CriterionKind, when: &str) -> Criterion {
        Criterion {
            id: id.into(),
            kind,
            description: id.into(),
            when: when.into(),
        }
    }

    fn subject(id: &str, age: &str, he: &str, pt: Option<f64>) -> SubjectFacts {
        let mut f = SubjectFacts {
            subject_id: id.into(),
            ..Default::default()
        };
        f.columns.insert("age".into(), age.into());
        f.columns.insert("hepatic_encephalopathy".into(), he.into());
        f.columns
            .insert("randomization_date".into(), "2021-03-22".into());
        f.columns
            .insert("last_albumin_date".into(), "2021-03-08".into());
        if let Some(v) = pt {
            f.baseline.insert("PT".into(), v);
        }
        f.normal.insert("PT".into(), (Some(11.0), Some(13.5)));
        f
    }

    #[test]
    fn verdicts() {
        let criteria = vec![
            crit("AGE", CriterionKind::Inclusion, "age >= 20 and age <= 60"),
            crit(
                "HE",
                CriterionKind::Exclusion,
                "hepatic_encephalopathy in [\"Y\"]",
            ),
            crit("PT", CriterionKind::Exclusion, "baseline(PT) - uln(PT) > 3"),
            crit(
                "ALB",
                CriterionKind::Exclusion,
                "days(last_albumin_date, randomization_date) <= 21",
            ),
        ];
        let subjects = vec![
            subject("A", "45", "N", Some(15.0)),
            subject("B", "61", "N", Some(15.0)),
            subject("C", "45", "N", None),
            subject("D", "", "y", Some(17.0)),
        ];
        let mut subjects = subjects;
        subjects[0]
            .columns
            .insert("last_albumin_date".into(), "2020-01-01".into());
        subjects[2]
            .columns
            .insert("last_albumin_date".into(), "".into());
        let (res, v) = evaluate(&criteria, &subjects);
        assert_eq!(res.len(), 16);
        assert_eq!(v[0].verdict, Verdict::Eligible, "{:?}", v[0]);
        assert_eq!(v[1].verdict, Verdict::Ineligible);
        assert_eq!(v[1].violated, vec!["AGE", "ALB"]);
        assert_eq!(v[2].verdict, Verdict::Unknown);
        assert_eq!(v[2].unknown, vec!["PT", "ALB"]);
        assert_eq!(v[3].verdict, Verdict::Ineligible);
        assert_eq!(v[3].violated, vec!["HE", "PT", "ALB"]);
        assert_eq!(v[3].unknown, vec!["AGE"]);
        let pt = &res[2];
        assert_eq!(pt.detail, "baseline(PT)=15, uln(PT)=13.5");
        assert_eq!(pt.value, Some(false));
        assert_eq!(
            res[3].detail,
            "days(last_albumin_date, randomization_date)=446"
        );
    }

    #[test]
    fn unknown_column_is_an_error_not_a_guess() {
        let criteria = vec![crit("X", CriterionKind::Inclusion, "cirrhosis_years > 5")];
        let (res, v) = evaluate(&criteria, &[subject("A", "45", "N", None)]);
        assert_eq!(v[0].verdict, Verdict::Unknown);
        assert!(
            res[0]
                .error
                .as_deref()
                .unwrap()
                .starts_with("the subjects file has no column `cirrhosis_years`"),
            "{:?}",
            res[0].error
        );
    }
}
