//! The globs of a pipeline against a layout's leaf names: leaves no partition arm takes (an
//! error, as in Optax), globs that match no leaf (a warning, with the name most likely meant),
//! and lists of leaves as messages show them.

use super::Inst;
use crate::check::program::{Mask, Tx};
use crate::diagnostic::Diagnostic;
use crate::ir::groups;
use crate::source::Span;

impl Inst<'_> {
    /// Reports leaves that no partition arm takes (an error, as in Optax), and globs of masks
    /// and partition arms that match no leaf at all (a warning: a typo in a leaf name, or a
    /// recipe written for a model with more kinds of leaves).
    pub(super) fn check_globs(&mut self, tx: &Tx) {
        let mut problems = Vec::new();
        let leaves: Vec<&str> = self.layout.leaves.iter().map(|l| l.name.as_str()).collect();
        let matches_nothing = |glob: &str, span: Span| {
            if leaves.iter().any(|l| crate::glob::matches(glob, l)) {
                return None;
            }
            let mut d = Diagnostic::warning("unmatched-glob", format!("`{glob}` matches no leaf"))
                .with_primary(span, "this glob selects nothing")
                .with_note(format!("the leaves are {}", quote_list(&leaves)));
            d = match closest_glob(glob, &leaves) {
                Some(fix) => d.with_help(format!("did you mean `{fix}`?")),
                None => d.with_help("globs match whole dotted names: `*` any run of characters, `?` one character"),
            };
            Some(d)
        };
        // Under `flatten` the leaves are one vector, which masks and arms take whole: they are
        // judged where they are applied (`masked_domain`, `Tx::Partition`), not leaf by leaf.
        let mut check = |t: &Tx| {
            if let Tx::Masked { mask, span, .. } = t {
                for g in mask.globs() {
                    problems.extend(matches_nothing(g, *span));
                }
            }
            let Tx::Partition(arms) = t else { return };
            // Leaves go to the first arm that takes them; those no arm takes are unmatched.
            let mut taken = vec![false; leaves.len()];
            for arm in arms {
                let before = problems.len();
                for g in arm.mask.iter().flat_map(Mask::globs) {
                    problems.extend(matches_nothing(g, arm.span));
                }
                let (mut selects, mut takes) = (false, false);
                for (leaf, done) in self.layout.leaves.iter().zip(&mut taken) {
                    if arm.takes(&leaf.name, &leaf.shape) {
                        selects = true;
                        takes |= !*done;
                        *done = true;
                    }
                }
                // A glob that matches nothing has said why already. (`_` takes the rest, if
                // any: Muon's takes nothing on a model of matrices, as it should.)
                if let Some(mask) = &arm.mask
                    && !takes
                    && problems.len() == before
                {
                    problems.push(empty_arm(&mask.label(), selects, arm.span, &self.layout.leaves));
                }
            }
            let unmatched: Vec<&str> = leaves.iter().zip(&taken).filter(|(_, t)| !**t).map(|(name, _)| *name).collect();
            if !unmatched.is_empty() {
                let span = arms.last().map(|a| a.span);
                let mut d = Diagnostic::error(
                    "unmatched-leaf",
                    format!("no partition arm takes {}", quote_list(&unmatched)),
                )
                .with_help("add an arm for them, or end the partition with `_ => transform`");
                if let Some(span) = span {
                    d = d.with_primary(span, "the last arm");
                }
                problems.push(d);
            }
        };
        groups::visit_where(tx, &|t| !matches!(t, Tx::Flatten(_)), &mut check);
        for d in problems {
            self.errors.push(d);
        }
    }
}

/// The warning for a partition arm that takes no leaf of the layout: its mask `label` selects
/// none (`selects` false), or earlier arms took every leaf it selects.
fn empty_arm(label: &str, selects: bool, span: Span, leaves: &[crate::ir::layout::Leaf]) -> Diagnostic {
    let d = Diagnostic::warning("empty-arm", format!("the arm `{label}` takes no leaf: its transform never runs"));
    if selects {
        return d.with_primary(span, "the arms before this one take every leaf it selects");
    }
    let shaped: Vec<String> = leaves.iter().map(|l| format!("`{}` {:?}", l.name, l.shape)).collect();
    d.with_primary(span, "this arm selects no leaf").with_note(format!("the leaves are {}", first_few(&shaped, 5)))
}

/// The leaf name, or the glob over the last part of leaf names (`*.weight`), closest to a glob
/// that matches nothing: most likely what was meant.
fn closest_glob(glob: &str, leaves: &[&str]) -> Option<String> {
    let mut candidates: Vec<String> = leaves.iter().map(|l| l.to_string()).collect();
    for leaf in leaves {
        if let Some((_, last)) = leaf.rsplit_once('.') {
            candidates.push(format!("*.{last}"));
        }
    }
    candidates.sort();
    candidates.dedup();
    crate::check::suggest::closest(glob, candidates.iter().map(String::as_str))
}

/// Leaf names in backquotes, the first five of them, then how many more.
pub(super) fn quote_list(names: &[&str]) -> String {
    first_few(&names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>(), 5)
}

/// `items` joined by commas: the first `limit` of them, then how many more.
pub(super) fn first_few(items: &[String], limit: usize) -> String {
    let shown = items[..items.len().min(limit)].join(", ");
    if items.len() > limit { format!("{shown} and {} more", items.len() - limit) } else { shown }
}
