//! Config errors with a source position, printed as `ORIGIN:LINE:COLUMN: message`.

use std::fmt;
use std::ops::Range;

/// One problem in a config document. `line` and `column` are 1-based; 0 means the problem is
/// about the document as a whole (e.g. an unreadable file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ConfigError {
    pub fn whole(message: impl Into<String>) -> Self {
        ConfigError {
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    /// Positions an error at the start of a byte span of `text`.
    pub fn at_span(text: &str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = message.trim_end().to_string();
        match span {
            None => ConfigError::whole(message),
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                ConfigError {
                    line,
                    column,
                    message,
                }
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Collects positioned problems of one document (schema checks and the compile step alike),
/// then sorts them by position.
pub struct Problems<'t> {
    text: &'t str,
    errors: Vec<ConfigError>,
}

impl<'t> Problems<'t> {
    pub fn new(text: &'t str) -> Self {
        Problems {
            text,
            errors: Vec::new(),
        }
    }

    pub fn at(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.errors
            .push(ConfigError::at_span(self.text, span, message));
    }

    /// The form every `validate(report)` takes.
    pub fn reporter(&mut self) -> impl FnMut(Option<Range<usize>>, String) + use<'_, 't> {
        |span, message| self.at(span, message)
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn finish(mut self, origin: &str) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.sort_by_key(|e| (e.line, e.column));
        Err(ConfigErrors {
            origin: origin.to_string(),
            errors: self.errors,
        })
    }
}

/// All the problems found in one document.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub origin: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn single(origin: String, error: ConfigError) -> Self {
        ConfigErrors {
            origin,
            errors: vec![error],
        }
    }

    /// `line:column: message` lines without the origin, as the admin API answers them.
    pub fn without_origin(&self) -> String {
        self.errors
            .iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{e}", self.origin)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
