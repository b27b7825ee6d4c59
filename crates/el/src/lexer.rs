//! Splits one expression's text into tokens with their byte offsets. Keywords (`and`, `eq`,
//! `matches`, `true`, …) stay identifiers here: whether `and` is an operator or a property name
//! depends on where it stands, which only the parser knows.

use crate::error::SyntaxError;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    Hash,
    Dot,
    /// `?.`
    SafeDot,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Question,
    Colon,
    /// `?:`
    Elvis,
    EqEq,
    NotEq,
    Lt,
    Gt,
    Le,
    Ge,
    AndAnd,
    OrOr,
    Bang,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
}

/// How a token is named in error messages.
impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Token::Ident(word) => return write!(f, "'{word}'"),
            Token::Int(i) => return write!(f, "number {i}"),
            Token::Float(x) => return write!(f, "number {x}"),
            Token::Str(_) => return f.write_str("a string"),
            Token::Hash => "#",
            Token::Dot => ".",
            Token::SafeDot => "?.",
            Token::Comma => ",",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::Question => "?",
            Token::Colon => ":",
            Token::Elvis => "?:",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Gt => ">",
            Token::Le => "<=",
            Token::Ge => ">=",
            Token::AndAnd => "&&",
            Token::OrOr => "||",
            Token::Bang => "!",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
        };
        write!(f, "'{text}'")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub token: Token,
    /// Byte offset of the token's first character in the expression text.
    pub at: usize,
}

pub(crate) fn tokenize(text: &str) -> Result<Vec<Spanned>, SyntaxError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        let next = bytes.get(at + 1).copied();
        let (token, len) = match byte {
            b' ' | b'\t' | b'\r' | b'\n' => {
                at += 1;
                continue;
            }
            b'\'' | b'"' => {
                let (value, len) = string(text, start)?;
                (Token::Str(value), len)
            }
            b'0'..=b'9' => number(text, start)?,
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => {
                let len = bytes[start..].iter().take_while(|b| is_identifier_byte(**b)).count();
                (Token::Ident(text[start..start + len].to_string()), len)
            }
            b'#' => (Token::Hash, 1),
            b'.' => (Token::Dot, 1),
            b',' => (Token::Comma, 1),
            b'(' => (Token::LParen, 1),
            b')' => (Token::RParen, 1),
            b'[' => (Token::LBracket, 1),
            b']' => (Token::RBracket, 1),
            b'{' => (Token::LBrace, 1),
            b'}' => (Token::RBrace, 1),
            b':' => (Token::Colon, 1),
            b'+' => (Token::Plus, 1),
            b'-' => (Token::Minus, 1),
            b'*' => (Token::Star, 1),
            b'/' => (Token::Slash, 1),
            b'%' => (Token::Percent, 1),
            b'?' => match next {
                Some(b'.') => (Token::SafeDot, 2),
                Some(b':') => (Token::Elvis, 2),
                _ => (Token::Question, 1),
            },
            b'=' if next == Some(b'=') => (Token::EqEq, 2),
            b'!' if next == Some(b'=') => (Token::NotEq, 2),
            b'!' => (Token::Bang, 1),
            b'<' if next == Some(b'=') => (Token::Le, 2),
            b'<' => (Token::Lt, 1),
            b'>' if next == Some(b'=') => (Token::Ge, 2),
            b'>' => (Token::Gt, 1),
            b'&' if next == Some(b'&') => (Token::AndAnd, 2),
            b'|' if next == Some(b'|') => (Token::OrOr, 2),
            b'=' => return Err(SyntaxError::new(start, "assignment ('=') is not supported; compare with '=='")),
            b'@' | b'&' => return Err(SyntaxError::new(start, "bean references are not supported")),
            _ => {
                let character = text[start..].chars().next().unwrap_or('?');
                return Err(SyntaxError::new(start, format!("unexpected character '{character}'")));
            }
        };
        tokens.push(Spanned { token, at: start });
        at = start + len;
    }
    Ok(tokens)
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$'
}

/// A quoted string starting at `start`; a doubled quote stands for one quote, as in SpEL.
/// Backslashes are ordinary characters (SpEL has no escapes), so `'^\d+$'` is a regex as written.
fn string(text: &str, start: usize) -> Result<(String, usize), SyntaxError> {
    let bytes = text.as_bytes();
    let quote = bytes[start];
    let mut value = String::new();
    let mut from = start + 1;
    loop {
        let Some(offset) = bytes[from..].iter().position(|b| *b == quote) else {
            return Err(SyntaxError::new(start, "unterminated string literal"));
        };
        let close = from + offset;
        // Quotes are ASCII, so `from` and `close` are character boundaries.
        value.push_str(&text[from..close]);
        if bytes.get(close + 1) == Some(&quote) {
            value.push(quote as char);
            from = close + 2;
        } else {
            return Ok((value, close + 1 - start));
        }
    }
}

/// An integer (`42`, `42L`) or decimal (`1.5`, `2e3`, `1.5d`) literal starting at `start`.
fn number(text: &str, start: usize) -> Result<(Token, usize), SyntaxError> {
    let bytes = text.as_bytes();
    let digits = |from: usize| bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut end = start + digits(start);
    let mut decimal = false;
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        decimal = true;
        end += 1 + digits(end + 1);
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exponent = digits(end + 1 + sign);
        if exponent > 0 {
            decimal = true;
            end += 1 + sign + exponent;
        }
    }
    let literal = &text[start..end];
    let (token, suffix) = match bytes.get(end) {
        Some(b'l' | b'L') if !decimal => (literal.parse().map(Token::Int).ok(), 1),
        Some(b'f' | b'F' | b'd' | b'D') => (literal.parse().map(Token::Float).ok(), 1),
        _ if decimal => (literal.parse().map(Token::Float).ok(), 0),
        _ => (literal.parse().map(Token::Int).ok(), 0),
    };
    match token {
        Some(token) => Ok((token, end + suffix - start)),
        None => Err(SyntaxError::new(start, format!("number '{literal}' is out of range"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        tokenize(text).map(|spanned| spanned.into_iter().map(|s| s.token).collect()).unwrap_or_default()
    }

    #[test]
    fn reads_a_header_lookup() {
        assert_eq!(
            tokens("#request.headers['X-Topic'][0]"),
            vec![
                Token::Hash,
                Token::Ident("request".into()),
                Token::Dot,
                Token::Ident("headers".into()),
                Token::LBracket,
                Token::Str("X-Topic".into()),
                Token::RBracket,
                Token::LBracket,
                Token::Int(0),
                Token::RBracket,
            ]
        );
    }

    #[test]
    fn reads_operators_greedily() {
        assert_eq!(
            tokens("a?.b ?: c ? d : e == f != g <= h >= i && j || !k"),
            vec![
                Token::Ident("a".into()),
                Token::SafeDot,
                Token::Ident("b".into()),
                Token::Elvis,
                Token::Ident("c".into()),
                Token::Question,
                Token::Ident("d".into()),
                Token::Colon,
                Token::Ident("e".into()),
                Token::EqEq,
                Token::Ident("f".into()),
                Token::NotEq,
                Token::Ident("g".into()),
                Token::Le,
                Token::Ident("h".into()),
                Token::Ge,
                Token::Ident("i".into()),
                Token::AndAnd,
                Token::Ident("j".into()),
                Token::OrOr,
                Token::Bang,
                Token::Ident("k".into()),
            ]
        );
    }

    #[test]
    fn reads_strings_with_doubled_quotes_and_literal_backslashes() {
        assert_eq!(tokens("'it''s'"), vec![Token::Str("it's".into())]);
        assert_eq!(tokens(r#""say ""hi""""#), vec![Token::Str("say \"hi\"".into())]);
        assert_eq!(tokens(r"'^\d+$'"), vec![Token::Str(r"^\d+$".into())]);
        assert_eq!(tokens("'{#x} ünïcode'"), vec![Token::Str("{#x} ünïcode".into())]);
    }

    #[test]
    fn reads_numbers() {
        assert_eq!(
            tokens("42 42L 1.5 2e3 1.5E-2 3d"),
            vec![
                Token::Int(42),
                Token::Int(42),
                Token::Float(1.5),
                Token::Float(2000.0),
                Token::Float(0.015),
                Token::Float(3.0),
            ]
        );
        // `1.toString()` is a method call on 1, not a decimal.
        assert_eq!(tokens("1.x"), vec![Token::Int(1), Token::Dot, Token::Ident("x".into())]);
    }

    #[test]
    fn reports_positions() {
        assert_eq!(tokenize("'abc").unwrap_err(), SyntaxError::new(0, "unterminated string literal"));
        assert_eq!(tokenize("a = b").unwrap_err().at, 2);
        assert_eq!(tokenize("a ~ b").unwrap_err().at, 2);
        assert_eq!(tokenize("@bean").unwrap_err().at, 0);
        assert_eq!(tokenize("  99999999999999999999").unwrap_err().at, 2);
    }
}
