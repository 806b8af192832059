//! The error `load`/`parse` return: every problem found in one file, each with
//! its line and key path, printed one per line by `watermeter check-config`.

use std::fmt;
use std::path::{Path, PathBuf};

/// Everything wrong with one config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// Sorted by line; problems about the whole file (no line) come last.
    pub problems: Vec<Problem>,
}

/// One problem: where (line, key path such as `meter[1].gpio.pin`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number, `None` for problems about the file as a whole.
    pub line: Option<usize>,
    /// Key path such as `meter[1].gpio.pin` or `alert[0].window`; empty when
    /// the problem is not about one key (unreadable file, TOML syntax).
    pub key: String,
    /// A sentence that says what is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    /// An error with one problem about the whole file (e.g. it cannot be read).
    pub(super) fn single(path: &Path, message: String) -> Self {
        ConfigError {
            path: path.to_path_buf(),
            problems: vec![Problem {
                line: None,
                key: String::new(),
                message,
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.path.display())?;
            if let Some(line) = problem.line {
                write!(f, ":{line}")?;
            }
            write!(f, ": ")?;
            if !problem.key.is_empty() {
                write!(f, "{}: ", problem.key)?;
            }
            write!(f, "{}", problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
