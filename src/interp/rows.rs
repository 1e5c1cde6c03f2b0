//! The geometry of row programs (`GroupProgram::rows`): a leaf is walked row by row, rows of
//! its last axis in blocks of at most `BLOCK` elements, and a value stored reduced over some of
//! its axes is read, for each row, either at one place (constant along the row) or along a run
//! of the row's length. One home for it: the interpreter, the runtime's tasks and the compiled
//! code's tables all come from here.

use crate::ir::plan::BLOCK;

/// A block of a row program: `len` elements of row `row` from column `col`, the first at
/// `start` in the leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub len: usize,
    pub row: usize,
    pub col: usize,
}

/// The rows of a leaf of shape `shape`: the product of all its axes but the last.
fn rows_of(shape: &[usize]) -> usize {
    shape.iter().rev().skip(1).product()
}

/// The blocks of a leaf of shape `shape`, row by row (a scalar leaf is one row of one).
pub fn segments(shape: &[usize]) -> Vec<Segment> {
    let cols = shape.last().copied().unwrap_or(1);
    let rows = rows_of(shape);
    let mut out = Vec::new();
    if cols == 0 {
        return out;
    }
    for row in 0..rows {
        let mut col = 0;
        while col < cols {
            let len = BLOCK.min(cols - col);
            out.push(Segment { start: row * cols + col, len, row, col });
            col += len;
        }
    }
    out
}

/// Where row `row` of a leaf of shape `leaf` starts in a value of shape `shape` (which
/// broadcasts to it, numpy's rule), and the step between the row's elements there: 0 where the
/// value has one value per row, 1 where it varies along the row.
pub fn row_start(shape: &[usize], leaf: &[usize], row: usize) -> (usize, usize) {
    let n = leaf.len();
    if n == 0 {
        return (0, 0);
    }
    let dim = |k: usize| if k + shape.len() >= n { shape[k + shape.len() - n] } else { 1 };
    if n == 2 {
        // A matrix's row is its first index (the common case, without division).
        let at = if dim(0) != 1 { row * dim(1) } else { 0 };
        return (at, usize::from(dim(1) != 1));
    }
    let (mut rest, mut at, mut stride) = (row, 0, dim(n - 1));
    for k in (0..n - 1).rev() {
        let i = rest % leaf[k].max(1);
        rest /= leaf[k].max(1);
        if dim(k) != 1 {
            at += i * stride;
        }
        stride *= dim(k);
    }
    (at, usize::from(dim(n - 1) != 1))
}

/// Most copies a reduction over other axes than the last keeps of its accumulator.
const MAX_COPIES: usize = 16;

/// How many copies of its accumulator a reduction over axes other than the last (stored in
/// `stored` elements) keeps for a leaf of shape `leaf`: rows are cut into that many runs of
/// consecutive rows, each run adds its rows in order into a copy of its own, and the copies are
/// then combined in order. Runs share no memory, so threads may take them apart. It depends on
/// the shape alone, so the sums are the same on either backend and at any thread count; copies
/// stay under a sixteenth of the leaf, so a small leaf keeps one and adds its rows in order.
pub fn copies(leaf: &[usize], stored: usize) -> usize {
    let rows = rows_of(leaf);
    let len = rows * leaf.last().copied().unwrap_or(1);
    (len / (16 * stored.max(1))).clamp(1, MAX_COPIES).min(rows.max(1))
}

/// The copy (of `copies`) row `row` of a leaf of shape `leaf` accumulates into.
pub fn copy_of(leaf: &[usize], copies: usize, row: usize) -> usize {
    row * copies / rows_of(leaf).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_into_blocks() {
        let s = segments(&[2, BLOCK + 3]);
        assert_eq!(s.len(), 4);
        assert_eq!(s[1], Segment { start: BLOCK, len: 3, row: 0, col: BLOCK });
        assert_eq!(s[2], Segment { start: BLOCK + 3, len: BLOCK, row: 1, col: 0 });
        assert_eq!(segments(&[]), vec![Segment { start: 0, len: 1, row: 0, col: 0 }]);
        assert!(segments(&[3, 0]).is_empty());
        assert_eq!(segments(&[2, 3, 5]).len(), 6);
    }

    #[test]
    fn reduced_values_are_read_per_row_or_along_it() {
        let leaf = [3, 2, 5];
        // Row 4 is (2, 0) and row 5 (2, 1): one value per row of a (3, 2, 1) value, a run of
        // the others.
        assert_eq!(row_start(&[3, 2, 1], &leaf, 4), (4, 0));
        assert_eq!(row_start(&[1, 2, 5], &leaf, 5), (5, 1));
        assert_eq!(row_start(&[3, 1, 5], &leaf, 5), (10, 1));
        assert_eq!(row_start(&[3, 2, 5], &leaf, 5), (25, 1));
        assert_eq!(row_start(&[], &leaf, 5), (0, 0));
        assert_eq!(row_start(&[5], &leaf, 5), (0, 1));
        assert_eq!(row_start(&[], &[], 0), (0, 0));
        // Matrices, by the shortcut: per row, along rows, both, neither.
        let m = [4, 6];
        assert_eq!(row_start(&[4, 1], &m, 3), (3, 0));
        assert_eq!(row_start(&[1, 6], &m, 3), (0, 1));
        assert_eq!(row_start(&[4, 6], &m, 3), (18, 1));
        assert_eq!(row_start(&[6], &m, 3), (0, 1));
        assert_eq!(row_start(&[1, 1], &m, 3), (0, 0));
    }

    #[test]
    fn only_leaves_many_times_their_accumulator_split_it() {
        assert_eq!(copies(&[2048, 2048], 2048), 16);
        assert_eq!(copies(&[100, 100], 100), 6);
        assert_eq!(copies(&[8, 8], 8), 1);
        assert_eq!(copies(&[3, 4099], 4099), 1);
        assert_eq!(copies(&[2, 1000, 1000], 1_000_000), 1);
        assert_eq!(copies(&[0, 5], 5), 1);
        assert_eq!(copies(&[], 1), 1);
        // Runs of consecutive rows, as even as the rows allow.
        let runs: Vec<usize> = (0..100).map(|r| copy_of(&[100, 100], 6, r)).collect();
        assert!(runs.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1));
        assert_eq!((runs[0], runs[99]), (0, 5));
        assert_eq!(runs.iter().filter(|&&c| c == 0).count(), 17);
    }
}
