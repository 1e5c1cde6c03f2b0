//! Parameter layouts: the named leaves (dotted names, shapes, float32) a pipeline is
//! instantiated for, in the order Optax uses (names sorted byte-wise).

use std::fmt;

use crate::check::program::Mask;

/// One parameter tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Dotted name, e.g. `layers.0.weight`.
    pub name: String,
    /// Row-major shape; `[]` for a scalar.
    pub shape: Vec<usize>,
}

impl Leaf {
    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The leaves of a model, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub leaves: Vec<Leaf>,
}

impl Layout {
    /// A layout from leaves in any order: at least one, with distinct, non-empty names.
    pub fn new(mut leaves: Vec<Leaf>) -> Result<Layout, String> {
        if leaves.is_empty() {
            return Err("there are no leaves: nothing to optimize".into());
        }
        leaves.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        if let Some(leaf) = leaves.iter().find(|l| l.name.is_empty()) {
            return Err(format!("a leaf of shape {:?} has an empty name", leaf.shape));
        }
        if let Some(w) = leaves.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(format!("the leaf `{}` appears twice", w[0].name));
        }
        let total: Option<usize> = leaves.iter().try_fold(0usize, |acc, l| {
            l.shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d)).and_then(|n| acc.checked_add(n))
        });
        if total.is_none_or(|t| t > u32::MAX as usize * 4) {
            return Err("the layout has more elements than optc can address".into());
        }
        Ok(Layout { leaves })
    }

    /// Parses `name:4x3,other:3,scalar:` (a shape of `AxB...`, empty for a scalar).
    pub fn parse(spec: &str) -> Result<Layout, String> {
        let mut leaves = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, shape) = part
                .rsplit_once(':')
                .ok_or_else(|| format!("`{part}`: expected `name:shape`, e.g. `layer.weight:4x3`"))?;
            let shape = if shape.trim().is_empty() {
                Vec::new()
            } else {
                shape
                    .split('x')
                    .map(|d| d.trim().parse::<usize>().map_err(|_| format!("`{part}`: `{d}` is not a dimension")))
                    .collect::<Result<Vec<_>, _>>()?
            };
            leaves.push(Leaf { name: name.trim().to_string(), shape });
        }
        Layout::new(leaves)
    }

    /// Total number of elements.
    pub fn total(&self) -> usize {
        self.leaves.iter().map(Leaf::len).sum()
    }

    /// Indices of the leaves `mask` selects.
    pub fn selected(&self, mask: &Mask) -> Vec<usize> {
        (0..self.leaves.len()).filter(|&i| mask.selects(&self.leaves[i].name, &self.leaves[i].shape)).collect()
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .leaves
            .iter()
            .map(|l| {
                let dims: Vec<String> = l.shape.iter().map(usize::to_string).collect();
                format!("{}:{}", l.name, dims.join("x"))
            })
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_sorts_leaves_bytewise() {
        let layout = Layout::parse("dense.kernel:4x3, dense.bias:3, Scale:").expect("a valid layout");
        let names: Vec<&str> = layout.leaves.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["Scale", "dense.bias", "dense.kernel"]);
        assert_eq!(layout.total(), 1 + 3 + 12);
        assert_eq!(layout.to_string(), "Scale:,dense.bias:3,dense.kernel:4x3");
        assert_eq!(layout.selected(&Mask::Glob("*.bias".into())), vec![1]);
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(Layout::parse("a:3,a:4").is_err());
        assert!(Layout::parse("").is_err() && Layout::parse(" , ").is_err(), "no leaves");
        assert!(Layout::parse("a:3xq").is_err());
        assert!(Layout::parse("noshape").is_err());
    }
}
