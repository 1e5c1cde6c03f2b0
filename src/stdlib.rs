//! The standard library: `stdlib/*.opt`, embedded in the binary and registered in the
//! [`SourceMap`] like user files, so diagnostics can point into it.

use std::ops::Range;
use std::path::Path;

use crate::source::SourceMap;

/// `(name, text)` of every embedded standard library file, sorted by name.
pub static FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/stdlib_files.rs"));

/// Every top-level item of [`FILES`], in order, found at build time by the parser's own
/// lexical scan (`build.rs`).
pub static ITEMS: &[Item] = include!(concat!(env!("OUT_DIR"), "/stdlib_items.rs"));

/// A top-level item of an embedded standard library file.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Which of [`FILES`].
    pub file: usize,
    pub name: &'static str,
    /// Its text in the file, from its keyword to the next item's.
    pub range: Range<usize>,
}

/// Adds the embedded standard library to `sources`.
pub fn load(sources: &mut SourceMap) {
    for (name, text) in FILES {
        sources.add(*name, *text, true);
    }
}

/// Adds the `*.opt` files of `dir` as the standard library instead of the embedded one (for
/// working on the standard library without rebuilding).
pub fn load_dir(sources: &mut SourceMap, dir: &Path) -> std::io::Result<()> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "opt"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let name = format!("stdlib/{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        sources.add(name, text, true);
    }
    Ok(())
}
