//! Source files and spans. User files and the embedded standard library live in one
//! [`SourceMap`], so a diagnostic about a user's call can point into `stdlib/` too.

use std::borrow::Cow;
use std::ops::Range;

/// Identifies one file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// A byte range in one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, range: Range<usize>) -> Span {
        Span { file, start: clamp_u32(range.start), end: clamp_u32(range.end) }
    }

    /// The smallest span covering both (which must be in the same file).
    pub fn to(self, other: Span) -> Span {
        Span { file: self.file, start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// An empty span at this span's end.
    pub fn end_point(self) -> Span {
        Span { file: self.file, start: self.end, end: self.end }
    }

    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One file: its name as shown in diagnostics, its text, and where its lines start.
#[derive(Debug)]
pub struct SourceFile {
    pub name: String,
    /// Borrowed for the embedded standard library (no copy), owned for the rest.
    pub text: Cow<'static, str>,
    /// True for the embedded standard library.
    pub is_stdlib: bool,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Byte offsets at which lines start (the first is 0).
    pub fn line_starts(&self) -> &[usize] {
        &self.line_starts
    }

    /// The 0-based line holding byte `offset`.
    pub fn line_index(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(line) => line,
            Err(next) => next.saturating_sub(1),
        }
    }

    /// The text of a span.
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }
}

/// All files of one compilation.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Adds a file and returns its id. Its text is [`normalized`] first.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Cow<'static, str>>, is_stdlib: bool) -> FileId {
        let text = normalized(text.into());
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let id = FileId(clamp_u32(self.files.len()));
        self.files.push(SourceFile { name: name.into(), text, is_stdlib, line_starts });
        id
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    /// The text of a span, or "" if it is out of range.
    pub fn slice(&self, span: Span) -> &str {
        self.get(span.file).map_or("", |f| f.slice(span))
    }

    /// Where a span starts: its file's name, 1-based line and 1-based column (in characters).
    pub fn position(&self, span: Span) -> Option<(&str, usize, usize)> {
        let file = self.get(span.file)?;
        let start = span.start as usize;
        let line = file.line_index(start);
        let line_start = file.line_starts().get(line).copied().unwrap_or(0);
        let column = file.text.get(line_start..start).map_or(1, |t| t.chars().count() + 1);
        Some((&file.name, line + 1, column))
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(clamp_u32(i)), f))
    }
}

/// The text as the compiler reads it: without the byte order mark Windows editors put at the
/// start of a UTF-8 file, and with the line ends of old Mac files (a `\r` alone) made `\n`, so
/// that lines are lines for the parser and for diagnostics alike (a file of `\r` line ends would
/// otherwise be shown as one line in every message). `\r\n` stays as it is. Borrowed text is
/// copied only when it changes.
pub fn normalized(text: Cow<'_, str>) -> Cow<'_, str> {
    let without_bom = text.strip_prefix('\u{feff}');
    let lone_cr = |t: &str| t.as_bytes().windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n') || t.ends_with('\r');
    if without_bom.is_none() && !lone_cr(&text) {
        return text;
    }
    let rest = without_bom.unwrap_or(&text);
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(if c == '\r' && chars.peek() != Some(&'\n') { '\n' } else { c });
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_finds_the_line_of_an_offset() {
        let mut map = SourceMap::new();
        let id = map.add("a.opt", "ab\ncd\n\nef", false);
        let file = map.get(id).expect("the file just added");
        assert_eq!(file.line_starts(), &[0, 3, 6, 7]);
        assert_eq!(file.line_index(0), 0);
        assert_eq!(map.position(Span::new(id, 4..5)), Some(("a.opt", 2, 2)));
        assert_eq!(map.position(Span::new(id, 7..7)), Some(("a.opt", 4, 1)));
        assert_eq!(file.line_index(2), 0);
        assert_eq!(file.line_index(3), 1);
        assert_eq!(file.line_index(6), 2);
        assert_eq!(file.line_index(9), 3);
    }

    #[test]
    fn a_byte_order_mark_goes_and_a_lone_carriage_return_ends_a_line() {
        assert_eq!(normalized("\u{feff}adam(1)\r\n".into()), "adam(1)\r\n");
        assert_eq!(normalized("a\rb\r\nc\r".into()), "a\nb\r\nc\n");
        assert!(matches!(normalized("a\r\nb\n".into()), Cow::Borrowed(_)));
        let mut map = SourceMap::new();
        let id = map.add("mac.opt", "# one\r# two\rx", false);
        assert_eq!(map.position(Span::new(id, 12..13)), Some(("mac.opt", 3, 1)));
    }
}
