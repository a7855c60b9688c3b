//! Compiler-like diagnostics: `file:line:column: error: message`, the source line, a caret
//! under the problem and a help line saying what was expected.

use std::fmt;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Accepted, but probably not what was meant (or a tolerated misspelling).
    Warning,
    /// The configuration is invalid.
    Error,
}

/// One message about one place in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file name as given to the parser.
    pub file: String,
    /// 1-based line; 0 when the problem has no position (e.g. the file cannot be read).
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    /// Width of the underlined text in characters (at least 1 when there is a position).
    pub width: usize,
    /// What is wrong.
    pub message: String,
    /// The source line the diagnostic points into (empty without a position).
    pub source_line: String,
    /// What was expected or a suggestion ("did you mean …").
    pub help: Option<String>,
}

impl Diagnostic {
    /// The first line alone: `file:line:column: error: message`.
    pub fn headline(&self) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            format!("{}: {sev}: {}", self.file, self.message)
        } else {
            format!(
                "{}:{}:{}: {sev}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }

    /// Is this an error (not a warning)?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// The headline, then (with a position) the source line and a caret line, then the help.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        if self.line > 0 {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            writeln!(f)?;
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {}", self.source_line)?;
            // Reproduce tabs so the caret lines up whatever the tab width.
            let lead: String = self
                .source_line
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "{pad} | {lead}{}", "^".repeat(self.width.max(1)))?;
        }
        if let Some(help) = &self.help {
            write!(
                f,
                "\n{} = help: {help}",
                " ".repeat(self.line.to_string().len())
            )?;
        }
        Ok(())
    }
}

/// Every diagnostic of one run, in source order; returned when there is at least one error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// Errors and warnings, sorted by position.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| !d.is_error())
    }

    /// How many errors there are.
    pub fn error_count(&self) -> usize {
        self.errors().count()
    }
}

impl fmt::Display for Diagnostics {
    /// Every diagnostic, separated by blank lines, then a count of errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.items {
            writeln!(f, "{d}\n")?;
        }
        let n = self.error_count();
        write!(f, "{n} error{}", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Diagnostics {}
