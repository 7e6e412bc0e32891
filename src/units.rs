//! Units of lab results: spelling normalization and conversion to a test's standard unit.
//!
//! # Design
//!
//! The registry is DATA, kept in `units/registry.toml` and embedded with `include_str!`; this
//! file holds only the machinery. The data has three tables:
//!
//! - `[[unit]]`: a canonical symbol, its dimension and the extra spellings sites type for it.
//! - `[[generic]]`: conversions that are true by definition for every analyte (SI prefixes,
//!   `10^9/L = 10^3/uL`, `1 U/L = 1/60 ukat/L`, the log10 form of a unit).
//! - `[[analyte]]`: conversions that hold only for the listed test codes, because the factor
//!   depends on the substance (molar mass, valence) or on the assay (HBV DNA IU to copies).
//!
//! Every edge carries a `source` string and is written once; its inverse is derived by code.
//!
//! **Normalization** ([`Registry::canonical`]) removes all whitespace, maps the micro sign
//! (U+00B5) and the Greek mu (U+03BC) to `u`, the multiplication sign `×` to `x`, superscript
//! digits to `^` and digits (`10⁹` becomes `10^9`; after a letter the caret is dropped, so
//! `mm³` and `mm^3` become `mm3`), then looks the result up among the symbols and aliases, first
//! exactly and then ignoring case. A case-insensitive match is used only when it is unambiguous:
//! `G/L` (giga per litre, a count) and `g/L` (grams per litre) differ only in case, so `G/l` is
//! unknown while `G/L`, `g/L` and `g/l` (an explicit alias) are not.
//!
//! **Conversion** ([`Registry::conversion`]) normalizes both units, returns
//! [`Conversion::Identity`] when they are the same unit, and otherwise runs a breadth-first
//! search over the edges valid for the analyte: all generic edges plus that analyte's edges, each
//! usable in both directions. Steps are composed algebraically into a single [`Conversion`];
//! linear and affine steps compose freely, and log steps compose where the result stays in the
//! same family (see [`Conversion::then`]). The search is over (unit, kind of composed conversion)
//! pairs, so it finds the shortest path whose composition is representable. A pair of units with
//! no such path is [`UnitError::NoPath`]: the registry never guesses.
//!
//! **Consistency.** When the registry is built, and when a pipeline adds conversions with
//! [`Registry::with_extra`], each new edge is checked against the conversion the registry already
//! implies between its two units. The embedded data may not repeat a conversion that is already
//! implied; an extra conversion that agrees with one (within 1e-9 relative) is accepted as a
//! no-op, and one that disagrees is [`UnitError::Inconsistent`]. So the factor between two units
//! does not depend on the path the search happens to take.
//!
//! The module does no I/O besides the embedded data and does not panic on user input;
//! [`Registry::builtin`] expects the embedded data to parse, which a unit test proves.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::OnceLock;

use serde::Deserialize;

/// The embedded registry data.
const BUILTIN_TOML: &str = include_str!("units/registry.toml");

/// Relative tolerance under which two conversions between the same units are taken to agree.
const AGREEMENT_TOLERANCE: f64 = 1e-9;

/// How to turn a value in one unit into a value in another.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Conversion {
    Identity,
    /// to = from * factor
    Linear {
        factor: f64,
    },
    /// to = from * scale + offset (HbA1c NGSP % <-> IFCC mmol/mol)
    Affine {
        scale: f64,
        offset: f64,
    },
    /// to = log10(from * factor)  (e.g. copies/mL -> log10 IU/mL)
    ToLog10 {
        factor: f64,
    },
    /// to = 10^from * factor
    FromLog10 {
        factor: f64,
    },
}

/// The shape of a conversion, which alone decides what it composes with (see [`Conversion::then`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Shape {
    Identity,
    Linear,
    /// Affine with scale exactly 1 and a non-zero offset.
    Shift,
    /// Affine with scale other than 1 and a non-zero offset.
    Affine,
    ToLog10,
    FromLog10,
}

impl Conversion {
    /// Converts `x`. None when the input is outside the domain (log of a value <= 0,
    /// non-finite input) or the result is not finite.
    pub fn apply(&self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        let y = match *self {
            Conversion::Identity => x,
            Conversion::Linear { factor } => x * factor,
            Conversion::Affine { scale, offset } => x * scale + offset,
            Conversion::ToLog10 { factor } => {
                let v = x * factor;
                if v.is_nan() || v <= 0.0 {
                    return None;
                }
                v.log10()
            }
            Conversion::FromLog10 { factor } => 10f64.powf(x) * factor,
        };
        y.is_finite().then_some(y)
    }

    /// The conversion in the opposite direction. None when `self` is not a valid unit conversion
    /// (a factor or scale that is not finite and greater than zero, or a non-finite offset).
    pub fn inverse(&self) -> Option<Conversion> {
        let inverse = match *self {
            Conversion::Identity => Conversion::Identity,
            Conversion::Linear { factor } => Conversion::Linear {
                factor: 1.0 / factor,
            },
            Conversion::Affine { scale, offset } => Conversion::Affine {
                scale: 1.0 / scale,
                offset: -offset / scale,
            },
            Conversion::ToLog10 { factor } => Conversion::FromLog10 {
                factor: 1.0 / factor,
            },
            Conversion::FromLog10 { factor } => Conversion::ToLog10 {
                factor: 1.0 / factor,
            },
        };
        (self.is_valid() && inverse.is_valid()).then_some(inverse)
    }

    /// `self` followed by `next`, as one conversion: `next(self(x))`.
    ///
    /// None when the composition is not in this family: a log step after a non-zero offset,
    /// a power step (`FromLog10`) after anything that scales, a scale or offset applied to a log
    /// result other than a pure shift, two log steps in a row in the same direction, or when
    /// either operand is not valid. `ToLog10` then `FromLog10` composes to `Linear` (the log's
    /// restriction to positive inputs is not carried over).
    pub fn then(&self, next: Conversion) -> Option<Conversion> {
        use Conversion::{Affine, FromLog10, Identity, Linear, ToLog10};
        if !self.is_valid() || !next.is_valid() {
            return None;
        }
        let composed = match (self.normalized(), next.normalized()) {
            (Identity, b) => b,
            (a, Identity) => a,
            (Linear { factor: k1 }, Linear { factor: k2 }) => Linear { factor: k1 * k2 },
            (Linear { factor: k }, Affine { scale, offset }) => Affine {
                scale: k * scale,
                offset,
            },
            (Linear { factor: k }, ToLog10 { factor: c }) => ToLog10 { factor: c * k },
            (Affine { scale, offset }, Linear { factor: k }) => Affine {
                scale: scale * k,
                offset: offset * k,
            },
            (
                Affine {
                    scale: s1,
                    offset: o1,
                },
                Affine {
                    scale: s2,
                    offset: o2,
                },
            ) => Affine {
                scale: s1 * s2,
                offset: s2 * o1 + o2,
            },
            (Affine { scale: 1.0, offset }, FromLog10 { factor: c }) => FromLog10 {
                factor: c * 10f64.powf(offset),
            },
            (ToLog10 { factor: c }, Affine { scale: 1.0, offset }) => ToLog10 {
                factor: c * 10f64.powf(offset),
            },
            (ToLog10 { factor: c }, FromLog10 { factor: d }) => Linear { factor: c * d },
            (FromLog10 { factor: c }, Linear { factor: k }) => FromLog10 { factor: c * k },
            (FromLog10 { factor: c }, ToLog10 { factor: d }) => Affine {
                scale: 1.0,
                offset: (c * d).log10(),
            },
            _ => return None,
        }
        .normalized();
        composed.is_valid().then_some(composed)
    }

    /// True when every parameter is finite and factors and scales are greater than zero
    /// (unit conversions are increasing functions).
    fn is_valid(&self) -> bool {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        match *self {
            Conversion::Identity => true,
            Conversion::Linear { factor }
            | Conversion::ToLog10 { factor }
            | Conversion::FromLog10 { factor } => positive(factor),
            Conversion::Affine { scale, offset } => positive(scale) && offset.is_finite(),
        }
    }

    /// The same function in its simplest variant: factor 1 is Identity, offset 0 is Linear.
    fn normalized(self) -> Conversion {
        match self {
            Conversion::Linear { factor: 1.0 } => Conversion::Identity,
            Conversion::Affine { scale, offset: 0.0 } => {
                Conversion::Linear { factor: scale }.normalized()
            }
            other => other,
        }
    }

    fn shape(self) -> Shape {
        match self.normalized() {
            Conversion::Identity => Shape::Identity,
            Conversion::Linear { .. } => Shape::Linear,
            Conversion::Affine { scale: 1.0, .. } => Shape::Shift,
            Conversion::Affine { .. } => Shape::Affine,
            Conversion::ToLog10 { .. } => Shape::ToLog10,
            Conversion::FromLog10 { .. } => Shape::FromLog10,
        }
    }

    /// Whether two conversions between the same units give the same results, sampled at points
    /// inside every variant's domain.
    fn agrees_with(&self, other: &Conversion) -> bool {
        [0.5, 3.0, 40.0]
            .iter()
            .all(|&x| match (self.apply(x), other.apply(x)) {
                (Some(p), Some(q)) => {
                    (p - q).abs() <= AGREEMENT_TOLERANCE * p.abs().max(q.abs()) + 1e-12
                }
                (None, None) => true,
                _ => false,
            })
    }
}

/// A conversion declared by a pipeline for one analyte: `value_in_to = value_in_from * factor`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtraConversion {
    pub analyte: String,
    pub from: String,
    pub to: String,
    pub factor: f64,
}

/// Why a unit could not be recognized or converted, or why registry data was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum UnitError {
    #[error("unknown unit `{raw}`")]
    UnknownUnit { raw: String },
    #[error("no conversion for {analyte} from `{from}` to `{to}`")]
    NoPath {
        analyte: String,
        from: String,
        to: String,
    },
    #[error(
        "conversion for {analyte} from `{from}` to `{to}`: factor {factor} is not a finite number greater than zero"
    )]
    InvalidFactor {
        analyte: String,
        from: String,
        to: String,
        factor: f64,
    },
    #[error("conversion from `{from}` to `{to}` names no analyte")]
    MissingAnalyte { from: String, to: String },
    #[error("conversion for {analyte} from `{from}` to `{to}`: both spellings are the same unit")]
    SameUnit {
        analyte: String,
        from: String,
        to: String,
    },
    #[error(
        "conversion for {analyte} from `{from}` to `{to}`: `{unit}` is a log10 unit; declare the factor between the linear units instead"
    )]
    LogUnit {
        analyte: String,
        from: String,
        to: String,
        unit: String,
    },
    #[error("conversion for {analyte} between `{from}` and `{to}` is declared more than once")]
    DuplicateExtra {
        analyte: String,
        from: String,
        to: String,
    },
    #[error(
        "conversion for {analyte} from `{from}` to `{to}` with factor {factor} contradicts the registry, which already implies {implied:?}"
    )]
    Inconsistent {
        analyte: String,
        from: String,
        to: String,
        factor: f64,
        implied: Conversion,
    },
    #[error("invalid unit registry data: {message}")]
    Data { message: String },
}

/// The unit registry: canonical units with their spellings, and the conversion edges.
#[derive(Clone, Debug)]
pub struct Registry {
    units: Vec<UnitDef>,
    /// Normalized spelling -> unit index.
    exact: HashMap<String, usize>,
    /// Lower-cased normalized spelling -> unit index, or None when two units share it.
    folded: HashMap<String, Option<usize>>,
    generic: Vec<Edge>,
    /// Upper-case analyte code -> that analyte's edges.
    analyte: HashMap<String, Vec<Edge>>,
}

#[derive(Clone, Debug)]
struct UnitDef {
    symbol: String,
    dimension: String,
    #[cfg_attr(not(test), allow(dead_code))]
    aliases: Vec<String>,
}

impl UnitDef {
    fn is_log(&self) -> bool {
        self.dimension.starts_with("log10 ")
    }
}

#[derive(Clone, Debug)]
struct Edge {
    from: usize,
    to: usize,
    forward: Conversion,
    backward: Conversion,
    #[cfg_attr(not(test), allow(dead_code))]
    source: String,
}

impl Edge {
    fn new(from: usize, to: usize, forward: Conversion, source: String) -> Option<Edge> {
        let backward = forward.inverse()?;
        Some(Edge {
            from,
            to,
            forward,
            backward,
            source,
        })
    }

    fn joins(&self, a: usize, b: usize) -> bool {
        (self.from == a && self.to == b) || (self.from == b && self.to == a)
    }
}

/// What adding an edge would do to the registry.
enum Check {
    /// No conversion between the two units yet.
    New,
    /// The registry already implies this conversion.
    Agrees,
    /// The registry implies a different conversion.
    Conflicts(Conversion),
}

// ------------------------------------------------------------------------- data file shape

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    unit: Vec<UnitSpec>,
    #[serde(default)]
    generic: Vec<EdgeSpec>,
    #[serde(default)]
    analyte: Vec<EdgeSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitSpec {
    symbol: String,
    dimension: String,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize, Default, Clone, Copy, Debug)]
enum EdgeKind {
    #[default]
    #[serde(rename = "linear")]
    Linear,
    #[serde(rename = "affine")]
    Affine,
    #[serde(rename = "to_log10")]
    ToLog10,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeSpec {
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    kind: EdgeKind,
    from: String,
    to: String,
    factor: Option<f64>,
    scale: Option<f64>,
    offset: Option<f64>,
    source: String,
}

impl EdgeSpec {
    fn describe(&self) -> String {
        if self.codes.is_empty() {
            format!("generic edge `{}` -> `{}`", self.from, self.to)
        } else {
            format!(
                "edge `{}` -> `{}` for {}",
                self.from,
                self.to,
                self.codes.join(", ")
            )
        }
    }

    fn conversion(&self) -> Result<Conversion, String> {
        let conversion = match (self.kind, self.factor, self.scale, self.offset) {
            (EdgeKind::Linear, Some(factor), None, None) => Conversion::Linear { factor },
            (EdgeKind::ToLog10, Some(factor), None, None) => Conversion::ToLog10 { factor },
            (EdgeKind::Affine, None, Some(scale), Some(offset)) => {
                Conversion::Affine { scale, offset }
            }
            (EdgeKind::Affine, ..) => {
                return Err(format!(
                    "{}: kind `affine` takes `scale` and `offset`, and no `factor`",
                    self.describe()
                ));
            }
            (kind, ..) => {
                return Err(format!(
                    "{}: kind {kind:?} takes `factor`, and no `scale` or `offset`",
                    self.describe()
                ));
            }
        };
        if !conversion.is_valid() {
            return Err(format!(
                "{}: parameters must be finite, with factor and scale greater than zero",
                self.describe()
            ));
        }
        Ok(conversion)
    }
}

// ------------------------------------------------------------------------- normalization

/// The lookup key of a spelling: no whitespace, micro and mu as `u`, `×` as `x`, superscript
/// digits as `^` and digits, and no caret right after a letter (`mm^3` is `mm3`).
fn spelling_key(raw: &str) -> String {
    let mut key = String::with_capacity(raw.len());
    let mut in_superscript = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            in_superscript = false;
            continue;
        }
        let after_letter = key.chars().next_back().is_some_and(char::is_alphabetic);
        if let Some(digit) = superscript_digit(c) {
            if !in_superscript && !after_letter {
                key.push('^');
            }
            key.push(digit);
            in_superscript = true;
            continue;
        }
        in_superscript = false;
        match c {
            '\u{00B5}' | '\u{03BC}' => key.push('u'),
            '\u{00D7}' => key.push('x'),
            '^' if after_letter => {}
            _ => key.push(c),
        }
    }
    key
}

fn superscript_digit(c: char) -> Option<char> {
    match c {
        '\u{2070}' => Some('0'),
        '\u{00B9}' => Some('1'),
        '\u{00B2}' => Some('2'),
        '\u{00B3}' => Some('3'),
        '\u{2074}'..='\u{2079}' => char::from_digit(u32::from(c) - 0x2070, 10),
        _ => None,
    }
}

/// Analyte codes are matched trimmed and upper-cased.
fn analyte_key(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

// ------------------------------------------------------------------------- registry

impl Registry {
    /// The built-in registry parsed once (std::sync::OnceLock) from the embedded TOML.
    pub fn builtin() -> &'static Registry {
        static BUILTIN: OnceLock<Registry> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Registry::from_toml(BUILTIN_TOML)
                .expect("the embedded units/registry.toml is valid (proved by a unit test)")
        })
    }

    /// Builds a registry from TOML text in the format of the embedded `units/registry.toml`.
    /// Errors ([`UnitError::Data`]) on a parse error, a spelling shared by two units, an edge
    /// naming a unit by anything but its canonical symbol, a generic edge between dimensions,
    /// invalid parameters, or an edge already implied by earlier ones.
    pub fn from_toml(text: &str) -> Result<Registry, UnitError> {
        let data_error = |message: String| UnitError::Data { message };
        let file: RegistryFile = toml::from_str(text).map_err(|e| data_error(e.to_string()))?;

        let mut registry = Registry {
            units: Vec::with_capacity(file.unit.len()),
            exact: HashMap::new(),
            folded: HashMap::new(),
            generic: Vec::new(),
            analyte: HashMap::new(),
        };
        for spec in file.unit {
            let index = registry.units.len();
            if spec.dimension.trim().is_empty() {
                return Err(data_error(format!(
                    "unit `{}` has no dimension",
                    spec.symbol
                )));
            }
            for spelling in std::iter::once(&spec.symbol).chain(&spec.aliases) {
                let key = spelling_key(spelling);
                if key.is_empty() {
                    return Err(data_error(format!(
                        "unit `{}` has an empty spelling",
                        spec.symbol
                    )));
                }
                match registry.exact.insert(key, index) {
                    Some(other) if other != index => {
                        return Err(data_error(format!(
                            "spelling `{spelling}` belongs to both `{}` and `{}`",
                            registry.units[other].symbol, spec.symbol
                        )));
                    }
                    _ => {}
                }
            }
            registry.units.push(UnitDef {
                symbol: spec.symbol,
                dimension: spec.dimension,
                aliases: spec.aliases,
            });
        }
        for (key, &index) in &registry.exact {
            registry
                .folded
                .entry(key.to_lowercase())
                .and_modify(|slot| {
                    if *slot != Some(index) {
                        *slot = None;
                    }
                })
                .or_insert(Some(index));
        }

        for spec in &file.generic {
            if !spec.codes.is_empty() {
                return Err(data_error(format!(
                    "{}: a [[generic]] edge takes no `codes`",
                    spec.describe()
                )));
            }
            let edge = registry.data_edge(spec)?;
            let (from, to) = (&registry.units[edge.from], &registry.units[edge.to]);
            let dimensions_fit = match edge.forward {
                Conversion::ToLog10 { .. } => to.dimension == format!("log10 {}", from.dimension),
                _ => from.dimension == to.dimension,
            };
            if !dimensions_fit {
                return Err(data_error(format!(
                    "{}: a generic edge cannot join dimensions `{}` and `{}`",
                    spec.describe(),
                    from.dimension,
                    to.dimension
                )));
            }
            registry.insert_data_edge(None, edge, spec)?;
        }
        for spec in &file.analyte {
            if spec.codes.is_empty() {
                return Err(data_error(format!(
                    "{}: an [[analyte]] edge needs `codes`",
                    spec.describe()
                )));
            }
            let edge = registry.data_edge(spec)?;
            for code in &spec.codes {
                let code = analyte_key(code);
                if code.is_empty() {
                    return Err(data_error(format!("{}: empty code", spec.describe())));
                }
                registry.insert_data_edge(Some(&code), edge.clone(), spec)?;
            }
        }
        Ok(registry)
    }

    /// A copy of this registry extended with pipeline-declared conversions, each for one
    /// analyte: `value_in_to = value_in_from * factor`.
    ///
    /// An extra conversion replaces an analyte-specific edge between the same two units for the
    /// same analyte (in either direction), which is how an assay-dependent factor is overridden.
    /// It must agree with any conversion the registry still implies between its units
    /// (generic definitions cannot be overridden); one that agrees is accepted and changes
    /// nothing. Errors: unknown units, a factor that is not finite and greater than zero, an
    /// empty analyte, both units the same, a log10 unit, a pair declared twice for one analyte,
    /// or a contradiction ([`UnitError::Inconsistent`]).
    pub fn with_extra(&self, extra: &[ExtraConversion]) -> Result<Registry, UnitError> {
        let mut registry = self.clone();
        let mut declared: HashSet<(String, usize, usize)> = HashSet::new();
        for item in extra {
            let analyte = analyte_key(&item.analyte);
            if analyte.is_empty() {
                return Err(UnitError::MissingAnalyte {
                    from: item.from.clone(),
                    to: item.to.clone(),
                });
            }
            let from = registry.index_of(&item.from)?;
            let to = registry.index_of(&item.to)?;
            let conversion = Conversion::Linear {
                factor: item.factor,
            };
            if !conversion.is_valid() {
                return Err(UnitError::InvalidFactor {
                    analyte,
                    from: item.from.clone(),
                    to: item.to.clone(),
                    factor: item.factor,
                });
            }
            if from == to {
                return Err(UnitError::SameUnit {
                    analyte,
                    from: item.from.clone(),
                    to: item.to.clone(),
                });
            }
            if let Some(log_unit) = [from, to].into_iter().find(|&u| registry.units[u].is_log()) {
                return Err(UnitError::LogUnit {
                    analyte,
                    from: item.from.clone(),
                    to: item.to.clone(),
                    unit: registry.units[log_unit].symbol.clone(),
                });
            }
            if !declared.insert((analyte.clone(), from.min(to), from.max(to))) {
                return Err(UnitError::DuplicateExtra {
                    analyte,
                    from: item.from.clone(),
                    to: item.to.clone(),
                });
            }
            if let Some(edges) = registry.analyte.get_mut(&analyte) {
                edges.retain(|edge| !edge.joins(from, to));
            }
            let source = format!("pipeline-declared conversion for {analyte}");
            let edge = Edge::new(from, to, conversion, source).ok_or_else(|| {
                UnitError::InvalidFactor {
                    analyte: analyte.clone(),
                    from: item.from.clone(),
                    to: item.to.clone(),
                    factor: item.factor,
                }
            })?;
            match registry.check(Some(&analyte), &edge) {
                Check::New => registry.analyte.entry(analyte).or_default().push(edge),
                Check::Agrees => {}
                Check::Conflicts(implied) => {
                    return Err(UnitError::Inconsistent {
                        analyte,
                        from: item.from.clone(),
                        to: item.to.clone(),
                        factor: item.factor,
                        implied,
                    });
                }
            }
        }
        Ok(registry)
    }

    /// Spelling normalization: returns the canonical symbol, or None when the spelling is
    /// unknown (or empty, or matches two units only when case is ignored).
    pub fn canonical(&self, raw: &str) -> Option<&str> {
        self.lookup(raw).map(|i| self.units[i].symbol.as_str())
    }

    /// The dimension of a unit (e.g. `mass_concentration`), or None when the spelling is unknown.
    pub fn dimension(&self, raw: &str) -> Option<&str> {
        self.lookup(raw).map(|i| self.units[i].dimension.as_str())
    }

    /// How to convert a value of `analyte` (a CDISC-style test code such as "BILI", matched
    /// trimmed and case-insensitively) from unit `from` to unit `to`. Both may be raw spellings.
    /// Identity when they normalize to the same unit. [`UnitError::NoPath`] names the canonical
    /// symbols.
    pub fn conversion(&self, analyte: &str, from: &str, to: &str) -> Result<Conversion, UnitError> {
        let from_index = self.index_of(from)?;
        let to_index = self.index_of(to)?;
        let analyte = analyte_key(analyte);
        self.search(Some(&analyte), from_index, to_index)
            .ok_or_else(|| UnitError::NoPath {
                analyte,
                from: self.units[from_index].symbol.clone(),
                to: self.units[to_index].symbol.clone(),
            })
    }

    fn lookup(&self, raw: &str) -> Option<usize> {
        let key = spelling_key(raw);
        if key.is_empty() {
            return None;
        }
        self.exact
            .get(&key)
            .copied()
            .or_else(|| self.folded.get(&key.to_lowercase()).copied().flatten())
    }

    fn index_of(&self, raw: &str) -> Result<usize, UnitError> {
        self.lookup(raw).ok_or_else(|| UnitError::UnknownUnit {
            raw: raw.to_string(),
        })
    }

    /// Breadth-first search over (unit, shape of the composed conversion) from `from` to `to`
    /// along the analyte's edges (tried first) and the generic edges, both directions.
    fn search(&self, analyte: Option<&str>, from: usize, to: usize) -> Option<Conversion> {
        if from == to {
            return Some(Conversion::Identity);
        }
        let specific: &[Edge] = analyte
            .and_then(|code| self.analyte.get(code))
            .map_or(&[], Vec::as_slice);
        let mut seen = HashSet::from([(from, Shape::Identity)]);
        let mut queue = VecDeque::from([(from, Conversion::Identity)]);
        while let Some((unit, so_far)) = queue.pop_front() {
            for edge in specific.iter().chain(&self.generic) {
                let (next, step) = if edge.from == unit {
                    (edge.to, edge.forward)
                } else if edge.to == unit {
                    (edge.from, edge.backward)
                } else {
                    continue;
                };
                let Some(composed) = so_far.then(step) else {
                    continue;
                };
                if next == to {
                    return Some(composed);
                }
                if seen.insert((next, composed.shape())) {
                    queue.push_back((next, composed));
                }
            }
        }
        None
    }

    fn check(&self, analyte: Option<&str>, edge: &Edge) -> Check {
        match self.search(analyte, edge.from, edge.to) {
            None => Check::New,
            Some(implied) if implied.agrees_with(&edge.forward) => Check::Agrees,
            Some(implied) => Check::Conflicts(implied),
        }
    }

    /// Resolves a data edge: its units must be named by canonical symbol.
    fn data_edge(&self, spec: &EdgeSpec) -> Result<Edge, UnitError> {
        let resolve = |symbol: &str| {
            self.units
                .iter()
                .position(|u| u.symbol == symbol)
                .ok_or_else(|| UnitError::Data {
                    message: format!(
                        "{}: `{symbol}` is not the canonical symbol of a [[unit]]",
                        spec.describe()
                    ),
                })
        };
        let (from, to) = (resolve(&spec.from)?, resolve(&spec.to)?);
        if from == to {
            return Err(UnitError::Data {
                message: format!("{}: joins a unit to itself", spec.describe()),
            });
        }
        let forward = spec
            .conversion()
            .map_err(|message| UnitError::Data { message })?;
        Edge::new(from, to, forward, spec.source.clone()).ok_or_else(|| UnitError::Data {
            message: format!("{}: not invertible", spec.describe()),
        })
    }

    fn insert_data_edge(
        &mut self,
        analyte: Option<&str>,
        edge: Edge,
        spec: &EdgeSpec,
    ) -> Result<(), UnitError> {
        if spec.source.trim().is_empty() {
            return Err(UnitError::Data {
                message: format!("{}: empty `source`", spec.describe()),
            });
        }
        match self.check(analyte, &edge) {
            Check::New => {}
            Check::Agrees | Check::Conflicts(_) => {
                return Err(UnitError::Data {
                    message: format!(
                        "{}: already implied by earlier edges; write each conversion once",
                        spec.describe()
                    ),
                });
            }
        }
        match analyte {
            None => self.generic.push(edge),
            Some(code) => self.analyte.entry(code.to_string()).or_default().push(edge),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> &'static Registry {
        Registry::builtin()
    }

    fn canon(raw: &str) -> Option<&'static str> {
        reg().canonical(raw)
    }

    fn conv(analyte: &str, from: &str, to: &str) -> Conversion {
        reg()
            .conversion(analyte, from, to)
            .unwrap_or_else(|e| panic!("{analyte} {from} -> {to}: {e}"))
    }

    fn assert_close(actual: f64, expected: f64, rel: f64) {
        let tolerance = rel * expected.abs().max(actual.abs()).max(f64::MIN_POSITIVE);
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {rel} (relative) of {expected}"
        );
    }

    /// Converts `x` and checks the result.
    fn check(analyte: &str, from: &str, to: &str, x: f64, expected: f64) {
        let y = conv(analyte, from, to)
            .apply(x)
            .unwrap_or_else(|| panic!("{analyte} {from} -> {to} of {x} is outside the domain"));
        assert_close(y, expected, 1e-12);
    }

    fn linear_factor(analyte: &str, from: &str, to: &str) -> f64 {
        match conv(analyte, from, to) {
            Conversion::Linear { factor } => factor,
            Conversion::Identity => 1.0,
            other => panic!("{analyte} {from} -> {to} is not linear: {other:?}"),
        }
    }

    fn no_path(analyte: &str, from: &str, to: &str) {
        let err = reg().conversion(analyte, from, to).unwrap_err();
        assert!(
            matches!(err, UnitError::NoPath { .. }),
            "{analyte} {from} -> {to}: expected NoPath, got {err:?}"
        );
    }

    // ---------------------------------------------------------------- the data

    #[test]
    fn embedded_data_parses() {
        Registry::from_toml(BUILTIN_TOML).expect("embedded registry parses");
        assert!(reg().units.len() > 20);
    }

    #[test]
    fn every_edge_has_a_source() {
        let edges = reg().generic.iter().chain(reg().analyte.values().flatten());
        for edge in edges {
            assert!(!edge.source.trim().is_empty());
        }
    }

    // ---------------------------------------------------------------- spellings

    fn assert_group(canonical: &str, spellings: &[&str]) {
        for spelling in spellings {
            assert_eq!(canon(spelling), Some(canonical), "spelling {spelling:?}");
        }
    }

    #[test]
    fn spelling_umol_per_litre() {
        assert_group(
            "umol/L",
            &[
                "umol/L",
                "\u{00B5}mol/L",
                "\u{03BC}mol/l",
                "umol/l",
                " UMOL/L ",
                "µmol / L",
            ],
        );
    }

    #[test]
    fn spelling_giga_per_litre() {
        assert_group(
            "10^9/L",
            &[
                "10^9/L", "10E9/L", "x10^9/L", "10*9/L", "G/L", "10e9/l", "×10^9/L", "10⁹/L",
                "x10E9/L", "10^9 /L",
            ],
        );
    }

    #[test]
    fn spelling_thousand_per_microlitre() {
        assert_group(
            "10^3/uL",
            &[
                "10^3/uL",
                "10^3/µL",
                "10^3/μL",
                "K/uL",
                "K/µL",
                "10^3/mm3",
                "10^3/mm³",
                "10E3/uL",
                "x10^3/uL",
                "10³/µL",
            ],
        );
    }

    #[test]
    fn spelling_per_microlitre() {
        assert_group(
            "/uL",
            &[
                "/mm3",
                "/mm³",
                "/mm^3",
                "cells/uL",
                "cells/µL",
                "/uL",
                "/µL",
                "cells/mm3",
            ],
        );
    }

    #[test]
    fn spelling_tera_and_million() {
        assert_group(
            "10^12/L",
            &["10^12/L", "10E12/L", "x10^12/L", "T/L", "10¹²/L"],
        );
        assert_group(
            "10^6/uL",
            &["10^6/uL", "10^6/µL", "M/uL", "10^6/mm3", "10E6/uL"],
        );
    }

    #[test]
    fn spelling_grams_versus_giga() {
        // `G/L` (giga per litre) and `g/L` (grams per litre) differ only in case.
        assert_eq!(canon("G/L"), Some("10^9/L"));
        assert_eq!(canon("g/L"), Some("g/L"));
        assert_eq!(canon("g/l"), Some("g/L"));
        assert_eq!(canon("G/l"), None, "ambiguous when case is ignored");
        assert_eq!(
            canon("G/dL"),
            Some("g/dL"),
            "unambiguous case-insensitive match"
        );
    }

    #[test]
    fn spelling_enzyme_units() {
        assert_group("U/L", &["U/L", "IU/L", "iu/l", "u/l", " U / L "]);
        assert_group("ukat/L", &["ukat/L", "µkat/L", "μkat/l"]);
    }

    #[test]
    fn spelling_hba1c_units() {
        assert_group("%", &["%", " % ", "percent"]);
        assert_group("mmol/mol", &["mmol/mol", "MMOL/MOL", "mmol / mol"]);
    }

    #[test]
    fn spelling_viral_load_units() {
        assert_group(
            "copies/mL",
            &["copies/mL", "copies/ml", "COPIES/ML", "cp/mL"],
        );
        assert_group("IU/mL", &["IU/mL", "iu/ml", "IU/ml"]);
        assert_group(
            "log10 IU/mL",
            &[
                "log10 IU/mL",
                "LOG10 IU/ML",
                "log10IU/mL",
                "log IU/mL",
                "log10(IU/mL)",
            ],
        );
        assert_group(
            "log10 copies/mL",
            &[
                "log10 copies/mL",
                "Log10 copies/ml",
                "log copies/mL",
                "log10(copies/mL)",
            ],
        );
    }

    #[test]
    fn spelling_seconds_and_ratio() {
        assert_group("s", &["s", "sec", "seconds", "S", "Sec", "second", "secs"]);
        assert_group("ratio", &["ratio", "RATIO", " Ratio"]);
    }

    #[test]
    fn spelling_dose_units() {
        assert_group("U/day", &["U/day", "IU/day", "iu/day", "U/d", "units/day"]);
    }

    #[test]
    fn spelling_other_concentrations() {
        assert_group("mg/dL", &["mg/dL", "MG/DL", "mg/dl", "mg%", "mg/100 mL"]);
        assert_group("mmol/L", &["mmol/L", "mmol/l", "MMOL/L"]);
        assert_group("mEq/L", &["mEq/L", "meq/l", "MEQ/L"]);
        assert_group("ng/mL", &["ng/mL", "ng/ml"]);
        assert_group("nmol/L", &["nmol/L", "nmol/l"]);
        assert_group("pmol/L", &["pmol/L", "pmol/l"]);
    }

    #[test]
    fn empty_and_unknown_spellings() {
        assert_eq!(canon(""), None);
        assert_eq!(canon("   "), None);
        assert_eq!(canon("furlongs/fortnight"), None);
        assert_eq!(
            reg().conversion("ALT", "furlongs/fortnight", "U/L"),
            Err(UnitError::UnknownUnit {
                raw: "furlongs/fortnight".to_string()
            })
        );
        assert_eq!(
            reg().conversion("ALT", "U/L", ""),
            Err(UnitError::UnknownUnit { raw: String::new() })
        );
    }

    #[test]
    fn dimension_lookup() {
        assert_eq!(reg().dimension("µmol/L"), Some("amount_concentration"));
        assert_eq!(reg().dimension("IU/L"), Some("catalytic_concentration"));
        assert_eq!(reg().dimension("nope"), None);
    }

    // ---------------------------------------------------------------- factors

    #[test]
    fn identity_for_same_unit_any_analyte() {
        assert_eq!(conv("BILI", "µmol/L", "umol/l"), Conversion::Identity);
        assert_eq!(conv("ALT", "IU/L", "U/L"), Conversion::Identity);
        assert_eq!(conv("NOT_A_TEST", "G/L", "10^9/L"), Conversion::Identity);
    }

    #[test]
    fn bilirubin() {
        // AMA Manual of Style SI conversion table: 1 mg/dL = 17.104 umol/L
        // (bilirubin molar mass 584.66 g/mol).
        for code in ["BILI", "BILDIR", "BILIND"] {
            assert_eq!(linear_factor(code, "mg/dL", "umol/L"), 17.104);
            check(code, "mg/dL", "µmol/L", 1.2, 1.2 * 17.104);
            check(code, "umol/L", "mg/dL", 17.104, 1.0);
        }
        // Composed with generic mass units: umol/L -> mg/dL -> mg/L.
        check("BILI", "umol/L", "mg/L", 17.104, 10.0);
        check("BILI", "mmol/L", "g/L", 0.017104, 0.01);
        // Analyte codes are matched case-insensitively.
        check("bili ", "mg/dL", "umol/L", 1.0, 17.104);
        // The factor belongs to bilirubin only.
        no_path("CREAT2", "mg/dL", "umol/L");
    }

    #[test]
    fn creatinine() {
        // Conventional clinical factor 88.42 = 10000/113.1 (creatinine molar mass 113.12 g/mol).
        assert_eq!(linear_factor("CREAT", "mg/dL", "umol/L"), 88.42);
        check("CREAT", "umol/L", "mg/dL", 88.42, 1.0);
        check("CREAT", "mg/dL", "mmol/L", 1.0, 0.08842);
    }

    #[test]
    fn glucose() {
        // Glucose molar mass 180.16 g/mol: 1 mmol/L = 18.016 mg/dL.
        assert_eq!(linear_factor("GLUC", "mmol/L", "mg/dL"), 18.016);
        check("GLUC", "mg/dL", "mmol/L", 90.08, 5.0);
        check("GLUC", "mmol/L", "g/L", 5.0, 0.9008);
    }

    #[test]
    fn albumin_and_prealbumin_generic_mass() {
        // SI definitions: 1 g/dL = 10 g/L = 1000 mg/dL; 1 mg/dL = 10 mg/L.
        for code in ["ALB", "PREALB", "ANY_ANALYTE"] {
            check(code, "g/dL", "g/L", 4.0, 40.0);
            check(code, "g/L", "g/dL", 40.0, 4.0);
            check(code, "g/dL", "mg/dL", 0.25, 250.0);
            check(code, "mg/dL", "mg/L", 25.0, 250.0);
            check(code, "mg/L", "g/L", 250.0, 0.25);
            check(code, "g/dL", "mg/L", 0.025, 250.0);
        }
        no_path("ALB", "g/dL", "umol/L");
    }

    #[test]
    fn hemoglobin() {
        // SI definition: 1 g/dL = 10 g/L.
        check("HGB", "g/dL", "g/L", 13.5, 135.0);
        // Hb(Fe) monomer convention, molar mass 16114.5 g/mol: 1 g/dL = 0.6206 mmol/L.
        assert_eq!(linear_factor("HGB", "g/dL", "mmol/L"), 0.6206);
        check("HGB", "g/L", "mmol/L", 135.0, 13.5 * 0.6206);
        check("HGB", "mmol/L", "g/dL", 0.6206, 1.0);
    }

    #[test]
    fn cell_counts() {
        // SI definitions: 1 L = 10^6 uL and 1 uL = 1 mm3, so 10^9/L = 10^3/uL = 1000 /mm3
        // and 10^12/L = 10^6/uL.
        for code in ["WBC", "PLAT", "NEUT", "LYMPH", "MONO", "EOS", "BASO"] {
            assert_eq!(conv(code, "10^9/L", "10^3/uL"), Conversion::Identity);
            assert_eq!(linear_factor(code, "10^9/L", "/mm3"), 1000.0);
            check(code, "cells/uL", "G/L", 4500.0, 4.5);
            check(code, "K/uL", "/uL", 250.0, 250_000.0);
        }
        assert_eq!(conv("RBC", "10^12/L", "10^6/uL"), Conversion::Identity);
        check("RBC", "10^12/L", "/uL", 4.5, 4.5e6);
        check("RBC", "10^12/L", "10^9/L", 4.5, 4500.0);
        check("RBC", "M/uL", "10^3/uL", 4.5, 4500.0);
    }

    #[test]
    fn enzyme_activity() {
        // IU/L and U/L are one unit.
        assert_eq!(conv("ALT", "IU/L", "U/L"), Conversion::Identity);
        // IFCC/IUPAC: 1 U = 1 umol/min, 1 kat = 1 mol/s, so 1 U/L = 1/60 ukat/L.
        assert_close(linear_factor("ALT", "U/L", "ukat/L"), 1.0 / 60.0, 1e-15);
        check("AST", "ukat/L", "IU/L", 0.5, 30.0);
        check("ALP", "U/L", "µkat/L", 120.0, 2.0);
    }

    #[test]
    fn hba1c_affine() {
        // IFCC-NGSP master equation (Hoelzel et al. 2004, Clin Chem): IFCC = 10.929 * (NGSP - 2.15).
        match conv("HBA1C", "%", "mmol/mol") {
            Conversion::Affine { scale, offset } => {
                assert_eq!(scale, 10.929);
                assert_close(offset, -10.929 * 2.15, 1e-12);
            }
            other => panic!("expected affine, got {other:?}"),
        }
        for ngsp in [4.0, 5.7, 6.5, 7.0, 10.0, 14.0] {
            check("HBA1C", "%", "mmol/mol", ngsp, 10.929 * (ngsp - 2.15));
        }
        // The inverse is the exact algebraic inverse, NGSP = IFCC / 10.929 + 2.15; it agrees with
        // the published regression NGSP = 0.09148 * IFCC + 2.152 to within 0.005 % over
        // IFCC 20..150 mmol/mol.
        let back = conv("HBA1C", "mmol/mol", "%");
        for ifcc in (20..=150).map(f64::from) {
            let ngsp = back.apply(ifcc).unwrap();
            assert_close(ngsp, ifcc / 10.929 + 2.15, 1e-12);
            assert!((ngsp - (0.09148 * ifcc + 2.152)).abs() < 0.005, "at {ifcc}");
        }
        // % is not an HbA1c unit for any other test.
        no_path("PT", "%", "mmol/mol");
    }

    #[test]
    fn hbv_dna() {
        // Roche COBAS TaqMan HBV Test calibrated to the WHO International Standard:
        // 1 IU = 5.82 copies (assay-dependent).
        assert_eq!(linear_factor("HBVDNA", "IU/mL", "copies/mL"), 5.82);
        check("HBVDNA", "copies/mL", "IU/mL", 5820.0, 1000.0);
        // Definition of log10 reporting.
        check("HBVDNA", "IU/mL", "log10 IU/mL", 1000.0, 3.0);
        check("HBVDNA", "log10 copies/mL", "copies/mL", 4.0, 10_000.0);
        // Composed: log form of one unit to the other.
        check(
            "HBVDNA",
            "IU/mL",
            "log10 copies/mL",
            1000.0,
            3.0 + 5.82f64.log10(),
        );
        check("HBVDNA", "copies/mL", "log10 IU/mL", 5820.0, 3.0);
        check("HBVDNA", "log10 IU/mL", "copies/mL", 2.0, 582.0);
        check(
            "HBVDNA",
            "log10 IU/mL",
            "log10 copies/mL",
            3.0,
            3.0 + 5.82f64.log10(),
        );
        match conv("HBVDNA", "log10 IU/mL", "log10 copies/mL") {
            Conversion::Affine { scale, offset } => {
                assert_eq!(scale, 1.0);
                assert_close(offset, 5.82f64.log10(), 1e-12);
            }
            other => panic!("expected a shift, got {other:?}"),
        }
        // The log forms are generic; the IU/copies factor is not.
        check("HCVRNA", "IU/mL", "log10 IU/mL", 100.0, 2.0);
        no_path("HCVRNA", "IU/mL", "copies/mL");
    }

    #[test]
    fn prothrombin_time_and_inr_are_not_convertible() {
        // PT in seconds and INR (a ratio) are different tests.
        no_path("PT", "s", "ratio");
        no_path("PT", "seconds", "RATIO");
        no_path("INR", "ratio", "s");
        // PT activity in percent is not convertible to seconds.
        no_path("PT", "%", "s");
        assert_eq!(
            reg().conversion("PT", "sec", "ratio"),
            Err(UnitError::NoPath {
                analyte: "PT".to_string(),
                from: "s".to_string(),
                to: "ratio".to_string(),
            })
        );
    }

    #[test]
    fn monovalent_electrolytes() {
        // Monovalent ion: 1 mmol = 1 mEq.
        for code in ["SODIUM", "K", "CL"] {
            assert_eq!(conv(code, "mmol/L", "mEq/L"), Conversion::Identity);
            check(code, "meq/l", "umol/L", 140.0, 140_000.0);
        }
        // Not for a divalent ion.
        no_path("CA", "mmol/L", "mEq/L");
    }

    #[test]
    fn c_peptide() {
        // C-peptide molar mass 3020 g/mol: 1 ng/mL = 0.331 nmol/L.
        assert_eq!(linear_factor("CPEPT", "ng/mL", "nmol/L"), 0.331);
        check("CPEPT", "ng/mL", "pmol/L", 2.0, 662.0);
        check("CPEPT", "nmol/L", "ng/mL", 0.331, 1.0);
        check("CPEPT", "pmol/L", "ng/mL", 331.0, 1.0);
    }

    #[test]
    fn insulin_dose_units() {
        assert_eq!(conv("INSDOSE", "IU/day", "U/day"), Conversion::Identity);
        no_path("INSDOSE", "U/day", "U/L");
        no_path("INSDOSE", "IU/day", "IU/mL");
    }

    #[test]
    fn missing_paths_are_errors() {
        no_path("ALT", "U/L", "g/L");
        assert_eq!(
            reg().conversion("ALT", "IU/L", "g/l"),
            Err(UnitError::NoPath {
                analyte: "ALT".to_string(),
                from: "U/L".to_string(),
                to: "g/L".to_string(),
            })
        );
        no_path("WBC", "10^9/L", "g/L");
        no_path("", "mg/dL", "umol/L");
    }

    #[test]
    fn round_trips() {
        let cases: &[(&str, &str, &str, f64)] = &[
            ("BILI", "umol/L", "mg/dL", 13.7),
            ("BILDIR", "umol/L", "mg/L", 3.1),
            ("CREAT", "mg/dL", "umol/L", 0.93),
            ("GLUC", "mmol/L", "mg/dL", 5.4),
            ("ALB", "g/dL", "mg/L", 4.1),
            ("PREALB", "mg/dL", "g/L", 27.0),
            ("HGB", "g/L", "mmol/L", 142.0),
            ("WBC", "10^9/L", "/mm3", 6.2),
            ("RBC", "10^12/L", "/uL", 4.7),
            ("ALT", "U/L", "ukat/L", 37.0),
            ("HBA1C", "%", "mmol/mol", 6.8),
            ("HBA1C", "mmol/mol", "%", 48.0),
            ("HBVDNA", "IU/mL", "copies/mL", 2.0e5),
            ("HBVDNA", "copies/mL", "log10 IU/mL", 3.3e7),
            ("HBVDNA", "log10 IU/mL", "log10 copies/mL", 4.2),
            ("HBVDNA", "log10 copies/mL", "IU/mL", 6.5),
            ("SODIUM", "mmol/L", "mEq/L", 139.0),
            ("CPEPT", "ng/mL", "pmol/L", 1.7),
        ];
        for &(code, a, b, x) in cases {
            let there = conv(code, a, b).apply(x).unwrap();
            let back = conv(code, b, a).apply(there).unwrap();
            assert_close(back, x, 1e-12);
        }
    }

    // ---------------------------------------------------------------- Conversion

    #[test]
    fn apply_domain() {
        let to_log = Conversion::ToLog10 { factor: 1.0 };
        assert_eq!(to_log.apply(0.0), None);
        assert_eq!(to_log.apply(-5.0), None);
        assert_eq!(to_log.apply(100.0), Some(2.0));
        assert_eq!(conv("HBVDNA", "copies/mL", "log10 IU/mL").apply(0.0), None);
        assert_eq!(conv("HBVDNA", "IU/mL", "log10 copies/mL").apply(-1.0), None);
        for c in [
            Conversion::Identity,
            Conversion::Linear { factor: 2.0 },
            Conversion::Affine {
                scale: 2.0,
                offset: 1.0,
            },
            to_log,
            Conversion::FromLog10 { factor: 1.0 },
        ] {
            assert_eq!(c.apply(f64::NAN), None);
            assert_eq!(c.apply(f64::INFINITY), None);
        }
        assert_eq!(Conversion::FromLog10 { factor: 1.0 }.apply(400.0), None);
        assert_eq!(Conversion::Linear { factor: 1e300 }.apply(1e300), None);
    }

    #[test]
    fn composition_matches_step_by_step() {
        let all = [
            Conversion::Identity,
            Conversion::Linear { factor: 2.5 },
            Conversion::Affine {
                scale: 10.929,
                offset: -23.5,
            },
            Conversion::Affine {
                scale: 1.0,
                offset: 0.7,
            },
            Conversion::ToLog10 { factor: 0.2 },
            Conversion::FromLog10 { factor: 5.82 },
        ];
        let mut composed_count = 0;
        for a in all {
            for b in all {
                let Some(ab) = a.then(b) else { continue };
                composed_count += 1;
                for x in [0.3, 1.0, 2.0, 3.7] {
                    if let Some(step) = a.apply(x).and_then(|y| b.apply(y)) {
                        assert_close(ab.apply(x).unwrap(), step, 1e-12);
                    }
                }
            }
        }
        assert_eq!(composed_count, 26);
        // Not representable in this family.
        let log = Conversion::ToLog10 { factor: 1.0 };
        let affine = Conversion::Affine {
            scale: 2.0,
            offset: 1.0,
        };
        assert_eq!(log.then(log), None);
        assert_eq!(affine.then(log), None);
        assert_eq!(log.then(Conversion::Linear { factor: 2.0 }), None);
        assert_eq!(Conversion::Linear { factor: 0.0 }.then(log), None);
    }

    #[test]
    fn inverse_of_invalid_is_none() {
        assert_eq!(Conversion::Linear { factor: 0.0 }.inverse(), None);
        assert_eq!(Conversion::ToLog10 { factor: -1.0 }.inverse(), None);
        assert_eq!(
            Conversion::Affine {
                scale: 2.0,
                offset: f64::NAN
            }
            .inverse(),
            None
        );
        assert_eq!(
            Conversion::Affine {
                scale: 4.0,
                offset: 2.0
            }
            .inverse(),
            Some(Conversion::Affine {
                scale: 0.25,
                offset: -0.5
            })
        );
    }

    // ---------------------------------------------------------------- with_extra

    fn extra(analyte: &str, from: &str, to: &str, factor: f64) -> ExtraConversion {
        ExtraConversion {
            analyte: analyte.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            factor,
        }
    }

    #[test]
    fn extra_conversion_composes() {
        // Pipeline-declared: cholesterol, molar mass 386.65 g/mol, 1 mg/dL = 0.025863 mmol/L.
        assert!(reg().conversion("CHOL", "mg/dL", "mmol/L").is_err());
        let extended = reg()
            .with_extra(&[extra("chol", "mg/dl", "mmol/L", 0.025863)])
            .unwrap();
        let c = extended.conversion("CHOL", "g/L", "umol/L").unwrap();
        assert_close(
            c.apply(2.0).unwrap(),
            2.0 * 0.1 * 1000.0 * 0.025863 * 1000.0,
            1e-12,
        );
        let back = extended.conversion("CHOL", "mmol/L", "mg/dL").unwrap();
        assert_close(back.apply(0.025863).unwrap(), 1.0, 1e-12);
        // The builtin registry is unchanged and other analytes do not see the edge.
        assert!(reg().conversion("CHOL", "mg/dL", "mmol/L").is_err());
        assert!(extended.conversion("TRIG", "mg/dL", "mmol/L").is_err());
        // Built-in conversions are still there.
        check("BILI", "mg/dL", "umol/L", 1.0, 17.104);
    }

    #[test]
    fn extra_conversion_overrides_assay_factor() {
        // A hypothetical assay with 1 IU = 3.0 copies replaces the built-in 5.82 for HBVDNA.
        let extended = reg()
            .with_extra(&[extra("HBVDNA", "copies/mL", "IU/mL", 1.0 / 3.0)])
            .unwrap();
        let c = extended.conversion("HBVDNA", "IU/mL", "copies/mL").unwrap();
        assert_close(c.apply(100.0).unwrap(), 300.0, 1e-12);
        let logs = extended
            .conversion("HBVDNA", "log10 IU/mL", "log10 copies/mL")
            .unwrap();
        assert_close(logs.apply(2.0).unwrap(), 2.0 + 3f64.log10(), 1e-12);
    }

    #[test]
    fn extra_conversion_must_agree_with_definitions() {
        // Agrees with the generic definition 1 g/dL = 10 g/L: accepted, no change.
        let same = reg()
            .with_extra(&[extra("ALB", "g/dL", "g/L", 10.0)])
            .unwrap();
        check("ALB", "g/dL", "g/L", 1.0, 10.0);
        assert_eq!(
            same.conversion("ALB", "g/dL", "g/L").unwrap(),
            reg().conversion("ALB", "g/dL", "g/L").unwrap()
        );
        // Contradicts it.
        let err = reg()
            .with_extra(&[extra("ALB", "g/dL", "g/L", 100.0)])
            .unwrap_err();
        assert!(matches!(err, UnitError::Inconsistent { .. }), "{err:?}");
        // Contradicts a composed path through an analyte edge: BILI mg/L -> nmol/L is implied.
        let err = reg()
            .with_extra(&[extra("BILI", "mg/L", "nmol/L", 1.0)])
            .unwrap_err();
        assert!(matches!(err, UnitError::Inconsistent { .. }), "{err:?}");
        reg()
            .with_extra(&[extra("BILI", "mg/L", "nmol/L", 1710.4)])
            .unwrap();
    }

    #[test]
    fn extra_conversion_errors() {
        for factor in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = reg()
                .with_extra(&[extra("CHOL", "mg/dL", "mmol/L", factor)])
                .unwrap_err();
            assert!(matches!(err, UnitError::InvalidFactor { .. }), "{err:?}");
        }
        assert_eq!(
            reg()
                .with_extra(&[extra("CHOL", "mg/dL", "bananas", 1.0)])
                .unwrap_err(),
            UnitError::UnknownUnit {
                raw: "bananas".to_string()
            }
        );
        assert!(matches!(
            reg().with_extra(&[extra(" ", "mg/dL", "mmol/L", 1.0)]),
            Err(UnitError::MissingAnalyte { .. })
        ));
        assert!(matches!(
            reg().with_extra(&[extra("CHOL", "mg/dL", "MG/DL", 1.0)]),
            Err(UnitError::SameUnit { .. })
        ));
        assert!(matches!(
            reg().with_extra(&[extra("HCVRNA", "log10 IU/mL", "IU/mL", 1.0)]),
            Err(UnitError::LogUnit { .. })
        ));
        assert!(matches!(
            reg().with_extra(&[
                extra("CHOL", "mg/dL", "mmol/L", 0.025863),
                extra("chol", "mmol/L", "mg/dL", 38.67),
            ]),
            Err(UnitError::DuplicateExtra { .. })
        ));
    }

    // ---------------------------------------------------------------- data validation

    const TWO_UNITS: &str = r#"
        [[unit]]
        symbol = "a"
        dimension = "d"
        [[unit]]
        symbol = "b"
        dimension = "d"
        [[unit]]
        symbol = "c"
        dimension = "e"
    "#;

    fn data_err(extra_toml: &str) -> String {
        match Registry::from_toml(&format!("{TWO_UNITS}{extra_toml}")) {
            Err(UnitError::Data { message }) => message,
            other => panic!("expected a data error, got {other:?}"),
        }
    }

    #[test]
    fn data_validation() {
        Registry::from_toml(TWO_UNITS).unwrap();
        // A clash is an identical normalized spelling (here after removing whitespace); spellings
        // that differ only in case are allowed and make the case-insensitive match ambiguous.
        let msg = data_err("[[unit]]\nsymbol = \"x\"\ndimension = \"d\"\naliases = [\" a \"]\n");
        assert!(msg.contains("both"), "{msg}");
        let msg = data_err("[[generic]]\nfrom = \"a\"\nto = \"c\"\nfactor = 2.0\nsource = \"s\"\n");
        assert!(msg.contains("dimensions"), "{msg}");
        let msg = data_err("[[generic]]\nfrom = \"A\"\nto = \"b\"\nfactor = 2.0\nsource = \"s\"\n");
        assert!(msg.contains("canonical"), "{msg}");
        let msg = data_err("[[generic]]\nfrom = \"a\"\nto = \"b\"\nfactor = 0.0\nsource = \"s\"\n");
        assert!(msg.contains("greater than zero"), "{msg}");
        let msg = data_err("[[generic]]\nfrom = \"a\"\nto = \"b\"\nfactor = 2.0\nsource = \"\"\n");
        assert!(msg.contains("source"), "{msg}");
        let msg = data_err(
            "[[generic]]\nfrom = \"a\"\nto = \"b\"\nfactor = 2.0\nsource = \"s\"\n\
             [[generic]]\nfrom = \"b\"\nto = \"a\"\nfactor = 0.5\nsource = \"s\"\n",
        );
        assert!(msg.contains("already implied"), "{msg}");
        let msg = data_err("[[analyte]]\nfrom = \"a\"\nto = \"c\"\nfactor = 2.0\nsource = \"s\"\n");
        assert!(msg.contains("codes"), "{msg}");
        let msg = data_err(
            "[[analyte]]\ncodes = [\"X\"]\nkind = \"affine\"\nfrom = \"a\"\nto = \"c\"\nfactor = 2.0\nsource = \"s\"\n",
        );
        assert!(msg.contains("scale"), "{msg}");
        let msg = data_err(
            "[[analyte]]\ncodes = [\"X\"]\nfrom = \"a\"\nto = \"c\"\nfactr = 2.0\nsource = \"s\"\n",
        );
        assert!(msg.contains("factr"), "{msg}");
        Registry::from_toml(&format!(
            "{TWO_UNITS}[[analyte]]\ncodes = [\"X\"]\nfrom = \"a\"\nto = \"c\"\nfactor = 2.0\nsource = \"s\"\n"
        ))
        .unwrap();
    }

    #[test]
    fn search_keeps_paths_whose_composition_is_representable() {
        // Only the log forms are linked for this analyte (a pure shift); the linear units must be
        // reached through log -> shift -> power, which composes to a linear factor.
        let registry = Registry::from_toml(
            r#"
            [[unit]]
            symbol = "c"
            dimension = "copies"
            [[unit]]
            symbol = "log c"
            dimension = "log10 copies"
            [[unit]]
            symbol = "i"
            dimension = "iu"
            [[unit]]
            symbol = "log i"
            dimension = "log10 iu"
            [[generic]]
            kind = "to_log10"
            from = "c"
            to = "log c"
            factor = 1.0
            source = "s"
            [[generic]]
            kind = "to_log10"
            from = "i"
            to = "log i"
            factor = 1.0
            source = "s"
            [[analyte]]
            codes = ["V"]
            kind = "affine"
            from = "log i"
            to = "log c"
            scale = 1.0
            offset = 0.5
            source = "s"
            "#,
        )
        .unwrap();
        let c = registry.conversion("V", "i", "c").unwrap();
        assert!(matches!(c, Conversion::Linear { .. }), "{c:?}");
        assert_close(c.apply(1.0).unwrap(), 10f64.powf(0.5), 1e-12);
        assert!(registry.conversion("W", "i", "c").is_err());
    }

    // ---------------------------------------------------------------- documentation

    #[test]
    fn docs_list_every_spelling_and_analyte() {
        let docs = include_str!("../docs/units.md");
        for unit in &reg().units {
            for spelling in std::iter::once(&unit.symbol).chain(&unit.aliases) {
                assert!(
                    docs.contains(&format!("`{spelling}`")),
                    "docs/units.md does not list `{spelling}`"
                );
            }
        }
        for code in reg().analyte.keys() {
            assert!(
                docs.contains(&format!("`{code}`")),
                "docs/units.md does not list `{code}`"
            );
        }
    }
}
