//! Float buffers placed by optc rather than by the allocator: all in one allocation, each one
//! starting at its own offset within a 4 KiB page.
//!
//! Large buffers are backed by 2 MiB pages where the kernel allows ([`advise_huge_pages`]):
//! `optc bench adam.opt --params 33554432` ran 12% faster on one thread and 20% on two.
//!
//! Why the offsets: large allocations come straight from `mmap`, so every big `Vec` starts at
//! the same offset in its page. The streams of a pass then share their low 12 address bits, and
//! a load whose low bits match a pending store's waits for it (4K aliasing); they also compete
//! for the same cache sets. Staggering each buffer by a different number of cache lines avoids
//! both.

/// Bytes in a page: addresses that differ by a multiple of it alias.
const PAGE: usize = 4096;
/// Bytes in a cache line: every buffer starts on a line boundary.
const LINE: usize = 64;
/// Cache lines between the page offsets of consecutive buffers. Odd, so the first 64 buffers
/// all get different offsets; far from 0 and 32, so neighbours are far apart in the page.
const STAGGER: usize = 23;
const FLOATS_PER_PAGE: usize = PAGE / size_of::<f32>();

/// The stagger index of an optimizer's first state buffer: 0 and 1 are for the parameters and
/// the gradients, when their owner places them with an arena too.
pub const STATE: usize = 2;

/// Buffers of `f32`, each at its own page offset. Buffer `i` of an arena made with
/// `first = k` sits at line `(k + i) * STAGGER mod 64` of its page, so arenas given disjoint
/// ranges of indices (say params and grads at 0 and 1, state from 2 on) never alias.
#[derive(Default)]
pub struct Arena {
    data: Vec<f32>,
    /// (start, len) of each buffer in `data`.
    spans: Vec<(usize, usize)>,
    /// The stagger index of buffer 0.
    first: usize,
}

impl Arena {
    /// Zeroed buffers of lengths `lens`, staggered from index `first` on.
    pub fn new(lens: &[usize], first: usize) -> Arena {
        // Each buffer gets its length rounded up to whole pages, plus one page of room to move.
        let room: usize = lens.iter().map(|&n| n.div_ceil(FLOATS_PER_PAGE) * FLOATS_PER_PAGE + FLOATS_PER_PAGE).sum();
        let mut data = vec![0.0f32; room + FLOATS_PER_PAGE];
        // Zeroed this large, the memory comes untouched from the kernel: advise it before use.
        advise_huge_pages(&mut data);
        let base = data.as_ptr() as usize;
        let mut spans = Vec::with_capacity(lens.len());
        let mut at = 0;
        for (i, &n) in lens.iter().enumerate() {
            let want = ((first + i) * STAGGER % (PAGE / LINE)) * LINE;
            let here = (base + at * size_of::<f32>()) % PAGE;
            // `Vec<f32>` is 4-byte aligned, so every float offset is reachable.
            let shift = (want + PAGE - here) % PAGE / size_of::<f32>();
            spans.push((at + shift, n));
            at += shift + n.div_ceil(FLOATS_PER_PAGE) * FLOATS_PER_PAGE;
        }
        Arena { data, spans, first }
    }

    /// Buffers holding copies of `buffers`, staggered from index `first` on.
    pub fn from_slices(buffers: &[&[f32]], first: usize) -> Arena {
        let lens: Vec<usize> = buffers.iter().map(|b| b.len()).collect();
        let mut arena = Arena::new(&lens, first);
        for (dst, src) in arena.slices_mut().into_iter().zip(buffers) {
            dst.copy_from_slice(src);
        }
        arena
    }

    /// Number of buffers.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no buffers.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Buffer `i`.
    pub fn get(&self, i: usize) -> Option<&[f32]> {
        self.spans.get(i).map(|&(s, n)| &self.data[s..s + n])
    }

    /// Buffer `i`, writable.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut [f32]> {
        self.spans.get(i).map(|&(s, n)| &mut self.data[s..s + n])
    }

    /// Every buffer, writable at once.
    pub fn slices_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out = Vec::with_capacity(self.spans.len());
        let mut rest: &mut [f32] = &mut self.data;
        let mut consumed = 0;
        for &(s, n) in &self.spans {
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(s - consumed);
            let (buffer, tail) = tail.split_at_mut(n);
            out.push(buffer);
            rest = tail;
            consumed = s + n;
        }
        out
    }

    /// The buffers, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[f32]> {
        self.spans.iter().map(|&(s, n)| &self.data[s..s + n])
    }
}

impl Clone for Arena {
    /// A copy placed afresh: a plain copy of `data` would keep the spans but not their offsets.
    fn clone(&self) -> Arena {
        Arena::from_slices(&self.iter().collect::<Vec<_>>(), self.first)
    }
}

impl PartialEq for Arena {
    /// Equal when the buffers hold the same values (wherever they sit).
    fn eq(&self, other: &Arena) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.spans.iter().map(|&(_, n)| n)).finish()
    }
}

/// Bytes in a huge page of x86-64 and aarch64 Linux.
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the whole huge pages inside `buffer` with huge pages, before they
/// are first touched (Linux's transparent huge pages in their `madvise` mode, which PyTorch's
/// allocator also asks for on large tensors): a stream of hundreds of megabytes then walks 2
/// MiB pages instead of 4 KiB ones. Elsewhere, or if the kernel refuses, nothing happens.
#[allow(unsafe_code)]
fn advise_huge_pages(buffer: &mut [f32]) {
    #[cfg(target_os = "linux")]
    {
        let start = buffer.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(buffer);
        let (first, last) = (start.next_multiple_of(HUGE_PAGE), end / HUGE_PAGE * HUGE_PAGE);
        if last > first {
            // SAFETY: [first, last) lies inside `buffer`, which this borrow owns; the advice
            // changes how its pages are backed, never their contents or the mapping.
            unsafe { libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (buffer, HUGE_PAGE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_page_advice_keeps_the_values() {
        for n in [0, 1, 1000, 3 << 20] {
            let mut buffer: Vec<f32> = (0..n).map(|i| i as f32).collect();
            advise_huge_pages(&mut buffer);
            advise_huge_pages(&mut buffer[n / 3..]);
            assert!(buffer.iter().enumerate().all(|(i, &x)| x == i as f32));
        }
    }

    #[test]
    fn buffers_are_disjoint_line_aligned_and_at_different_page_offsets() {
        let lens = [5000, 0, 1, 4096, 3];
        let mut arena = Arena::new(&lens, 2);
        let mut offsets = Vec::new();
        for (i, b) in arena.slices_mut().into_iter().enumerate() {
            assert_eq!(b.len(), lens[i]);
            let addr = b.as_ptr() as usize;
            assert_eq!(addr % LINE, 0);
            assert_eq!(addr % PAGE, (2 + i) * STAGGER % 64 * LINE);
            offsets.push(addr % PAGE);
            b.fill(i as f32);
        }
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), lens.len());
        for (i, b) in arena.iter().enumerate() {
            assert!(b.iter().all(|&x| x == i as f32), "buffer {i} was overwritten by another");
        }
    }

    #[test]
    fn copies_compare_by_value() {
        let a = Arena::from_slices(&[&[1.0, 2.0], &[3.0]], 0);
        let b = Arena::from_slices(&[&[1.0, 2.0], &[3.0]], 7);
        assert_eq!(a, b);
        assert_eq!(a.get(1), Some(&[3.0][..]));
        assert_ne!(a, Arena::from_slices(&[&[1.0, 2.0], &[4.0]], 0));
        assert_eq!(a.get(2), None);
        let c = a.clone();
        assert_eq!(c, a);
        assert_eq!(c.get(1).map(|b| b.as_ptr() as usize % PAGE), Some(STAGGER * LINE));
    }
}
