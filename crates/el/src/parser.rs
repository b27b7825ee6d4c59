//! A Pratt parser from tokens to [`Expr`]. Precedence, loosest first: ternary and elvis, `or`,
//! `and`, equality, relational and `matches`, additive, multiplicative, unary, then postfix steps
//! (`.name`, `[index]`, `.method(...)`).
//!
//! Input comes from API definitions, and a hostile or broken one must not take the gateway down:
//! recursion is capped at [`MAX_DEPTH`] and so is the depth of the tree built (evaluation recurses
//! over it), and expressions longer than [`MAX_EXPRESSION_LEN`] are refused.

use crate::ast::{BinaryOp, Expr, Method, MethodCall, PathStep, Root, Step, FUNCTIONS};
use crate::error::SyntaxError;
use crate::eval::{full_match_regex, split_regex};
use crate::json_path::JsonPath;
use crate::lexer::{tokenize, Spanned, Token};
use crate::value::{Key, Value};

/// Deepest nesting of an expression (parentheses, operators, arguments).
pub const MAX_DEPTH: usize = 64;
/// Longest expression text in bytes (one `{#…}` part; literal template text is not limited).
pub const MAX_EXPRESSION_LEN: usize = 8 * 1024;

/// Binding power of the prefix operators `!`, `not`, `-`, `+`.
const PREFIX: u8 = 8;

pub(crate) fn parse_expression(text: &str) -> Result<Expr, SyntaxError> {
    if text.len() > MAX_EXPRESSION_LEN {
        return Err(SyntaxError::new(0, format!("expression longer than {MAX_EXPRESSION_LEN} bytes")));
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, next: 0, end: text.len(), recursion: 0 };
    if parser.tokens.is_empty() {
        return Err(SyntaxError::new(0, "empty expression"));
    }
    let node = parser.expression(0)?;
    match parser.peek() {
        None => Ok(node.expr),
        Some(extra) => Err(SyntaxError::new(extra.at, format!("unexpected {} after the expression", extra.token))),
    }
}

/// An expression with the depth of its tree, so limits are checked as the tree is built.
struct Node {
    expr: Expr,
    depth: usize,
}

/// What an infix token does.
#[derive(Clone, Copy)]
enum Infix {
    Binary(BinaryOp),
    Matches,
    Ternary,
    Elvis,
}

struct Parser {
    tokens: Vec<Spanned>,
    next: usize,
    end: usize,
    recursion: usize,
}

impl Parser {
    fn expression(&mut self, min_power: u8) -> Result<Node, SyntaxError> {
        let at = self.position();
        self.recursion += 1;
        if self.recursion > MAX_DEPTH {
            return Err(too_deep(at));
        }
        let mut left = self.prefix()?;
        while let Some((infix, power)) = self.peek().and_then(|t| infix(&t.token)) {
            if power < min_power {
                break;
            }
            let op_at = self.position();
            self.next += 1;
            left = match infix {
                Infix::Binary(op) => {
                    let right = self.expression(power + 1)?;
                    let depth = deeper(op_at, &[left.depth, right.depth])?;
                    Node { expr: Expr::Binary { op, left: Box::new(left.expr), right: Box::new(right.expr) }, depth }
                }
                Infix::Matches => {
                    let pattern = self.expression(power + 1)?;
                    let compiled = match &pattern.expr {
                        Expr::Literal(Value::String(regex)) => Some(
                            full_match_regex(regex)
                                .map_err(|e| SyntaxError::new(op_at, format!("invalid regex: {e}")))?,
                        ),
                        _ => None,
                    };
                    let depth = deeper(op_at, &[left.depth, pattern.depth])?;
                    let expr =
                        Expr::Matches { subject: Box::new(left.expr), pattern: Box::new(pattern.expr), compiled };
                    Node { expr, depth }
                }
                Infix::Ternary => {
                    let then = self.expression(0)?;
                    self.expect(&Token::Colon, "':' of the conditional")?;
                    let otherwise = self.expression(power)?;
                    let depth = deeper(op_at, &[left.depth, then.depth, otherwise.depth])?;
                    let expr = Expr::Ternary {
                        condition: Box::new(left.expr),
                        then: Box::new(then.expr),
                        otherwise: Box::new(otherwise.expr),
                    };
                    Node { expr, depth }
                }
                Infix::Elvis => {
                    let fallback = self.expression(power)?;
                    let depth = deeper(op_at, &[left.depth, fallback.depth])?;
                    Node { expr: Expr::Elvis { value: Box::new(left.expr), fallback: Box::new(fallback.expr) }, depth }
                }
            };
        }
        self.recursion -= 1;
        Ok(left)
    }

    fn prefix(&mut self) -> Result<Node, SyntaxError> {
        let at = self.position();
        let Some(token) = self.tokens.get(self.next).map(|t| t.token.clone()) else {
            return Err(SyntaxError::new(at, "expression ends too early"));
        };
        self.next += 1;
        let primary = match token {
            Token::Bang => return self.unary(at, Expr::Not),
            Token::Ident(word) if word.eq_ignore_ascii_case("not") => return self.unary(at, Expr::Not),
            Token::Minus => return self.negate(at),
            Token::Plus => return self.expression(PREFIX),
            Token::LParen => {
                let inner = self.expression(0)?;
                self.expect(&Token::RParen, "')'")?;
                inner
            }
            Token::LBrace => self.inline_list(at)?,
            Token::Hash => self.hash(at)?,
            Token::Str(text) => leaf(Value::String(text)),
            Token::Int(i) => leaf(Value::Int(i)),
            Token::Float(f) => leaf(Value::Float(f)),
            Token::Ident(word) => leaf(keyword_literal(&word).ok_or_else(|| unknown_word(at, &word, self.peek()))?),
            other => return Err(SyntaxError::new(at, format!("unexpected {other}"))),
        };
        self.chain(primary)
    }

    fn unary(&mut self, at: usize, build: fn(Box<Expr>) -> Expr) -> Result<Node, SyntaxError> {
        let operand = self.expression(PREFIX)?;
        Ok(Node { expr: build(Box::new(operand.expr)), depth: deeper(at, &[operand.depth])? })
    }

    /// `-` folds into a number literal (so `-5` is a constant), otherwise negates at run time.
    fn negate(&mut self, at: usize) -> Result<Node, SyntaxError> {
        let operand = self.expression(PREFIX)?;
        let folded = match &operand.expr {
            Expr::Literal(Value::Int(i)) => i.checked_neg().map(Value::Int),
            Expr::Literal(Value::Float(f)) => Some(Value::Float(-f)),
            _ => None,
        };
        match folded {
            Some(value) => Ok(leaf(value)),
            None => Ok(Node { expr: Expr::Negate(Box::new(operand.expr)), depth: deeper(at, &[operand.depth])? }),
        }
    }

    /// `{a, b}` after its `{`.
    fn inline_list(&mut self, at: usize) -> Result<Node, SyntaxError> {
        let items = self.list(&Token::RBrace, "'}'")?;
        if let Some(colon) = items.iter().find_map(|item| item.as_ref().err()) {
            return Err(SyntaxError::new(*colon, "inline maps are not supported"));
        }
        let items: Vec<Node> = items.into_iter().filter_map(Result::ok).collect();
        let depth = deeper(at, &items.iter().map(|n| n.depth).collect::<Vec<_>>())?;
        Ok(Node { expr: Expr::List(items.into_iter().map(|n| n.expr).collect()), depth })
    }

    /// Comma-separated expressions up to `close` (consumed). A `:` where a comma should be is
    /// reported as `Err(position)` so the caller can name what it means there.
    fn list(&mut self, close: &Token, closing: &str) -> Result<Vec<Result<Node, usize>>, SyntaxError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(Ok(self.expression(0)?));
            if self.eat(close) {
                return Ok(items);
            }
            if self.peek().is_some_and(|t| t.token == Token::Colon) {
                items.push(Err(self.position()));
                return Ok(items);
            }
            self.expect(&Token::Comma, &format!("',' or {closing}"))?;
        }
    }

    fn arguments(&mut self) -> Result<Vec<Node>, SyntaxError> {
        self.expect(&Token::LParen, "'('")?;
        let items = self.list(&Token::RParen, "')'")?;
        items.into_iter().map(|item| item.map_err(|at| SyntaxError::new(at, "expected ',' or ')'"))).collect()
    }

    /// After `#`: a function call `#jsonPath(...)` or a root with its path (`#request.headers['x']`).
    fn hash(&mut self, at: usize) -> Result<Node, SyntaxError> {
        let name_at = self.position();
        let Some(Token::Ident(name)) = self.peek().map(|t| t.token.clone()) else {
            return Err(SyntaxError::new(name_at, "expected a name after '#'"));
        };
        self.next += 1;
        if self.peek().is_some_and(|t| t.token == Token::LParen) {
            return self.function(name_at, &name);
        }
        let mut path = Vec::new();
        let mut depths = Vec::new();
        loop {
            match self.peek().map(|t| &t.token) {
                Some(Token::Dot | Token::SafeDot) if self.is_property_next() => {
                    if let Some(Token::Ident(property)) = self.tokens.get(self.next + 1).map(|t| t.token.clone()) {
                        path.push(PathStep::Name(property));
                    }
                    self.next += 2;
                }
                Some(Token::LBracket) => {
                    self.next += 1;
                    let index = self.expression(0)?;
                    self.expect(&Token::RBracket, "']'")?;
                    depths.push(index.depth);
                    path.push(PathStep::Index(index.expr));
                }
                _ => break,
            }
        }
        let fixed = path
            .iter()
            .map(|step| match step {
                PathStep::Name(name) => Some(Key::Name(name.clone())),
                PathStep::Index(Expr::Literal(value)) => Some(Key::Index(value.clone())),
                PathStep::Index(_) => None,
            })
            .collect();
        Ok(Node { expr: Expr::Root(Root { name, path, fixed }), depth: deeper(at, &depths)? })
    }

    /// `.name` or `?.name` not followed by `(`: a step of a root's path rather than a method call.
    fn is_property_next(&self) -> bool {
        matches!(self.tokens.get(self.next + 1).map(|t| &t.token), Some(Token::Ident(_)))
            && !matches!(self.tokens.get(self.next + 2).map(|t| &t.token), Some(Token::LParen))
    }

    fn function(&mut self, at: usize, name: &str) -> Result<Node, SyntaxError> {
        if !FUNCTIONS.contains(&name) {
            return Err(SyntaxError::new(
                at,
                format!("unknown function '#{name}'; available: #{}", FUNCTIONS.join(", #")),
            ));
        }
        let args_at = self.position();
        let mut args = self.arguments()?;
        if args.len() != 2 {
            return Err(SyntaxError::new(args_at, "#jsonPath takes 2 arguments: the JSON and the path"));
        }
        let (json, path) = (args.remove(0), args.remove(0));
        let compiled = match &path.expr {
            Expr::Literal(Value::String(text)) => Some(
                JsonPath::parse(text)
                    .map_err(|(_, message)| SyntaxError::new(args_at, format!("#jsonPath: {message}")))?,
            ),
            _ => None,
        };
        let depth = deeper(at, &[json.depth, path.depth])?;
        Ok(Node { expr: Expr::JsonPath { json: Box::new(json.expr), path: Box::new(path.expr), compiled }, depth })
    }

    /// Postfix steps after a primary: `.name`, `?.name`, `[index]`, `.method(args)`.
    fn chain(&mut self, base: Node) -> Result<Node, SyntaxError> {
        let mut steps = Vec::new();
        let mut depths = vec![base.depth];
        while let Some(token) = self.peek().map(|t| t.token.clone()) {
            match token {
                Token::Dot | Token::SafeDot => {
                    self.next += 1;
                    let safe = token == Token::SafeDot;
                    let name_at = self.position();
                    let Some(Token::Ident(name)) = self.peek().map(|t| t.token.clone()) else {
                        return Err(SyntaxError::new(name_at, "expected a property or method name"));
                    };
                    self.next += 1;
                    if self.peek().is_some_and(|t| t.token == Token::LParen) {
                        let call = self.method(name_at, &name, safe)?;
                        depths.extend(call.1);
                        steps.push(Step::Method(call.0));
                    } else {
                        steps.push(Step::Property { name, safe });
                    }
                }
                Token::LBracket => {
                    self.next += 1;
                    let index = self.expression(0)?;
                    self.expect(&Token::RBracket, "']'")?;
                    depths.push(index.depth);
                    steps.push(Step::Index(index.expr));
                }
                _ => break,
            }
        }
        if steps.is_empty() {
            return Ok(base);
        }
        let at = self.position();
        Ok(Node { expr: Expr::Chain { base: Box::new(base.expr), steps }, depth: deeper(at, &depths)? })
    }

    fn method(&mut self, at: usize, name: &str, safe: bool) -> Result<(MethodCall, Vec<usize>), SyntaxError> {
        let Some((method, min, max)) = Method::lookup(name) else {
            let allowed: Vec<&str> = Method::allowed().collect();
            return Err(SyntaxError::new(
                at,
                format!("method '{name}' is not allowed; allowed: {}", allowed.join(", ")),
            ));
        };
        let args = self.arguments()?;
        if args.len() < min || args.len() > max {
            let expected = if min == max { format!("{min}") } else { format!("{min} or {max}") };
            return Err(SyntaxError::new(at, format!("'{name}' takes {expected} argument(s), not {}", args.len())));
        }
        let compiled = match (method, args.first().map(|a| &a.expr)) {
            (Method::Split, Some(Expr::Literal(Value::String(regex)))) => {
                Some(split_regex(regex).map_err(|e| SyntaxError::new(at, format!("invalid regex: {e}")))?)
            }
            _ => None,
        };
        let depths = args.iter().map(|a| a.depth).collect();
        let args = args.into_iter().map(|a| a.expr).collect();
        Ok((MethodCall { method, args, safe, compiled }, depths))
    }

    fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.next)
    }

    /// Byte offset of the next token, or the end of the text.
    fn position(&self) -> usize {
        self.peek().map_or(self.end, |t| t.at)
    }

    fn eat(&mut self, token: &Token) -> bool {
        let found = self.peek().is_some_and(|t| t.token == *token);
        if found {
            self.next += 1;
        }
        found
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), SyntaxError> {
        if self.eat(token) {
            return Ok(());
        }
        let found = self.peek().map_or_else(|| "the end of the expression".to_string(), |t| t.token.to_string());
        Err(SyntaxError::new(self.position(), format!("expected {what}, found {found}")))
    }
}

fn leaf(value: Value) -> Node {
    Node { expr: Expr::Literal(value), depth: 1 }
}

fn deeper(at: usize, children: &[usize]) -> Result<usize, SyntaxError> {
    let depth = children.iter().copied().max().unwrap_or(0) + 1;
    if depth > MAX_DEPTH {
        return Err(too_deep(at));
    }
    Ok(depth)
}

fn too_deep(at: usize) -> SyntaxError {
    SyntaxError::new(at, format!("expression nested more than {MAX_DEPTH} levels deep"))
}

/// The infix meaning of a token and its binding power; SpEL's word operators match any case.
fn infix(token: &Token) -> Option<(Infix, u8)> {
    use BinaryOp::*;
    let found = match token {
        Token::Question => (Infix::Ternary, 1),
        Token::Elvis => (Infix::Elvis, 1),
        Token::OrOr => (Infix::Binary(Or), 2),
        Token::AndAnd => (Infix::Binary(And), 3),
        Token::EqEq => (Infix::Binary(Eq), 4),
        Token::NotEq => (Infix::Binary(Ne), 4),
        Token::Lt => (Infix::Binary(Lt), 5),
        Token::Gt => (Infix::Binary(Gt), 5),
        Token::Le => (Infix::Binary(Le), 5),
        Token::Ge => (Infix::Binary(Ge), 5),
        Token::Plus => (Infix::Binary(Add), 6),
        Token::Minus => (Infix::Binary(Sub), 6),
        Token::Star => (Infix::Binary(Mul), 7),
        Token::Slash => (Infix::Binary(Div), 7),
        Token::Percent => (Infix::Binary(Rem), 7),
        Token::Ident(word) => match word.to_ascii_lowercase().as_str() {
            "or" => (Infix::Binary(Or), 2),
            "and" => (Infix::Binary(And), 3),
            "eq" => (Infix::Binary(Eq), 4),
            "ne" => (Infix::Binary(Ne), 4),
            "lt" => (Infix::Binary(Lt), 5),
            "gt" => (Infix::Binary(Gt), 5),
            "le" => (Infix::Binary(Le), 5),
            "ge" => (Infix::Binary(Ge), 5),
            "matches" => (Infix::Matches, 5),
            "div" => (Infix::Binary(Div), 7),
            "mod" => (Infix::Binary(Rem), 7),
            _ => return None,
        },
        _ => return None,
    };
    Some(found)
}

fn keyword_literal(word: &str) -> Option<Value> {
    match word.to_ascii_lowercase().as_str() {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        "null" => Some(Value::Null),
        _ => None,
    }
}

/// A bare word where a value should be: SpEL would read it from a root object, which Gravitee's
/// expressions do not have, and `T(...)`/`new` reach Java classes. Say what to write instead.
fn unknown_word(at: usize, word: &str, next: Option<&Spanned>) -> SyntaxError {
    let message = match word {
        "T" if next.is_some_and(|t| t.token == Token::LParen) => {
            "type references (T(...)) are not supported".to_string()
        }
        "new" => "constructors ('new') are not supported".to_string(),
        _ => format!(
            "unknown name '{word}': variables and functions are written with '#', e.g. #request or #jsonPath(...)"
        ),
    };
    SyntaxError::new(at, message)
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
