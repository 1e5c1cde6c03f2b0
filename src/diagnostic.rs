//! Diagnostics as data, and their rendering: the only module that knows codespan-reporting.
//!
//! Every phase reports facts as [`Diagnostic`]s with a stable kebab-case code; rendering
//! (rich, rustc-like, with or without colour) happens here and nowhere else.

use std::ops::Range;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term;

use crate::source::{FileId, SourceMap, Span};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    /// An internal error: a bug in optc, never the user's fault.
    Bug,
}

/// A span with a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One problem found in the user's input: what, where, why and how to fix it.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable kebab-case code, e.g. `unknown-name`; `optc check --explain CODE` explains it.
    pub code: &'static str,
    /// Lowercase, no final period, makes sense on its own.
    pub message: String,
    /// What is wrong here.
    pub primary: Option<Label>,
    /// Why: related places, possibly in the standard library.
    pub secondary: Vec<Label>,
    /// Facts, e.g. `expected float in [0, 1), found 1.5`.
    pub notes: Vec<String>,
    /// Fixes, e.g. `did you mean `learning_rate`?`.
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            notes: Vec::new(),
            help: Vec::new(),
        }
    }

    /// Something probably wrong that does not stop the program from running.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    pub fn bug(message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Bug, ..Diagnostic::error("internal-error", message) }
    }

    pub fn with_primary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.primary = Some(Label { span, message: message.into() });
        self
    }

    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { span, message: message.into() });
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        matches!(self.severity, Severity::Error | Severity::Bug)
    }

    /// Position used to sort diagnostics for output.
    pub fn sort_key(&self) -> (u32, u32, u32) {
        self.primary.as_ref().map_or((u32::MAX, 0, 0), |l| (l.span.file.0, l.span.start, l.span.end))
    }
}

/// Sorts diagnostics by position and drops exact duplicates.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by_key(Diagnostic::sort_key);
    diagnostics.dedup();
}

/// Renders diagnostics in codespan's rich style without colour (used by snapshots).
pub fn render(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let config = term::Config::default();
    let files = SourceFiles(sources);
    let mut out = String::new();
    for diagnostic in diagnostics {
        if let Err(err) = term::emit_to_string(&mut out, &config, &files, &to_codespan(diagnostic)) {
            out.push_str(&format!("error: cannot render a diagnostic: {err}\n"));
        }
    }
    out
}

/// Writes diagnostics to standard error, in colour when it is a terminal.
pub fn emit_to_stderr(diagnostics: &[Diagnostic], sources: &SourceMap) {
    use term::termcolor::{ColorChoice, StandardStream};
    let choice = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ColorChoice::Auto
    } else {
        ColorChoice::Never
    };
    let mut stream = StandardStream::stderr(choice);
    let config = term::Config::default();
    let files = SourceFiles(sources);
    for diagnostic in diagnostics {
        if term::emit_to_write_style(&mut stream, &config, &files, &to_codespan(diagnostic)).is_err() {
            eprintln!("error: {}", diagnostic.message);
        }
    }
}

fn to_codespan(diagnostic: &Diagnostic) -> cs::Diagnostic<FileId> {
    let severity = match diagnostic.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
        Severity::Bug => cs::Severity::Bug,
    };
    let mut labels = Vec::new();
    if let Some(l) = &diagnostic.primary {
        labels.push(cs::Label::primary(l.span.file, l.span.range()).with_message(&l.message));
    }
    for l in &diagnostic.secondary {
        labels.push(cs::Label::secondary(l.span.file, l.span.range()).with_message(&l.message));
    }
    let notes = diagnostic
        .notes
        .iter()
        .map(|n| format!("note: {n}"))
        .chain(diagnostic.help.iter().map(|h| format!("help: {h}")))
        .collect();
    cs::Diagnostic::new(severity)
        .with_code(diagnostic.code)
        .with_message(&diagnostic.message)
        .with_labels(labels)
        .with_notes(notes)
}

/// The [`SourceMap`] seen through codespan's `Files` trait.
struct SourceFiles<'a>(&'a SourceMap);

impl<'a> Files<'a> for SourceFiles<'a> {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        self.0.get(id).map(|f| f.name.as_str()).ok_or(FilesError::FileMissing)
    }

    fn source(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        self.0.get(id).map(|f| &*f.text).ok_or(FilesError::FileMissing)
    }

    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, FilesError> {
        let file = self.0.get(id).ok_or(FilesError::FileMissing)?;
        Ok(file.line_index(byte_index))
    }

    fn line_range(&'a self, id: FileId, line_index: usize) -> Result<Range<usize>, FilesError> {
        let file = self.0.get(id).ok_or(FilesError::FileMissing)?;
        let starts = file.line_starts();
        let start = *starts.get(line_index).ok_or(FilesError::LineTooLarge {
            given: line_index,
            max: starts.len().saturating_sub(1),
        })?;
        let end = starts.get(line_index + 1).copied().unwrap_or(file.text.len());
        Ok(start..end)
    }
}
