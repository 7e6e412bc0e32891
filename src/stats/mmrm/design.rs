//! Input data of the MMRM and the fixed-effects design matrix built from a
//! small formula description, with R's column coding and naming
//! (treatment contrasts, first level = reference).

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use rayon::prelude::*;

use super::super::ancova::{Covariate, Factor};
use super::super::error::StatsError;
use super::{MmrmSpec, parallel};

/// The long table the MMRM is fitted to: one row per subject and visit.
///
/// Rows whose response (or any covariate used by the model) is `NaN` are
/// dropped; subjects with some visits missing stay in with the visits they
/// have. The visit is one of the factors, named by [`MmrmSpec::visit`]; its
/// level codes are the visit index `0..T`. [`Factor`] and [`Covariate`] are
/// the types the ANCOVA uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmrmData<'a> {
    /// Response per row; `NaN` = missing.
    pub response: &'a [f64],
    /// Subject identifier per row (any codes; see [`encode_ids`]).
    pub subject: &'a [usize],
    /// Classification variables, including the visit and the arm; level 0
    /// is the reference level.
    pub factors: &'a [Factor<'a>],
    /// Continuous covariates (`NaN` = missing: the row is dropped).
    pub covariates: &'a [Covariate<'a>],
}

/// One term of the fixed-effects formula.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Term {
    /// Main effect of a factor (treatment contrasts, first level = reference).
    Factor(String),
    /// Linear effect of a continuous covariate.
    Covariate(String),
    /// Interaction of two variables (factor × factor, factor × covariate or
    /// covariate × covariate), R's `a:b`.
    Interaction(String, String),
}

impl Term {
    /// Shorthand for [`Term::Factor`].
    pub fn factor(name: &str) -> Self {
        Term::Factor(name.to_string())
    }
    /// Shorthand for [`Term::Covariate`].
    pub fn covariate(name: &str) -> Self {
        Term::Covariate(name.to_string())
    }
    /// Shorthand for [`Term::Interaction`].
    pub fn interaction(a: &str, b: &str) -> Self {
        Term::Interaction(a.to_string(), b.to_string())
    }

    fn variable_names(&self) -> Vec<&str> {
        match self {
            Term::Factor(a) | Term::Covariate(a) => vec![a.as_str()],
            Term::Interaction(a, b) => vec![a.as_str(), b.as_str()],
        }
    }
}

/// Whether the model has an intercept (R's `~ 1 + ...` versus `~ 0 + ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Intercept {
    /// Intercept column `(Intercept)` (default).
    #[default]
    Included,
    /// No intercept: the first factor is coded by indicators of all its levels, as in R.
    Excluded,
}

/// Codes of `ids` as `0..k` in order of first appearance (for [`MmrmData::subject`]).
pub fn encode_ids<S: Hash + Eq>(ids: &[S]) -> Vec<usize> {
    let mut map: HashMap<&S, usize> = HashMap::new();
    ids.iter()
        .map(|id| {
            let next = map.len();
            *map.entry(id).or_insert(next)
        })
        .collect()
}

/// Level codes of `labels` given the ordered `levels` (for [`Factor::codes`]).
///
/// Errors: `InvalidInput` when a label is not one of the levels.
pub fn encode_levels<S: AsRef<str>>(
    labels: &[S],
    levels: &[&str],
) -> Result<Vec<usize>, StatsError> {
    let map: HashMap<&str, usize> = levels.iter().enumerate().map(|(i, l)| (*l, i)).collect();
    labels
        .iter()
        .map(|l| {
            map.get(l.as_ref())
                .copied()
                .ok_or_else(|| StatsError::InvalidInput {
                    what: "factor labels",
                    reason: format!("{:?} is not one of the levels {levels:?}", l.as_ref()),
                })
        })
        .collect()
}

/// A variable referenced by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Var {
    Factor(usize),
    Covariate(usize),
}

/// One factor of a design column: a factor level indicator or a covariate value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Component {
    Level { factor: usize, level: usize },
    Covariate(usize),
}

/// The model-ready data: used rows, design matrix and what inference needs.
#[derive(Debug, Clone)]
pub(crate) struct Design {
    /// Column names, R style.
    pub names: Vec<String>,
    /// Per column, the product of components giving its value (empty = intercept).
    pub recipes: Vec<Vec<Component>>,
    /// Design matrix, used rows × columns, row-major.
    pub x: Vec<f64>,
    /// Response of the used rows.
    pub y: Vec<f64>,
    /// Compact subject index of the used rows.
    pub subject: Vec<usize>,
    /// Visit index of the used rows.
    pub visit: Vec<usize>,
    /// Number of subjects with at least one used row.
    pub n_subjects: usize,
    /// Number of distinct subject identifiers in the input (SAS "Subjects").
    pub n_subjects_input: usize,
    /// Visit labels.
    pub visit_levels: Vec<String>,
    /// Index of the visit factor.
    pub visit_factor: usize,
    /// Index of the arm factor, if any.
    pub arm_factor: Option<usize>,
    /// Factor names and levels.
    pub factor_levels: Vec<(String, Vec<String>)>,
    /// Mean of each covariate over the used rows (`NaN` for covariates not in the model).
    pub covariate_means: Vec<f64>,
    /// Whether each column varies within at least one subject.
    pub within: Vec<bool>,
    /// Whether the model has an intercept.
    pub intercept: bool,
}

impl Design {
    pub fn n_obs(&self) -> usize {
        self.y.len()
    }
    pub fn p(&self) -> usize {
        self.names.len()
    }

    /// Row of the reference grid: the listed factors at the given levels,
    /// other factors weighted equally over their levels, covariates at their
    /// mean (emmeans' and SAS's LS-means).
    pub fn grid_row(&self, fixed: &[(usize, usize)]) -> Vec<f64> {
        self.recipes
            .iter()
            .map(|recipe| {
                recipe.iter().fold(1.0, |acc, comp| {
                    acc * match *comp {
                        Component::Level { factor, level } => {
                            match fixed.iter().find(|(f, _)| *f == factor) {
                                Some(&(_, l)) => f64::from(u8::from(l == level)),
                                None => 1.0 / self.factor_levels[factor].1.len() as f64,
                            }
                        }
                        Component::Covariate(c) => self.covariate_means[c],
                    }
                })
            })
            .collect()
    }
}

/// Whether [`build_design`] refuses a design without full column rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RankCheck {
    Enforce,
    Skip,
}

/// Names of the design columns that are linear combinations of the columns
/// before them (R's `NA` coefficients in `lm`).
pub(crate) fn aliased_column_names(
    data: &MmrmData<'_>,
    spec: &MmrmSpec,
) -> Result<Vec<String>, StatsError> {
    let d = build_design(data, spec, RankCheck::Skip)?;
    Ok(aliased_columns(&d.x, d.n_obs(), d.p())
        .into_iter()
        .map(|j| d.names[j].clone())
        .collect())
}

/// Builds the design from the data and the model specification.
pub(crate) fn build_design(
    data: &MmrmData<'_>,
    spec: &MmrmSpec,
    rank: RankCheck,
) -> Result<Design, StatsError> {
    let n = data.response.len();
    let invalid = |reason: String| {
        Err(StatsError::InvalidInput {
            what: "MMRM data or specification",
            reason,
        })
    };
    if data.subject.len() != n {
        return invalid(format!(
            "subject has {} rows, response has {n}",
            data.subject.len()
        ));
    }
    let mut names: HashMap<&str, Var> = HashMap::new();
    for (i, f) in data.factors.iter().enumerate() {
        if f.codes.len() != n {
            return invalid(format!(
                "factor {} has {} rows, response has {n}",
                f.name,
                f.codes.len()
            ));
        }
        if f.levels.is_empty() {
            return invalid(format!("factor {} has no levels", f.name));
        }
        if names.insert(f.name, Var::Factor(i)).is_some() {
            return invalid(format!("variable name {} is used twice", f.name));
        }
    }
    for (i, c) in data.covariates.iter().enumerate() {
        if c.values.len() != n {
            return invalid(format!(
                "covariate {} has {} rows, response has {n}",
                c.name,
                c.values.len()
            ));
        }
        if names.insert(c.name, Var::Covariate(i)).is_some() {
            return invalid(format!("variable name {} is used twice", c.name));
        }
    }
    let visit_factor = match names.get(spec.visit.as_str()) {
        Some(Var::Factor(i)) => *i,
        _ => {
            return invalid(format!(
                "visit variable {} is not a factor of the data",
                spec.visit
            ));
        }
    };
    let arm_factor = match &spec.arm {
        None => None,
        Some(a) => match names.get(a.as_str()) {
            Some(Var::Factor(i)) => Some(*i),
            _ => return invalid(format!("arm variable {a} is not a factor of the data")),
        },
    };

    // Resolve the terms to variable sets.
    let mut terms: Vec<Vec<Var>> = Vec::new();
    for term in &spec.terms {
        let mut vars = Vec::new();
        for name in term.variable_names() {
            let v = match names.get(name) {
                Some(v) => *v,
                None => return invalid(format!("model variable {name} is not in the data")),
            };
            match (term, v) {
                (Term::Factor(_), Var::Covariate(_)) => {
                    return invalid(format!("{name} is a covariate, not a factor"));
                }
                (Term::Covariate(_), Var::Factor(_)) => {
                    return invalid(format!("{name} is a factor, not a covariate"));
                }
                _ => {}
            }
            vars.push(v);
        }
        if vars.len() == 2 && vars[0] == vars[1] {
            return invalid(format!(
                "interaction of {} with itself",
                term.variable_names()[0]
            ));
        }
        let set: BTreeSet<Var> = vars.iter().copied().collect();
        if terms
            .iter()
            .any(|t| t.iter().copied().collect::<BTreeSet<_>>() == set)
        {
            return invalid(format!("term {:?} appears twice", term.variable_names()));
        }
        terms.push(vars);
    }
    if let Some(a) = arm_factor
        && !terms.iter().flatten().any(|v| *v == Var::Factor(a))
    {
        return invalid(format!(
            "arm variable {} is not in any model term",
            data.factors[a].name
        ));
    }
    // R orders terms by their order (main effects before interactions).
    terms.sort_by_key(|t| t.len());
    let intercept = spec.intercept == Intercept::Included;
    if !intercept && terms.is_empty() {
        return invalid("the model has no intercept and no terms".to_string());
    }

    // Rows used: response and covariates present; codes valid.
    let used_covariates: BTreeSet<usize> = terms
        .iter()
        .flatten()
        .filter_map(|v| match v {
            Var::Covariate(c) => Some(*c),
            Var::Factor(_) => None,
        })
        .collect();
    let used_factors: BTreeSet<usize> = terms
        .iter()
        .flatten()
        .filter_map(|v| match v {
            Var::Factor(f) => Some(*f),
            Var::Covariate(_) => None,
        })
        .chain(std::iter::once(visit_factor))
        .chain(arm_factor)
        .collect();
    for &f in &used_factors {
        let fac = &data.factors[f];
        if let Some(i) = fac.codes.iter().position(|&c| c >= fac.levels.len()) {
            return invalid(format!(
                "factor {} has code {} at row {i}, but only {} levels",
                fac.name,
                fac.codes[i],
                fac.levels.len()
            ));
        }
    }
    if let Some(index) = data.response.iter().position(|v| v.is_infinite()) {
        return Err(StatsError::NonFiniteInput {
            what: "response",
            index,
            value: data.response[index],
        });
    }
    for &c in &used_covariates {
        let vals = data.covariates[c].values;
        if let Some(index) = vals.iter().position(|v| v.is_infinite()) {
            return Err(StatsError::NonFiniteInput {
                what: "covariate",
                index,
                value: vals[index],
            });
        }
    }
    let rows: Vec<usize> = (0..n)
        .filter(|&i| {
            !data.response[i].is_nan()
                && used_covariates
                    .iter()
                    .all(|&c| !data.covariates[c].values[i].is_nan())
        })
        .collect();
    if rows.is_empty() {
        return Err(StatsError::EmptyInput {
            what: "complete observations (response and covariates)",
        });
    }
    let visit_levels: Vec<String> = data.factors[visit_factor]
        .levels
        .iter()
        .map(|l| l.to_string())
        .collect();
    let t = visit_levels.len();
    let mut per_visit = vec![0usize; t];
    for &i in &rows {
        per_visit[data.factors[visit_factor].codes[i]] += 1;
    }
    if let Some(level) = per_visit.iter().position(|&c| c == 0) {
        return Err(StatsError::EmptyGroup {
            what: "visit",
            level,
        });
    }

    // Subjects.
    let n_subjects_input = encode_codes(data.subject).iter().max().map_or(0, |m| m + 1);
    let used_ids: Vec<usize> = rows.iter().map(|&i| data.subject[i]).collect();
    let subject = encode_codes(&used_ids);
    let n_subjects = subject.iter().max().map_or(0, |m| m + 1);
    let visit: Vec<usize> = rows
        .iter()
        .map(|&i| data.factors[visit_factor].codes[i])
        .collect();
    let mut seen = vec![false; n_subjects * t];
    for (k, (&s, &v)) in subject.iter().zip(&visit).enumerate() {
        if std::mem::replace(&mut seen[s * t + v], true) {
            return invalid(format!(
                "subject {} has more than one observation at visit {}",
                used_ids[k], visit_levels[v]
            ));
        }
    }

    // Columns with R's coding rule.
    let term_set: Vec<BTreeSet<Var>> = terms.iter().map(|t| t.iter().copied().collect()).collect();
    let var_name = |v: Var| -> &str {
        match v {
            Var::Factor(f) => data.factors[f].name,
            Var::Covariate(c) => data.covariates[c].name,
        }
    };
    let mut col_names: Vec<String> = Vec::new();
    let mut recipes: Vec<Vec<Component>> = Vec::new();
    if intercept {
        col_names.push("(Intercept)".to_string());
        recipes.push(Vec::new());
    }
    let mut dummy_coded_first = intercept; // no intercept: first factor gets indicators
    for (ti, term) in terms.iter().enumerate() {
        // Per variable: the list of (name piece, component).
        let mut pieces: Vec<Vec<(String, Component)>> = Vec::new();
        for &v in term {
            match v {
                Var::Covariate(c) => {
                    pieces.push(vec![(var_name(v).to_string(), Component::Covariate(c))]);
                }
                Var::Factor(f) => {
                    let margin: BTreeSet<Var> =
                        term_set[ti].iter().copied().filter(|&w| w != v).collect();
                    let mut contrasts = if margin.is_empty() {
                        true
                    } else {
                        term_set.contains(&margin)
                    };
                    if !dummy_coded_first {
                        contrasts = false;
                        dummy_coded_first = true;
                    }
                    let fac = &data.factors[f];
                    let start = usize::from(contrasts);
                    pieces.push(
                        (start..fac.levels.len())
                            .map(|l| {
                                (
                                    format!("{}{}", fac.name, fac.levels[l]),
                                    Component::Level {
                                        factor: f,
                                        level: l,
                                    },
                                )
                            })
                            .collect(),
                    );
                }
            }
        }
        // Cartesian product of the per-variable pieces.
        let mut combos: Vec<(Vec<String>, Vec<Component>)> = vec![(Vec::new(), Vec::new())];
        for list in &pieces {
            let mut next = Vec::new();
            for (name, comp) in list {
                for (names_so_far, comps_so_far) in &combos {
                    let mut n2 = names_so_far.clone();
                    n2.push(name.clone());
                    let mut c2 = comps_so_far.clone();
                    c2.push(*comp);
                    next.push((n2, c2));
                }
            }
            combos = next;
        }
        // The loops above make the first variable vary fastest (R's order).
        for (nm, comps) in combos {
            col_names.push(nm.join(":"));
            recipes.push(comps);
        }
    }
    let p = col_names.len();

    // Design matrix.
    let value = |row: usize, comp: &Component| -> f64 {
        match *comp {
            Component::Level { factor, level } => {
                f64::from(u8::from(data.factors[factor].codes[row] == level))
            }
            Component::Covariate(c) => data.covariates[c].values[row],
        }
    };
    let mut x = vec![0.0; rows.len() * p];
    x.par_chunks_mut(p * parallel::CHUNK)
        .zip(rows.par_chunks(parallel::CHUNK))
        .for_each(|(xc, rc)| {
            for (xr, &i) in xc.chunks_exact_mut(p).zip(rc) {
                for (xv, recipe) in xr.iter_mut().zip(&recipes) {
                    *xv = recipe.iter().fold(1.0, |acc, c| acc * value(i, c));
                }
            }
        });
    let y: Vec<f64> = rows.iter().map(|&i| data.response[i]).collect();
    let n_used = rows.len();
    if rank == RankCheck::Enforce && !aliased_columns(&x, n_used, p).is_empty() {
        return Err(StatsError::Singular {
            what: "MMRM fixed-effects design matrix",
        });
    }
    if n_used <= p {
        return Err(StatsError::TooFewObservations {
            what: "complete observations (more than the number of fixed effects)",
            n: n_used,
            required: p + 1,
        });
    }

    let mut covariate_means = vec![f64::NAN; data.covariates.len()];
    for &c in &used_covariates {
        let v = data.covariates[c].values;
        covariate_means[c] = rows.iter().map(|&i| v[i]).sum::<f64>() / n_used as f64;
    }

    // Within-subject variation of each column.
    let mut first_value = vec![f64::NAN; n_subjects * p];
    let mut within = vec![false; p];
    for (k, &s) in subject.iter().enumerate() {
        for j in 0..p {
            let v = x[k * p + j];
            let f = &mut first_value[s * p + j];
            if f.is_nan() {
                *f = v;
            } else if *f != v {
                within[j] = true;
            }
        }
    }

    Ok(Design {
        names: col_names,
        recipes,
        x,
        y,
        subject,
        visit,
        n_subjects,
        n_subjects_input,
        visit_levels,
        visit_factor,
        arm_factor,
        factor_levels: data
            .factors
            .iter()
            .map(|f| {
                (
                    f.name.to_string(),
                    f.levels.iter().map(|l| l.to_string()).collect(),
                )
            })
            .collect(),
        covariate_means,
        within,
        intercept,
    })
}

/// Columns that are, to a relative tolerance of 1e-7, linear combinations
/// of the non-aliased columns before them (modified Gram-Schmidt with
/// re-orthogonalization, R's `lm` criterion). Empty when `x` has full column
/// rank.
///
/// Dot products are summed in fixed chunks reduced in order
/// ([`parallel::dot`]), so the decision does not depend on the number of threads.
fn aliased_columns(x: &[f64], n: usize, p: usize) -> Vec<usize> {
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut aliased = Vec::new();
    for j in 0..p {
        let mut v: Vec<f64> = (0..n).map(|i| x[i * p + j]).collect();
        let norm0 = parallel::dot(&v, &v).sqrt();
        if norm0 == 0.0 {
            aliased.push(j);
            continue;
        }
        for _ in 0..2 {
            for q in &basis {
                let d = parallel::dot(q, &v);
                parallel::axpy_neg(&mut v, d, q);
            }
        }
        let norm = parallel::dot(&v, &v).sqrt();
        if norm < 1e-7 * norm0 {
            aliased.push(j);
            continue;
        }
        v.par_iter_mut().for_each(|vi| *vi /= norm);
        basis.push(v);
    }
    aliased
}

/// [`encode_ids`] for integer codes: a lookup table instead of hashing when
/// the codes are not much larger than their number (the usual case: codes
/// from [`encode_ids`] itself), the same result either way.
fn encode_codes(ids: &[usize]) -> Vec<usize> {
    let max = ids.iter().copied().max().unwrap_or(0);
    if max > 4 * ids.len() + 1024 {
        return encode_ids(ids);
    }
    let mut map = vec![usize::MAX; max + 1];
    let mut next = 0;
    ids.iter()
        .map(|&id| {
            if map[id] == usize::MAX {
                map[id] = next;
                next += 1;
            }
            map[id]
        })
        .collect()
}
