//! The element buffers a step reads and writes, one slice per leaf of a [`Layout`]: the
//! parameters, the gradients, and (when asked for) the updates. Per leaf, because a caller's
//! tensors live wherever its framework put them (a PyTorch module's parameters are separate
//! allocations); a flat buffer is the special case of slices cut from one allocation.

use super::{Layout, Level, StepIr, Storage, axes};

/// The parameter, gradient and update buffers of one step, in layout order.
pub struct Leaves<'a> {
    /// Read by the step; the updates are added to them unless the plan writes them to
    /// `updates` ([`Target::Updates`](super::plan::Target::Updates)).
    pub params: Params<'a>,
    /// Empty when initialising (the initial state reads only the parameters).
    pub grads: Vec<&'a [f32]>,
    /// Where the updates are written when the caller applies them itself (what Optax's
    /// `update` returns); empty otherwise.
    pub updates: Vec<&'a mut [f32]>,
}

/// The parameters of a step: writable when the updates are added to them, read-only when
/// they go to buffers of their own.
pub enum Params<'a> {
    Mut(Vec<&'a mut [f32]>),
    Ref(Vec<&'a [f32]>),
}

impl<'a> Params<'a> {
    /// The parameters of leaf `l`.
    pub fn get(&self, l: usize) -> Option<&[f32]> {
        match self {
            Params::Mut(p) => p.get(l).map(|p| &**p),
            Params::Ref(p) => p.get(l).copied(),
        }
    }

    /// The parameters of leaf `l`, if they may be written.
    pub fn get_mut(&mut self, l: usize) -> Option<&mut [f32]> {
        match self {
            Params::Mut(p) => p.get_mut(l).map(|p| &mut **p),
            Params::Ref(_) => None,
        }
    }

    /// The number of leaves.
    pub fn len(&self) -> usize {
        match self {
            Params::Mut(p) => p.len(),
            Params::Ref(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_mut(&self) -> bool {
        matches!(self, Params::Mut(_))
    }
}

/// A buffer whose length does not match its leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LengthError {
    /// `params`, `grads` or `updates`.
    pub what: &'static str,
    /// The leaf's index in the layout.
    pub leaf: usize,
    pub expected: usize,
    pub found: usize,
}

impl<'a> Leaves<'a> {
    /// Checks every buffer against `layout`: one slice per leaf, of the leaf's length (`grads`
    /// and `updates` may be empty as a whole).
    pub fn check(&self, layout: &Layout) -> Result<(), LengthError> {
        let lens = |what: &'static str, found: Vec<usize>| -> Result<(), LengthError> {
            if found.len() != layout.leaves.len() {
                return Err(LengthError { what, leaf: found.len().min(layout.leaves.len()), expected: layout.leaves.len(), found: found.len() });
            }
            match layout.leaves.iter().zip(found).enumerate().find(|(_, (leaf, n))| leaf.len() != *n) {
                Some((l, (leaf, n))) => Err(LengthError { what, leaf: l, expected: leaf.len(), found: n }),
                None => Ok(()),
            }
        };
        lens("params", (0..self.params.len()).map(|l| self.params.get(l).map_or(0, <[f32]>::len)).collect())?;
        if !self.grads.is_empty() {
            lens("grads", self.grads.iter().map(|g| g.len()).collect())?;
        }
        if !self.updates.is_empty() {
            lens("updates", self.updates.iter().map(|u| u.len()).collect())?;
        }
        Ok(())
    }
}

/// Where per-element state keeps each leaf. A slot holds the leaves of its groups only, one
/// after another in layout order, so that a transform applied to some leaves (a partition
/// arm, a mask) keeps state for those leaves alone, as Optax's does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotLayout {
    /// Per slot, where each leaf starts in its buffer (`None`: the slot does not hold it);
    /// empty for slots of other levels.
    starts: Vec<Vec<Option<usize>>>,
    /// Per slot, the elements it keeps of each leaf: the leaf's, or fewer for a slot stored
    /// reduced over some axes (`axes`).
    sizes: Vec<Vec<usize>>,
    /// Per slot, whether it holds each leaf (per-leaf and per-element slots; empty for
    /// uniform ones).
    holds: Vec<Vec<bool>>,
    /// Elements in each slot's buffer (0 for slots of other levels).
    lens: Vec<usize>,
    /// How each slot stores its elements (float32 where missing).
    storage: Vec<Storage>,
    /// Per slot, the axes it is stored reduced over for each leaf (none where missing).
    collapsed: Vec<Vec<axes::Collapsed>>,
}

impl SlotLayout {
    /// The layout of `ir`'s per-element slots.
    pub fn new(ir: &StepIr) -> SlotLayout {
        let n = ir.layout.leaves.len();
        let mut out = SlotLayout::default();
        for slot in &ir.slots {
            let holds: Vec<bool> = match slot.level {
                Level::Uniform => Vec::new(),
                _ => (0..n).map(|l| slot.groups.contains(ir.groups.of_leaf[l])).collect(),
            };
            let mut starts = Vec::new();
            let mut sizes = Vec::new();
            let mut len = 0;
            if slot.level == Level::Element {
                for (leaf_index, (leaf, &held)) in ir.layout.leaves.iter().zip(&holds).enumerate() {
                    let size = axes::stored_len(&leaf.shape, slot.collapsed_in(ir.groups.of_leaf[leaf_index]));
                    starts.push(held.then_some(len));
                    sizes.push(size);
                    len += if held { size } else { 0 };
                }
            }
            out.starts.push(starts);
            out.sizes.push(sizes);
            out.holds.push(holds);
            out.lens.push(len);
            out.storage.push(slot.storage);
            out.collapsed.push((0..n).map(|l| slot.collapsed_in(ir.groups.of_leaf[l])).collect());
        }
        out
    }

    /// `slots` per-element slots that each hold every leaf, of `leaf_lens` elements, one after
    /// another (the layout of a pipeline without partitions or masks).
    pub fn all_leaves(leaf_lens: &[usize], slots: usize) -> SlotLayout {
        let mut starts = Vec::with_capacity(leaf_lens.len());
        let mut at = 0;
        for len in leaf_lens {
            starts.push(Some(at));
            at += len;
        }
        let n = leaf_lens.len();
        SlotLayout { starts: vec![starts; slots], sizes: vec![leaf_lens.to_vec(); slots], holds: vec![vec![true; n]; slots], lens: vec![at; slots], storage: Vec::new(), collapsed: Vec::new() }
    }

    /// How slot `slot` stores its elements.
    pub fn storage(&self, slot: usize) -> Storage {
        self.storage.get(slot).copied().unwrap_or_default()
    }

    /// The axes slot `slot` is stored reduced over for leaf `leaf`.
    pub fn collapsed(&self, slot: usize, leaf: usize) -> axes::Collapsed {
        self.collapsed.get(slot).and_then(|c| c.get(leaf)).copied().unwrap_or(0)
    }

    /// Float32 words in each slot's buffer: its elements, two to a word for bfloat16.
    pub fn words(&self) -> Vec<usize> {
        self.lens.iter().enumerate().map(|(s, &n)| self.storage(s).words(n)).collect()
    }

    /// The values of slot `slot`'s buffer `words` (all its elements).
    pub fn values(&self, slot: usize, words: &[f32]) -> Vec<f32> {
        self.storage(slot).unpack(words, self.lens.get(slot).copied().unwrap_or(0))
    }

    /// Elements in each slot's buffer, by slot (0 for slots of other levels).
    pub fn lens(&self) -> &[usize] {
        &self.lens
    }

    /// Whether slot `slot` (per leaf or per element) holds leaf `leaf`.
    pub fn holds(&self, slot: usize, leaf: usize) -> bool {
        self.holds.get(slot).and_then(|h| h.get(leaf)).copied().unwrap_or(false)
    }

    /// Where leaf `leaf` starts in the buffer of slot `slot`, if the slot holds it.
    pub fn start(&self, slot: usize, leaf: usize) -> Option<usize> {
        self.starts.get(slot)?.get(leaf).copied().flatten()
    }

    /// The range of slot `slot`'s buffer that holds `leaf`, if it does.
    pub fn range(&self, slot: usize, leaf: usize) -> Option<std::ops::Range<usize>> {
        let size = self.sizes.get(slot)?.get(leaf)?;
        self.start(slot, leaf).map(|a| a..a + size)
    }
}

/// Cuts a flat buffer into one slice per leaf of `layout` (which must have `flat.len()`
/// elements in all).
pub fn split_mut<'a>(layout: &Layout, mut flat: &'a mut [f32]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(layout.leaves.len());
    for leaf in &layout.leaves {
        let n = leaf.len().min(flat.len());
        let (head, rest) = std::mem::take(&mut flat).split_at_mut(n);
        out.push(head);
        flat = rest;
    }
    out
}

/// As [`split_mut`], for a buffer that is only read.
pub fn split<'a>(layout: &Layout, mut flat: &'a [f32]) -> Vec<&'a [f32]> {
    let mut out = Vec::with_capacity(layout.leaves.len());
    for leaf in &layout.leaves {
        let (head, rest) = flat.split_at(leaf.len().min(flat.len()));
        out.push(head);
        flat = rest;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_buffer_splits_into_its_leaves_and_lengths_are_checked() {
        let layout = Layout::parse("a:2x2,b:3,c:").expect("layout");
        let mut flat: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let grads = vec![0.0; 8];
        let params = split_mut(&layout, &mut flat);
        assert_eq!(params.iter().map(|p| p.len()).collect::<Vec<_>>(), [4, 3, 1]);
        assert_eq!(params[2], &[7.0]);
        let leaves = Leaves { params: Params::Mut(params), grads: split(&layout, &grads), updates: Vec::new() };
        assert_eq!(leaves.check(&layout), Ok(()));
        let short = vec![0.0; 7];
        let leaves = Leaves { grads: split(&layout, &short), ..leaves };
        assert_eq!(leaves.check(&layout), Err(LengthError { what: "grads", leaf: 2, expected: 1, found: 0 }));
    }
}
