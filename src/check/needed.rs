//! Checking a user file against only the part of the standard library it can reach. Parsing
//! and checking all of the library's definitions takes most of a compile (pest reads it at a
//! few MB/s), while a pipeline uses a handful of them: the definitions named in the user's
//! file, the ones named in those, and so on.
//!
//! Reach is found lexically ([`scan`]): every word of the code counts as a possible reference,
//! so the set is never too small (a local variable that happens to share a definition's name
//! only brings one more definition in). Whatever the smaller check reports, the whole library
//! is checked instead, so diagnostics are exactly those of [`check_as`].

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{Checked, Expect, check_as, check_files};
use crate::source::{FileId, SourceMap};
use crate::syntax::{self, ast, scan};

/// [`check_as`] of `user`, with only the standard library definitions it reaches checked when
/// that gives no diagnostic at all (else, or with a standard library other than the embedded
/// one, every definition is). The pipeline is the same either way.
pub fn check_needed(sources: &SourceMap, user: FileId, expect: Expect) -> Checked {
    if let Some(files) = needed_files(sources, user, expect) {
        let checked = check_files(sources, &files, Vec::new(), expect);
        if checked.diagnostics.is_empty() {
            return checked;
        }
    }
    check_as(sources, Some(user), expect)
}

/// The syntax trees of the standard library's reachable items and of `user`, or `None` if the
/// smaller check cannot stand in for the whole one.
fn needed_files(sources: &SourceMap, user: FileId, expect: Expect) -> Option<Vec<(FileId, ast::File)>> {
    let stdlib = super::stdlib_texts(sources);
    // A standard library read from a directory is being worked on: check all of it. The
    // embedded one is registered without a copy, so it is recognised by where its text is.
    let embedded = crate::stdlib::FILES;
    let is_embedded = |text: &str, own: &str| std::ptr::eq(text, own);
    if stdlib.len() != embedded.len() || stdlib.iter().zip(embedded).any(|((_, text), (_, own))| !is_embedded(text, own)) {
        return None;
    }
    let user_text = &sources.get(user)?.text;
    let (Some(user_ast), diagnostics) = syntax::parse(user, user_text) else { return None };
    if !diagnostics.is_empty() {
        return None;
    }

    let items = crate::stdlib::ITEMS;
    let by_name = items_by_name();
    let mut needed = vec![false; items.len()];
    let mut work: Vec<&str> = scan::words(user_text).collect();
    if expect == Expect::Schedule {
        work.push("scale_by_schedule");
    }
    while let Some(word) = work.pop() {
        for &i in by_name.get(word).into_iter().flatten() {
            if !needed[i] {
                needed[i] = true;
                let (_, text) = embedded[items[i].file];
                work.extend(scan::words(&text[items[i].range.clone()]));
            }
        }
    }

    let reached: Vec<&crate::stdlib::Item> = items.iter().zip(&needed).filter(|(_, n)| **n).map(|(item, _)| item).collect();
    let parts: Vec<_> = reached.iter().map(|item| (stdlib[item.file].0, stdlib[item.file].1, item.range.clone())).collect();
    // `stdlib` is in the order of the embedded files, which `Item::file` counts in.
    let mut files: Vec<(FileId, ast::File)> = stdlib.iter().map(|&(id, _)| (id, ast::File { items: Vec::new() })).collect();
    for (item, parsed) in reached.iter().zip(syntax::parse_items(&parts)) {
        files[item.file].1.items.extend(parsed?.items);
    }
    files.push((user, user_ast));
    Some(files)
}

/// The indices in [`crate::stdlib::ITEMS`] of the items of each name (a name defined twice has
/// two).
fn items_by_name() -> &'static HashMap<&'static str, Vec<usize>> {
    static BY_NAME: OnceLock<HashMap<&'static str, Vec<usize>>> = OnceLock::new();
    BY_NAME.get_or_init(|| {
        let mut by_name: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, item) in crate::stdlib::ITEMS.iter().enumerate() {
            by_name.entry(item.name).or_default().push(i);
        }
        by_name
    })
}
