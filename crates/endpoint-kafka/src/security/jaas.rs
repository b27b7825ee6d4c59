//! JAAS login lines (`sasl.jaas.config`) as Gravitee users write them for the Java client, e.g.
//! `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`.
//! librdkafka has no JAAS, so we read the line once and [`LoginModule`] turns it into the facts
//! librdkafka needs. The line holds passwords: errors give a character position and what was
//! expected, never a piece of the text, and `Debug` shows option names only.
//!
//! Grammar, as Kafka's `JaasConfig` reads it, a little more lenient: `<class> <flag> (<name> = <value>)* [;]`
//! with the flag one of `required|requisite|sufficient|optional` (any case), values unquoted
//! tokens or `"…"`/`'…'` strings with backslash escapes, whitespace and newlines anywhere, and one
//! login module per line (Kafka refuses more).

mod login;
#[cfg(test)]
mod tests;

pub(crate) use login::{LoginModule, MskIamLogin, OAuthBearerLogin};

/// One parsed JAAS login line.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct JaasConfig {
    /// The Java class of the login module, e.g. `org.apache.kafka.common.security.plain.PlainLoginModule`.
    pub login_module: String,
    /// `required`, `requisite`, `sufficient` or `optional`, lower-cased.
    pub control_flag: String,
    /// Name and value of every option, in the order written (values may be secrets).
    options: Vec<(String, String)>,
}

/// Why a JAAS line was refused. No variant carries text from the line except a login-module
/// class name that parsed as one, which is not a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JaasError {
    #[error("the JAAS configuration is empty: expected `<LoginModule class> required name=\"value\" …;`")]
    Empty,
    #[error("JAAS configuration, character {position}: expected {expected}")]
    Expected { position: usize, expected: &'static str },
    #[error("JAAS configuration, character {position}: the quoted value that starts here is not terminated")]
    UnterminatedQuote { position: usize },
    #[error("JAAS login module `{module}` is not supported; supported: {supported}", supported = login::SUPPORTED)]
    UnsupportedModule { module: String },
    #[error("the JAAS login module is not a fully-qualified Java class name; supported: {supported}", supported = login::SUPPORTED)]
    NotAClassName,
    #[error("JAAS login module {module} requires the option {option}")]
    MissingOption { module: &'static str, option: &'static str },
    #[error("JAAS option `{option}` must be {expected}")]
    InvalidOption { option: &'static str, expected: &'static str },
}

const CONTROL_FLAGS: [&str; 4] = ["required", "requisite", "sufficient", "optional"];

impl JaasConfig {
    /// Parses one login line.
    pub fn parse(text: &str) -> Result<JaasConfig, JaasError> {
        let mut scanner = Scanner { chars: text.chars().collect(), pos: 0 };
        scanner.skip_whitespace();
        if scanner.at_end() {
            return Err(JaasError::Empty);
        }
        let login_module = scanner.name().ok_or_else(|| scanner.expected("a login module class name"))?;
        scanner.skip_whitespace();
        let flag_error = scanner.expected("a control flag (required, requisite, sufficient or optional)");
        let control_flag = scanner.name().map(|flag| flag.to_ascii_lowercase()).ok_or(flag_error.clone())?;
        if !CONTROL_FLAGS.contains(&control_flag.as_str()) {
            return Err(flag_error);
        }
        let mut options = Vec::new();
        loop {
            scanner.skip_whitespace();
            match scanner.peek() {
                None => break,
                Some(';') => {
                    scanner.pos += 1;
                    scanner.skip_whitespace();
                    if !scanner.at_end() {
                        return Err(scanner.expected("the end after `;` (one login module per line)"));
                    }
                    break;
                }
                Some(_) => options.push(scanner.option()?),
            }
        }
        Ok(JaasConfig { login_module, control_flag, options })
    }

    /// The value of an option; the last one wins when a name repeats, as in Kafka.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

impl std::fmt::Debug for JaasConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("JaasConfig")
            .field("login_module", &self.login_module)
            .field("control_flag", &self.control_flag)
            .field("option_names", &names)
            .finish()
    }
}

/// A cursor over the characters of the line; positions in errors are 1-based characters.
struct Scanner {
    chars: Vec<char>,
    pos: usize,
}

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn expected(&self, expected: &'static str) -> JaasError {
        JaasError::Expected { position: self.pos + 1, expected }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// A class, flag or option name: letters, digits and `_ . $ -`; `None` when there is none here.
    fn name(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '-')) {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.chars[start..self.pos].iter().collect())
    }

    /// `name = value`.
    fn option(&mut self) -> Result<(String, String), JaasError> {
        let name = self.name().ok_or_else(|| self.expected("an option name or `;`"))?;
        self.skip_whitespace();
        if self.peek() != Some('=') {
            return Err(self.expected("`=` after the option name"));
        }
        self.pos += 1;
        self.skip_whitespace();
        let value = self.value()?;
        Ok((name, value))
    }

    fn value(&mut self) -> Result<String, JaasError> {
        match self.peek() {
            Some(quote @ ('"' | '\'')) => self.quoted(quote),
            Some(c) if is_unquoted(c) => {
                let start = self.pos;
                while self.peek().is_some_and(is_unquoted) {
                    self.pos += 1;
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
            _ => Err(self.expected("an option value")),
        }
    }

    /// A string in `quote`s; a backslash escapes the next character (`\n`, `\t`, `\r` as in Java).
    fn quoted(&mut self, quote: char) -> Result<String, JaasError> {
        let unterminated = JaasError::UnterminatedQuote { position: self.pos + 1 };
        self.pos += 1;
        let mut value = String::new();
        loop {
            let c = self.peek().ok_or(unterminated.clone())?;
            self.pos += 1;
            if c == quote {
                return Ok(value);
            }
            if c != '\\' {
                value.push(c);
                continue;
            }
            let escaped = self.peek().ok_or(unterminated.clone())?;
            self.pos += 1;
            value.push(match escaped {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                other => other,
            });
        }
    }
}

/// Characters of an unquoted value: `=` is allowed so that base64 padding needs no quotes.
fn is_unquoted(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, ';' | '"' | '\'')
}
