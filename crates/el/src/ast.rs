//! The compiled form of an expression. Everything that can be decided at load is decided here:
//! method names are checked against the allow-list, literal regexes and JSONPaths are compiled, and
//! root paths made only of literals are prebuilt so a per-message lookup allocates nothing.

use crate::json_path::JsonPath;
use crate::value::{Key, Value};
use regex::Regex;

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Literal(Value),
    /// `{a, b}`: SpEL's inline list.
    List(Vec<Expr>),
    /// `#name` with the property and index steps that follow it; the context answers it in one go.
    Root(Root),
    /// `#jsonPath(json, path)`.
    JsonPath {
        json: Box<Expr>,
        path: Box<Expr>,
        compiled: Option<JsonPath>,
    },
    /// A value followed by steps that the context does not answer: method calls, and any access
    /// after them. Evaluated left to right in a loop, so long chains cost no recursion.
    Chain {
        base: Box<Expr>,
        steps: Vec<Step>,
    },
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `a matches 'regex'`; `compiled` when the pattern is a literal.
    Matches {
        subject: Box<Expr>,
        pattern: Box<Expr>,
        compiled: Option<Regex>,
    },
    Ternary {
        condition: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `a ?: b`
    Elvis {
        value: Box<Expr>,
        fallback: Box<Expr>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Root {
    pub name: String,
    pub path: Vec<PathStep>,
    /// `path` as keys, when every index is a literal.
    pub fixed: Option<Vec<Key>>,
}

#[derive(Debug, Clone)]
pub(crate) enum PathStep {
    Name(String),
    Index(Expr),
}

#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// `.name`, or `?.name` when `safe`.
    Property {
        name: String,
        safe: bool,
    },
    Index(Expr),
    Method(MethodCall),
}

#[derive(Debug, Clone)]
pub(crate) struct MethodCall {
    pub method: Method,
    pub args: Vec<Expr>,
    /// `?.method()`: null receiver gives null instead of an error.
    pub safe: bool,
    /// `split` with a literal pattern, compiled at load.
    pub compiled: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Gt => ">",
            BinaryOp::Le => "<=",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

/// The methods an expression may call: nothing else is reachable (in SpEL, an unrestricted method
/// call is the road to `T(Runtime).exec`). Receivers are checked when the call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Contains,
    StartsWith,
    EndsWith,
    ToUpperCase,
    ToLowerCase,
    Length,
    Substring,
    Split,
    Trim,
    Replace,
    IsEmpty,
    Equals,
    EqualsIgnoreCase,
    Size,
    ContainsKey,
    ToString,
}

impl Method {
    /// The allow-list: name, method, fewest and most arguments.
    const ALL: [(&'static str, Method, usize, usize); 16] = [
        ("contains", Method::Contains, 1, 1),
        ("startsWith", Method::StartsWith, 1, 1),
        ("endsWith", Method::EndsWith, 1, 1),
        ("toUpperCase", Method::ToUpperCase, 0, 0),
        ("toLowerCase", Method::ToLowerCase, 0, 0),
        ("length", Method::Length, 0, 0),
        ("substring", Method::Substring, 1, 2),
        ("split", Method::Split, 1, 1),
        ("trim", Method::Trim, 0, 0),
        ("replace", Method::Replace, 2, 2),
        ("isEmpty", Method::IsEmpty, 0, 0),
        ("equals", Method::Equals, 1, 1),
        ("equalsIgnoreCase", Method::EqualsIgnoreCase, 1, 1),
        ("size", Method::Size, 0, 0),
        ("containsKey", Method::ContainsKey, 1, 1),
        ("toString", Method::ToString, 0, 0),
    ];

    /// The method and its argument range, if `name` is allowed (Java names are case-sensitive).
    pub(crate) fn lookup(name: &str) -> Option<(Method, usize, usize)> {
        Self::ALL.iter().find(|(known, ..)| *known == name).map(|(_, method, min, max)| (*method, *min, *max))
    }

    pub(crate) fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, method, ..)| *method == self).map_or("?", |(name, ..)| name)
    }

    pub(crate) fn allowed() -> impl Iterator<Item = &'static str> {
        Self::ALL.iter().map(|(name, ..)| *name)
    }
}

/// Functions callable as `#name(...)`.
pub(crate) const FUNCTIONS: [&str; 1] = ["jsonPath"];
