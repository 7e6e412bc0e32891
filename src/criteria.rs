//! A small expression language for subject-level criteria (eligibility, and later response
//! rules), declared in the pipeline file as text:
//!
//! ```text
//! age >= 20 and age <= 60
//! baseline(PT) - uln(PT) > 3
//! hepatic_encephalopathy in ["Y", "YES"]
//! days(last_albumin_date, randomization_date) <= 21
//! ```
//!
//! Grammar (lowest precedence first): `or`, `and`, `not`, comparison (`< <= > >= == !=`, `in
//! [..]`), `+ -`, `* /`, unary `-`, and primaries: numbers, `"strings"`, `true`/`false`,
//! identifiers (variables), calls `name(args)` and parentheses. Logic is three-valued (Kleene):
//! a comparison with a missing value is *unknown*, `false and unknown` is false, `true or unknown`
//! is true, so a subject whose data cannot show a criterion is reported as unknown, never guessed.
//!
//! Parsing and evaluation are pure; the caller supplies variables and functions through
//! [`Env`].

use std::fmt;

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Num(f64),
    /// Text.
    Str(String),
    /// A truth value.
    Bool(bool),
    /// Missing or unknown.
    Missing,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(v) => write!(f, "{v}"),
            Value::Str(s) => write!(f, "\"{s}\""),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Missing => write!(f, "missing"),
        }
    }
}

/// A parse error with the 1-based character column in the expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 1-based character column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// An evaluation error (a wrong type, an unknown function, a wrong argument).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Literal.
    Lit(Value),
    /// Variable.
    Var(String),
    /// Function call.
    Call(String, Vec<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// Logical not.
    Not(Box<Expr>),
    /// Binary operator.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// Membership in a list of literals.
    In(Box<Expr>, Vec<Value>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// What an expression may look up.
pub trait Env {
    /// A variable's value (`Value::Missing` when the subject has none); `Err` when the name is
    /// not a variable at all.
    fn var(&self, name: &str) -> Result<Value, EvalError>;
    /// A function call with evaluated arguments. Identifiers given as arguments are passed as
    /// `Value::Str` of their name when `raw_ident_args` says so for that function.
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, EvalError>;
    /// Whether this function takes bare identifiers (e.g. a test code in `baseline(PT)`).
    fn raw_ident_args(&self, name: &str) -> bool;
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let save = i;
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                if i < chars.len() && chars[i].is_ascii_digit() {
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = save;
                }
            }
            let text: String = chars[start..i].iter().collect();
            let v = text.parse::<f64>().map_err(|_| ParseError {
                column: col,
                message: format!("`{text}` is not a number"),
            })?;
            out.push((Tok::Num(v), col));
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ParseError {
                            column: col,
                            message: "unterminated string".into(),
                        });
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Str(s), col));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), col));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = ["<=", ">=", "==", "!="]
                .into_iter()
                .find(|o| *o == two)
                .or_else(|| {
                    ["<", ">", "+", "-", "*", "/", "(", ")", "[", "]", ","]
                        .into_iter()
                        .find(|o| o.starts_with(c))
                });
            match op {
                Some(o) => {
                    i += o.len();
                    out.push((Tok::Op(o), col));
                }
                None => {
                    return Err(ParseError {
                        column: col,
                        message: format!("unexpected character `{c}`"),
                    });
                }
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end_col: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end_col, |t| t.1)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: self.col(),
            message: message.into(),
        })
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == w)
    }
    fn is_op(&self, o: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(s)) if *s == o)
    }
    fn expect_op(&mut self, o: &str) -> Result<(), ParseError> {
        if self.is_op(o) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected `{o}`"))
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.and()?;
        while self.is_word("or") {
            self.pos += 1;
            let r = self.and()?;
            l = Expr::Bin(BinOp::Or, Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.not()?;
        while self.is_word("and") {
            self.pos += 1;
            let r = self.not()?;
            l = Expr::Bin(BinOp::And, Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.is_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let l = self.add()?;
        if self.is_word("in") {
            self.pos += 1;
            self.expect_op("[")?;
            let mut items = Vec::new();
            if !self.is_op("]") {
                loop {
                    let neg = if self.is_op("-") {
                        self.pos += 1;
                        true
                    } else {
                        false
                    };
                    match self.peek().cloned() {
                        Some(Tok::Num(v)) => items.push(Value::Num(if neg { -v } else { v })),
                        Some(Tok::Str(s)) if !neg => items.push(Value::Str(s)),
                        _ => return self.err("a list holds numbers or \"strings\""),
                    }
                    self.pos += 1;
                    if self.is_op(",") {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
            self.expect_op("]")?;
            return Ok(Expr::In(Box::new(l), items));
        }
        let op = match self.peek() {
            Some(Tok::Op("<")) => BinOp::Lt,
            Some(Tok::Op("<=")) => BinOp::Le,
            Some(Tok::Op(">")) => BinOp::Gt,
            Some(Tok::Op(">=")) => BinOp::Ge,
            Some(Tok::Op("==")) => BinOp::Eq,
            Some(Tok::Op("!=")) => BinOp::Ne,
            _ => return Ok(l),
        };
        self.pos += 1;
        let r = self.add()?;
        Ok(Expr::Bin(op, Box::new(l), Box::new(r)))
    }
    fn add(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.mul()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("+")) => BinOp::Add,
                Some(Tok::Op("-")) => BinOp::Sub,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.mul()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }
    fn mul(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("*")) => BinOp::Mul,
                Some(Tok::Op("/")) => BinOp::Div,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.unary()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }
    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is_op("-") {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Num(v)) => {
                self.pos += 1;
                Ok(Expr::Lit(Value::Num(v)))
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Expr::Lit(Value::Str(s)))
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                match name.as_str() {
                    "true" => return Ok(Expr::Lit(Value::Bool(true))),
                    "false" => return Ok(Expr::Lit(Value::Bool(false))),
                    "and" | "or" | "not" | "in" => {
                        self.pos -= 1;
                        return self.err(format!("`{name}` needs a value before it"));
                    }
                    _ => {}
                }
                if self.is_op("(") {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if !self.is_op(")") {
                        loop {
                            args.push(self.or()?);
                            if self.is_op(",") {
                                self.pos += 1;
                            } else {
                                break;
                            }
                        }
                    }
                    self.expect_op(")")?;
                    Ok(Expr::Call(name, args))
                } else {
                    Ok(Expr::Var(name))
                }
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let e = self.or()?;
                self.expect_op(")")?;
                Ok(e)
            }
            Some(Tok::Op(o)) => self.err(format!("unexpected `{o}`")),
            None => self.err("the expression ends too early"),
        }
    }
}

/// Parse an expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end_col: src.chars().count() + 1,
    };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return p.err("unexpected text after the expression");
    }
    Ok(e)
}

impl Expr {
    /// Every variable name and every (function, bare-identifier argument) the expression uses.
    pub fn names(&self, vars: &mut Vec<String>, calls: &mut Vec<(String, Vec<String>)>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Var(v) => vars.push(v.clone()),
            Expr::Call(f, args) => {
                let idents = args
                    .iter()
                    .filter_map(|a| match a {
                        Expr::Var(v) => Some(v.clone()),
                        _ => None,
                    })
                    .collect();
                calls.push((f.clone(), idents));
                for a in args {
                    if !matches!(a, Expr::Var(_)) {
                        a.names(vars, calls);
                    }
                }
            }
            Expr::Neg(e) | Expr::Not(e) | Expr::In(e, _) => e.names(vars, calls),
            Expr::Bin(_, l, r) => {
                l.names(vars, calls);
                r.names(vars, calls);
            }
        }
    }

    /// Evaluate with three-valued logic.
    pub fn eval(&self, env: &dyn Env) -> Result<Value, EvalError> {
        match self {
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Var(v) => env.var(v),
            Expr::Call(f, args) => {
                let raw = env.raw_ident_args(f);
                let vals = args
                    .iter()
                    .map(|a| match (raw, a) {
                        (true, Expr::Var(name)) => Ok(Value::Str(name.clone())),
                        _ => a.eval(env),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                env.call(f, &vals)
            }
            Expr::Neg(e) => match e.eval(env)? {
                Value::Num(v) => Ok(Value::Num(-v)),
                Value::Missing => Ok(Value::Missing),
                other => Err(EvalError(format!("cannot negate {other}"))),
            },
            Expr::Not(e) => match e.eval(env)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                Value::Missing => Ok(Value::Missing),
                other => Err(EvalError(format!("`not` needs true or false, got {other}"))),
            },
            Expr::In(e, items) => match e.eval(env)? {
                Value::Missing => Ok(Value::Missing),
                v => Ok(Value::Bool(items.iter().any(|i| loose_eq(&v, i)))),
            },
            Expr::Bin(op, l, r) => {
                let (a, b) = (l.eval(env)?, r.eval(env)?);
                binop(*op, a, b)
            }
        }
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.eq_ignore_ascii_case(y),
        (Value::Num(x), Value::Num(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => false,
    }
}

fn truth(v: &Value) -> Result<Option<bool>, EvalError> {
    match v {
        Value::Bool(b) => Ok(Some(*b)),
        Value::Missing => Ok(None),
        other => Err(EvalError(format!("expected true or false, got {other}"))),
    }
}

fn binop(op: BinOp, a: Value, b: Value) -> Result<Value, EvalError> {
    use BinOp::*;
    match op {
        And => Ok(match (truth(&a)?, truth(&b)?) {
            (Some(false), _) | (_, Some(false)) => Value::Bool(false),
            (Some(true), Some(true)) => Value::Bool(true),
            _ => Value::Missing,
        }),
        Or => Ok(match (truth(&a)?, truth(&b)?) {
            (Some(true), _) | (_, Some(true)) => Value::Bool(true),
            (Some(false), Some(false)) => Value::Bool(false),
            _ => Value::Missing,
        }),
        _ if a == Value::Missing || b == Value::Missing => Ok(Value::Missing),
        Eq => Ok(Value::Bool(loose_eq(&a, &b))),
        Ne => Ok(Value::Bool(!loose_eq(&a, &b))),
        Lt | Le | Gt | Ge => {
            let ord = match (&a, &b) {
                (Value::Num(x), Value::Num(y)) => x.partial_cmp(y),
                (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
                _ => None,
            }
            .ok_or_else(|| EvalError(format!("cannot compare {a} with {b}")))?;
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match op {
                Lt => ord == Less,
                Le => ord != Greater,
                Gt => ord == Greater,
                _ => ord != Less,
            }))
        }
        Add | Sub | Mul | Div => match (a, b) {
            (Value::Num(x), Value::Num(y)) => {
                let v = match op {
                    Add => x + y,
                    Sub => x - y,
                    Mul => x * y,
                    _ => x / y,
                };
                Ok(if v.is_finite() {
                    Value::Num(v)
                } else {
                    Value::Missing
                })
            }
            (x, y) => Err(EvalError(format!(
                "arithmetic needs numbers, got {x} and {y}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct E(HashMap<&'static str, Value>);
    impl Env for E {
        fn var(&self, name: &str) -> Result<Value, EvalError> {
            self.0
                .get(name)
                .cloned()
                .ok_or_else(|| EvalError(format!("unknown variable `{name}`")))
        }
        fn call(&self, name: &str, args: &[Value]) -> Result<Value, EvalError> {
            match (name, args) {
                ("baseline", [Value::Str(c)]) if c == "PT" => Ok(Value::Num(16.0)),
                ("uln", [Value::Str(c)]) if c == "PT" => Ok(Value::Num(13.5)),
                _ => Err(EvalError(format!("unknown function `{name}`"))),
            }
        }
        fn raw_ident_args(&self, name: &str) -> bool {
            matches!(name, "baseline" | "uln")
        }
    }

    fn env() -> E {
        E(HashMap::from([
            ("age", Value::Num(45.0)),
            ("he", Value::Str("N".into())),
            ("gone", Value::Missing),
        ]))
    }

    fn ev(s: &str) -> Value {
        parse(s).unwrap().eval(&env()).unwrap()
    }

    #[test]
    fn arithmetic_and_comparison() {
        assert_eq!(ev("age >= 20 and age <= 60"), Value::Bool(true));
        assert_eq!(ev("age * 2 - 10 / 5 == 88"), Value::Bool(true));
        assert_eq!(ev("-age < 0"), Value::Bool(true));
        assert_eq!(ev("baseline(PT) - uln(PT) > 3"), Value::Bool(false));
        assert_eq!(ev("baseline(PT) - uln(PT)"), Value::Num(2.5));
        assert_eq!(ev("he in [\"y\", \"yes\"]"), Value::Bool(false));
        assert_eq!(ev("not (he == \"n\")"), Value::Bool(false));
        assert_eq!(ev("age in [45, -1]"), Value::Bool(true));
        assert_eq!(ev("1e2 == 100"), Value::Bool(true));
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(ev("gone > 3"), Value::Missing);
        assert_eq!(ev("gone > 3 and age > 100"), Value::Bool(false));
        assert_eq!(ev("gone > 3 or age > 1"), Value::Bool(true));
        assert_eq!(ev("gone > 3 or age > 100"), Value::Missing);
        assert_eq!(ev("not (gone > 3)"), Value::Missing);
        assert_eq!(ev("gone in [1]"), Value::Missing);
    }

    #[test]
    fn parse_errors_point_at_the_column() {
        assert_eq!(
            parse("age >= ").unwrap_err(),
            ParseError {
                column: 8,
                message: "the expression ends too early".into()
            }
        );
        assert_eq!(parse("age >= 20 20").unwrap_err().column, 11);
        assert_eq!(parse("age # 2").unwrap_err().column, 5);
        assert_eq!(parse("(age > 1").unwrap_err().message, "expected `)`");
        assert_eq!(parse("\"open").unwrap_err().message, "unterminated string");
        assert_eq!(parse("and x").unwrap_err().column, 1);
    }

    #[test]
    fn type_errors_are_errors() {
        let e = parse("he + 1").unwrap().eval(&env()).unwrap_err();
        assert_eq!(e.0, "arithmetic needs numbers, got \"N\" and 1");
        let e = parse("nope > 1").unwrap().eval(&env()).unwrap_err();
        assert_eq!(e.0, "unknown variable `nope`");
    }

    #[test]
    fn names_lists_variables_and_calls() {
        let e = parse("age > 1 and baseline(PT) - uln(PT) > days(a, b)").unwrap();
        let (mut v, mut c) = (Vec::new(), Vec::new());
        e.names(&mut v, &mut c);
        assert_eq!(v, vec!["age"]);
        assert_eq!(
            c.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            vec!["baseline", "uln", "days"]
        );
        assert_eq!(c[2].1, vec!["a", "b"]);
    }
}
