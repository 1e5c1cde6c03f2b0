//! Leaf groups: the layout cut by every mask and partition of the pipeline, so that each group's
//! leaves go through exactly the same transforms and share one per-element program.

use std::fmt;

use super::layout::Layout;
use crate::check::program::{LeafProp, Mask, Program, Tx};

/// A set of group indices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupSet(Vec<u64>);

impl GroupSet {
    pub fn empty() -> GroupSet {
        GroupSet(Vec::new())
    }

    /// Groups `0..n`.
    pub fn all(n: usize) -> GroupSet {
        (0..n).collect()
    }

    pub fn contains(&self, g: usize) -> bool {
        self.0.get(g / 64).is_some_and(|w| w & (1 << (g % 64)) != 0)
    }

    pub fn insert(&mut self, g: usize) {
        if self.0.len() <= g / 64 {
            self.0.resize(g / 64 + 1, 0);
        }
        self.0[g / 64] |= 1 << (g % 64);
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, w)| (0..64).filter(move |b| w & (1 << b) != 0).map(move |b| i * 64 + b))
    }

    pub fn intersect(&self, other: &GroupSet) -> GroupSet {
        self.iter().filter(|g| other.contains(*g)).collect()
    }

    pub fn minus(&self, other: &GroupSet) -> GroupSet {
        self.iter().filter(|g| !other.contains(*g)).collect()
    }
}

impl FromIterator<usize> for GroupSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> GroupSet {
        let mut s = GroupSet::empty();
        for g in iter {
            s.insert(g);
        }
        s.0.truncate(s.0.iter().rposition(|w| *w != 0).map_or(0, |i| i + 1));
        s
    }
}

impl fmt::Display for GroupSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.iter().map(|g| g.to_string()).collect();
        write!(f, "{{{}}}", parts.join(","))
    }
}

/// The leaf groups of a layout under a pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Groups {
    /// The leaves of each group (indices into the layout), ascending; groups are ordered by
    /// their first leaf.
    pub leaves: Vec<Vec<usize>>,
    /// The group of each leaf.
    pub of_leaf: Vec<usize>,
    /// A label for each group, for users: the partition arms that take it (`*.bias`, `_`) and
    /// the masks it is in or out of (`*.weight`, `_ & not *.weight`), else its leaves.
    pub labels: Vec<String>,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    pub fn all(&self) -> GroupSet {
        GroupSet::all(self.len())
    }

    /// The groups of `within` whose leaves `mask` selects.
    pub fn masked(&self, layout: &Layout, mask: &Mask, within: &GroupSet) -> GroupSet {
        let selected: GroupSet = layout.selected(mask).into_iter().map(|l| self.of_leaf[l]).collect();
        selected.intersect(within)
    }
}

/// Cuts `layout` by every mask and partition arm of `tx` (outside `flatten`): two leaves share a
/// group exactly when every mask of the pipeline treats them alike, and every transform whose body reads a leaf's
/// `ndim`, `size` or `shape` sees the same for both (so each group's program knows it).
pub fn split(program: &Program, layout: &Layout, tx: &Tx) -> Groups {
    let mut decisions: Vec<Vec<u32>> = vec![Vec::new(); layout.leaves.len()];
    let mut tags: Vec<Vec<String>> = vec![Vec::new(); layout.leaves.len()];
    // Under `flatten` every leaf is one vector, which masks take or leave whole: nothing there
    // cuts the leaves apart.
    visit_where(tx, &|t| !matches!(t, Tx::Flatten(_)), &mut |t| match t {
        Tx::Masked { mask, .. } => {
            for (i, leaf) in layout.leaves.iter().enumerate() {
                let inside = mask.selects(&leaf.name, &leaf.shape);
                decisions[i].push(u32::from(inside));
                tags[i].push(if inside { mask.label() } else { Mask::Not(Box::new(mask.clone())).label() });
            }
        }
        Tx::Instance { def, args, .. } => {
            for prop in &program.def(*def).reads_leaf {
                if *prop == LeafProp::Selected {
                    let mut masks = Vec::new();
                    args.iter().for_each(|a| masks_in(a, &mut masks));
                    for (i, leaf) in layout.leaves.iter().enumerate() {
                        decisions[i].extend(masks.iter().map(|m| u32::from(m.selects(&leaf.name, &leaf.shape))));
                    }
                    continue;
                }
                for (i, leaf) in layout.leaves.iter().enumerate() {
                    let mut numbers = vec![prop.of(&leaf.shape) as u64];
                    if *prop == LeafProp::Shape {
                        numbers.extend(leaf.shape.iter().map(|&n| n as u64));
                    }
                    decisions[i].extend(numbers.into_iter().flat_map(|n| [n as u32, (n >> 32) as u32]));
                }
            }
        }
        Tx::Partition(arms) => {
            for (i, leaf) in layout.leaves.iter().enumerate() {
                let arm = arms.iter().position(|a| a.takes(&leaf.name, &leaf.shape));
                decisions[i].push(arm.map_or(u32::MAX, |a| a as u32));
                if let Some(arm) = arm {
                    tags[i].push(arms[arm].label());
                }
            }
        }
        _ => {}
    });
    let mut signatures: Vec<&Vec<u32>> = Vec::new();
    let mut leaves: Vec<Vec<usize>> = Vec::new();
    let mut of_leaf = Vec::with_capacity(layout.leaves.len());
    for (i, d) in decisions.iter().enumerate() {
        let g = match signatures.iter().position(|s| *s == d) {
            Some(g) => g,
            None => {
                signatures.push(d);
                leaves.push(Vec::new());
                leaves.len() - 1
            }
        };
        leaves[g].push(i);
        of_leaf.push(g);
    }
    let labels = leaves
        .iter()
        .map(|group| match group.first().map(|&l| &tags[l]) {
            Some(tags) if !tags.is_empty() => tags.join(" & "),
            _ => group.iter().map(|&l| layout.leaves[l].name.as_str()).collect::<Vec<_>>().join("|"),
        })
        .collect();
    Groups { leaves, of_leaf, labels }
}

/// The masks a hyperparameter holds, in lists and tuples too (what `selects` may ask of a
/// leaf; every string may be a glob).
fn masks_in(v: &crate::check::Value, out: &mut Vec<Mask>) {
    use crate::check::Value;
    match v {
        Value::Mask(_) | Value::Str(_) => out.extend(Mask::from_value(v)),
        Value::List(items) | Value::Tuple(items) => items.iter().for_each(|v| masks_in(v, out)),
        _ => {}
    }
}

/// Calls `f` on every node of the transform tree, including transforms passed as arguments.
pub fn visit(tx: &Tx, f: &mut dyn FnMut(&Tx)) {
    visit_where(tx, &|_| true, f);
}

/// As [`visit`], going into a node's children only where `descend` says so.
pub fn visit_where(tx: &Tx, descend: &dyn Fn(&Tx) -> bool, f: &mut dyn FnMut(&Tx)) {
    f(tx);
    if !descend(tx) {
        return;
    }
    match tx {
        Tx::Chain(parts) => parts.iter().for_each(|t| visit_where(t, descend, f)),
        Tx::NamedChain(parts) => parts.iter().for_each(|(_, t)| visit_where(t, descend, f)),
        Tx::Instance { args, .. } => {
            for a in args {
                if let crate::check::Value::Transform(t) = a {
                    visit_where(t, descend, f);
                }
            }
        }
        Tx::Masked { inner, .. } | Tx::Flatten(inner) | Tx::Inject { inner, .. } | Tx::Alias { inner, .. } => {
            visit_where(inner, descend, f)
        }
        Tx::Partition(arms) => arms.iter().for_each(|a| visit_where(&a.tx, descend, f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_sets_behave_as_sets() {
        let a: GroupSet = [0, 2, 70].into_iter().collect();
        let b: GroupSet = [2, 3].into_iter().collect();
        assert!(a.contains(70) && !a.contains(1));
        assert_eq!(a.intersect(&b).iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(a.minus(&b).iter().collect::<Vec<_>>(), vec![0, 70]);
        assert_eq!(GroupSet::all(3), [0, 1, 2].into_iter().collect());
        let empty: GroupSet = std::iter::empty().collect();
        assert!(empty.is_empty());
        assert_eq!(empty, GroupSet::empty());
    }
}
