//! Hand-written reference loops for `optc bench`, compiled by rustc: Adam as one writes it by
//! hand, and streaming probes that move the same arrays with trivial arithmetic (the memory
//! floor). Each loop is compiled several times with `#[target_feature]` (AVX-512, AVX2 + FMA,
//! the target's baseline) and dispatched at run time to the widest the CPU has, so a portable
//! binary runs them as fast as a `-C target-cpu=native` build would.
//!
//! The only `unsafe` here calls a `#[target_feature]` function after `is_x86_feature_detected!`
//! confirmed every feature it was compiled for.

use std::fmt;

use crate::arena::Arena;

/// Elements a thread must get before a loop is split over threads: 8 blocks of 4096, the
/// runtime's rule for the compiled passes, so both pay for threads at the same sizes.
const MIN_PER_THREAD: usize = 8 * 4096;
/// Floats of each stream a generic probe moves at a time: two cache lines, a few vector
/// registers of sums at any width.
const WIDTH: usize = 32;
/// Partial sums a fused probe keeps: one 512-bit vector.
const LANES: usize = 16;

/// The instruction set a version of a loop was compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX-512 (F, VL), AVX2 and FMA: 512-bit vectors.
    Avx512,
    /// x86-64 with AVX2 and FMA: 256-bit vectors.
    Avx2,
    /// The target's baseline (SSE2 on x86-64).
    Plain,
}

impl Isa {
    /// Every version, widest first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Plain];

    /// The widest version this CPU runs.
    pub fn best() -> Isa {
        Isa::ALL.into_iter().find(|isa| isa.is_available()).unwrap_or(Isa::Plain)
    }

    /// The versions this CPU runs, widest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_available()).collect()
    }

    /// Whether this CPU has every feature the version was compiled for.
    pub fn is_available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx512 => {
                    is_x86_feature_detected!("avx512f")
                        && is_x86_feature_detected!("avx512vl")
                        && is_x86_feature_detected!("avx2")
                        && is_x86_feature_detected!("fma")
                }
                Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                Isa::Plain => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Plain
        }
    }

    /// A short name: `avx512f`, `avx2` or `plain`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512f",
            Isa::Avx2 => "avx2",
            Isa::Plain => "plain",
        }
    }
}

impl std::str::FromStr for Isa {
    type Err = String;
    fn from_str(s: &str) -> Result<Isa, String> {
        match Isa::ALL.into_iter().find(|isa| isa.name() == s) {
            Some(isa) if isa.is_available() => Ok(isa),
            Some(_) => Err(format!("this CPU cannot run `{s}` code")),
            None => Err(format!("unknown instruction set `{s}`: expected `avx512f`, `avx2` or `plain`")),
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Defines `$name(isa, args)`, which runs `$body(args)` compiled for `isa` when the CPU has it,
/// and the baseline version otherwise.
macro_rules! versions {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:ident;) => {
        $(#[$doc])*
        fn $name(isa: Isa, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if isa == Isa::Avx512 && isa.is_available() {
                    // SAFETY: `is_available` confirmed avx512f, avx512vl, avx2 and fma.
                    return unsafe { avx512($($arg),*) };
                }
                if isa == Isa::Avx2 && isa.is_available() {
                    // SAFETY: `is_available` confirmed avx2 and fma.
                    return unsafe { avx2($($arg),*) };
                }
            }
            let _ = isa;
            $body($($arg),*)
        }
    };
}

/// Adam's hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub learning_rate: f32,
    pub b1: f32,
    pub b2: f32,
    pub eps: f32,
}

impl Default for Adam {
    /// `adam(learning_rate=1e-3)`: Optax's defaults.
    fn default() -> Adam {
        Adam { learning_rate: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8 }
    }
}

impl Adam {
    /// The constants of step `count` (1 for the first step): the hyperparameters and the bias
    /// corrections `1 - b^count`, computed once per step as a hand-written loop would.
    pub fn at(&self, count: i32) -> AdamStep {
        AdamStep { adam: *self, c1: 1.0 - self.b1.powi(count), c2: 1.0 - self.b2.powi(count) }
    }
}

/// Adam's per-step constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub adam: Adam,
    /// Bias correction of the first moment, `1 - b1^count`.
    pub c1: f32,
    /// Bias correction of the second moment, `1 - b2^count`.
    pub c2: f32,
}

/// One Adam step over the first `n` elements of `p`, `g`, `m` and `v` (`n` the shortest
/// length), with the version `isa` (or the baseline if the CPU lacks it), over `threads` threads.
pub fn adam(isa: Isa, k: &AdamStep, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], threads: usize) {
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    let per = piece(n, threads);
    if per >= n {
        return adam_on(isa, k, p, g, m, v);
    }
    let pieces = p[..n].chunks_mut(per).zip(g[..n].chunks(per)).zip(m[..n].chunks_mut(per)).zip(v[..n].chunks_mut(per));
    crate::parallel::map(pieces.collect(), threads, |(((p, g), m), v)| adam_on(isa, k, p, g, m, v));
}

versions! {
    /// [`adam`] on one thread.
    fn adam_on(k: &AdamStep, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) -> () = adam_body;
}

/// Adam exactly as one writes it by hand: one loop, three divisions and a square root per
/// element, the bias corrections as per-step constants.
#[inline(always)]
#[allow(clippy::needless_range_loop, reason = "the loop as one writes it by hand")]
fn adam_body(k: &AdamStep, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let Adam { learning_rate: lr, b1, b2, eps } = k.adam;
    let (c1, c2) = (k.c1, k.c2);
    // Equal lengths let the compiler drop the bounds checks, and so vectorize.
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    let (p, g, m, v) = (&mut p[..n], &g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        p[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
    }
}

/// Adam's seven streams (read p, g, m, v; write p, m, v) with trivial arithmetic, in one loop
/// shaped like [`adam`]'s. The values stay finite and `v` positive, so Adam can run on the same
/// buffers afterwards.
pub fn adam_probe(isa: Isa, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], threads: usize) {
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    let per = piece(n, threads);
    if per >= n {
        return adam_probe_on(isa, p, g, m, v);
    }
    let pieces = p[..n].chunks_mut(per).zip(g[..n].chunks(per)).zip(m[..n].chunks_mut(per)).zip(v[..n].chunks_mut(per));
    crate::parallel::map(pieces.collect(), threads, |(((p, g), m), v)| adam_probe_on(isa, p, g, m, v));
}

versions! {
    /// [`adam_probe`] on one thread.
    fn adam_probe_on(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) -> () = adam_probe_body;
}

#[inline(always)]
#[allow(clippy::needless_range_loop, reason = "shaped like `adam_body`")]
fn adam_probe_body(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    let (p, g, m, v) = (&mut p[..n], &g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let (gi, mi) = (g[i], m[i]);
        m[i] = 0.5 * mi + gi;
        v[i] = 0.5 * v[i] + 1.0;
        p[i] = 0.5 * p[i] + mi;
    }
}

/// The streams of one pass of a probe, all of the same length: some only read, some read and
/// written in place, some only written.
#[derive(Default)]
pub struct Streams<'a> {
    pub reads: Vec<&'a [f32]>,
    pub updates: Vec<&'a mut [f32]>,
    pub writes: Vec<&'a mut [f32]>,
}

impl<'a> Streams<'a> {
    /// The shortest stream's length.
    fn len(&self) -> usize {
        let reads = self.reads.iter().map(|s| s.len());
        let written = self.updates.iter().chain(&self.writes).map(|s| s.len());
        reads.chain(written).min().unwrap_or(0)
    }

    /// Splits every stream into pieces of `per` elements (the last may be shorter).
    fn split(self, per: usize) -> Vec<Streams<'a>> {
        let n = self.len();
        let mut out: Vec<Streams<'a>> = (0..n.div_ceil(per)).map(|_| Streams::default()).collect();
        for s in self.reads {
            out.iter_mut().zip(s[..n].chunks(per)).for_each(|(o, c)| o.reads.push(c));
        }
        for s in self.updates {
            out.iter_mut().zip(s[..n].chunks_mut(per)).for_each(|(o, c)| o.updates.push(c));
        }
        for s in self.writes {
            out.iter_mut().zip(s[..n].chunks_mut(per)).for_each(|(o, c)| o.writes.push(c));
        }
        out
    }
}

/// Moves `streams` once with trivial arithmetic, with the version `isa`, over `threads`
/// threads: every element of every read or updated stream is read once, every updated or
/// written one written once. Returns a sum of what was read, so no read can be left out.
pub fn probe(isa: Isa, streams: Streams<'_>, threads: usize) -> f32 {
    let n = streams.len();
    let per = piece(n, threads);
    if per >= n {
        let Streams { reads, mut updates, mut writes } = streams;
        return probe_on(isa, &reads, &mut updates, &mut writes);
    }
    let sums = crate::parallel::map(streams.split(per), threads, |s| {
        let Streams { reads, mut updates, mut writes } = s;
        probe_on(isa, &reads, &mut updates, &mut writes)
    });
    sums.into_iter().sum()
}

/// [`probe`] on one thread: a fused loop for the common shapes, else the generic one.
fn probe_on(isa: Isa, reads: &[&[f32]], updates: &mut [&mut [f32]], writes: &mut [&mut [f32]]) -> f32 {
    match (reads, updates, writes) {
        ([r0], [], []) => probe_1_0_0(isa, r0),
        ([r0], [u0], []) => probe_1_1_0(isa, r0, u0),
        ([r0], [u0, u1], []) => probe_1_2_0(isa, r0, u0, u1),
        ([r0], [u0, u1, u2], []) => probe_1_3_0(isa, r0, u0, u1, u2),
        ([r0], [u0, u1, u2, u3], []) => probe_1_4_0(isa, r0, u0, u1, u2, u3),
        ([r0], [], [w0]) => probe_1_0_1(isa, r0, w0),
        ([r0], [u0], [w0]) => probe_1_1_1(isa, r0, u0, w0),
        ([r0], [u0, u1], [w0]) => probe_1_2_1(isa, r0, u0, u1, w0),
        ([r0], [u0, u1, u2], [w0]) => probe_1_3_1(isa, r0, u0, u1, u2, w0),
        ([r0, r1], [], []) => probe_2_0_0(isa, r0, r1),
        ([r0, r1], [u0], []) => probe_2_1_0(isa, r0, r1, u0),
        ([r0, r1], [u0, u1], []) => probe_2_2_0(isa, r0, r1, u0, u1),
        ([r0, r1], [u0, u1, u2], []) => probe_2_3_0(isa, r0, r1, u0, u1, u2),
        ([r0, r1], [u0, u1, u2, u3], []) => probe_2_4_0(isa, r0, r1, u0, u1, u2, u3),
        ([r0, r1], [], [w0]) => probe_2_0_1(isa, r0, r1, w0),
        ([r0, r1], [u0, u1, u2], [w0]) => probe_2_3_1(isa, r0, r1, u0, u1, u2, w0),
        (reads, updates, writes) => probe_generic(isa, reads, updates, writes),
    }
}

/// Defines `$name(isa, streams...)`: a probe pass of one shape as one fused loop, like
/// [`adam_probe`]'s. Out of cache it is faster than the generic loop (by about a quarter for
/// Adam's shape on the machine of PERF.md): the streams are separate arguments, so the compiler
/// knows they do not overlap and emits straight vector code.
macro_rules! fused_probe {
    ($name:ident, $body:ident: [$($r:ident),*] [$($u:ident),*] [$($w:ident),*]) => {
        #[inline(always)]
        fn $body($($r: &[f32],)* $($u: &mut [f32],)* $($w: &mut [f32],)*) -> f32 {
            let n = usize::MAX $(.min($r.len()))* $(.min($u.len()))* $(.min($w.len()))*;
            $(let $r = &$r[..n];)* $(let $u = &mut $u[..n];)* $(let $w = &mut $w[..n];)*
            // Per-lane sums, so the sum vectorizes without reassociating a single one.
            let mut total = [0.0f32; LANES];
            let whole = n - n % LANES;
            let mut i = 0;
            while i < whole {
                // Slices of exactly `LANES` floats: one bounds check per stream, none inside.
                $(let $r = &$r[i..i + LANES];)* $(let $u = &mut $u[i..i + LANES];)* $(let $w = &mut $w[i..i + LANES];)*
                for j in 0..LANES {
                    let mut acc = 0.0f32;
                    $(acc += $r[j];)*
                    $(acc += $u[j]; $u[j] = 0.5 * $u[j] + 1.0;)*
                    $($w[j] = 0.5 * acc;)*
                    total[j] += acc;
                }
                i += LANES;
            }
            for k in whole..n {
                let mut acc = 0.0f32;
                $(acc += $r[k];)*
                $(acc += $u[k]; $u[k] = 0.5 * $u[k] + 1.0;)*
                $($w[k] = 0.5 * acc;)*
                total[0] += acc;
            }
            total.iter().sum()
        }
        versions! {
            fn $name($($r: &[f32],)* $($u: &mut [f32],)* $($w: &mut [f32],)*) -> f32 = $body;
        }
    };
}

fused_probe!(probe_1_0_0, probe_1_0_0_body: [r0] [] []);
fused_probe!(probe_1_1_0, probe_1_1_0_body: [r0] [u0] []);
fused_probe!(probe_1_2_0, probe_1_2_0_body: [r0] [u0, u1] []);
fused_probe!(probe_1_3_0, probe_1_3_0_body: [r0] [u0, u1, u2] []);
fused_probe!(probe_1_4_0, probe_1_4_0_body: [r0] [u0, u1, u2, u3] []);
fused_probe!(probe_1_0_1, probe_1_0_1_body: [r0] [] [w0]);
fused_probe!(probe_1_1_1, probe_1_1_1_body: [r0] [u0] [w0]);
fused_probe!(probe_1_2_1, probe_1_2_1_body: [r0] [u0, u1] [w0]);
fused_probe!(probe_1_3_1, probe_1_3_1_body: [r0] [u0, u1, u2] [w0]);
fused_probe!(probe_2_0_0, probe_2_0_0_body: [r0, r1] [] []);
fused_probe!(probe_2_1_0, probe_2_1_0_body: [r0, r1] [u0] []);
fused_probe!(probe_2_2_0, probe_2_2_0_body: [r0, r1] [u0, u1] []);
fused_probe!(probe_2_3_0, probe_2_3_0_body: [r0, r1] [u0, u1, u2] []);
fused_probe!(probe_2_4_0, probe_2_4_0_body: [r0, r1] [u0, u1, u2, u3] []);
fused_probe!(probe_2_0_1, probe_2_0_1_body: [r0, r1] [] [w0]);
fused_probe!(probe_2_3_1, probe_2_3_1_body: [r0, r1] [u0, u1, u2] [w0]);

versions! {
    /// [`probe`] on one thread, for any number of streams.
    fn probe_generic(reads: &[&[f32]], updates: &mut [&mut [f32]], writes: &mut [&mut [f32]]) -> f32 = probe_body;
}

/// A pass's streams, `WIDTH` elements at a time: the read and updated streams are summed into
/// `acc` (kept in registers), the updated ones rewritten from their own values as they are
/// read, then the written ones written from `acc`. Memory sees each stream read or written once, interleaved as in a
/// fused loop; only the loops over the streams cost more than a fused loop's straight code.
#[inline(always)]
fn probe_body(reads: &[&[f32]], updates: &mut [&mut [f32]], writes: &mut [&mut [f32]]) -> f32 {
    let reads_len = reads.iter().map(|s| s.len());
    let n = updates.iter().chain(writes.iter()).map(|s| s.len()).chain(reads_len).min().unwrap_or(0);
    let mut total = [0.0f32; WIDTH];
    let mut i = 0;
    while i + WIDTH <= n {
        let mut acc = [0.0f32; WIDTH];
        for s in reads {
            if let Some(x) = s.get(i..i + WIDTH).and_then(|x| <&[f32; WIDTH]>::try_from(x).ok()) {
                (0..WIDTH).for_each(|j| acc[j] += x[j]);
            }
        }
        for s in updates.iter_mut() {
            if let Some(x) = s.get_mut(i..i + WIDTH).and_then(|x| <&mut [f32; WIDTH]>::try_from(x).ok()) {
                (0..WIDTH).for_each(|j| {
                    acc[j] += x[j];
                    x[j] = 0.5 * x[j] + 1.0;
                });
            }
        }
        for s in writes.iter_mut() {
            if let Some(x) = s.get_mut(i..i + WIDTH).and_then(|x| <&mut [f32; WIDTH]>::try_from(x).ok()) {
                (0..WIDTH).for_each(|j| x[j] = 0.5 * acc[j]);
            }
        }
        (0..WIDTH).for_each(|j| total[j] += acc[j]);
        i += WIDTH;
    }
    // The tail, one element at a time.
    for i in i..n {
        let mut acc = 0.0;
        for s in reads {
            acc += s[i];
        }
        for s in updates.iter_mut() {
            acc += s[i];
            s[i] = 0.5 * s[i] + 1.0;
        }
        for s in writes.iter_mut() {
            s[i] = 0.5 * acc;
        }
        total[0] += acc;
    }
    total.iter().sum()
}

/// A probe shaped like a plan's passes: for each pass, a loop that reads and writes as many
/// buffers as the pass reads and writes streams. A stream the pass both reads and writes is
/// updated in place; a stream name shared by several passes is the same buffer in each.
#[derive(Clone, Debug, Default)]
pub struct ProbePlan {
    passes: Vec<Roles>,
    buffers: usize,
}

/// The buffers of one probe pass, by index.
#[derive(Clone, Debug, Default)]
struct Roles {
    reads: Vec<usize>,
    updates: Vec<usize>,
    writes: Vec<usize>,
}

impl ProbePlan {
    /// From the read and written stream names of each pass. The parameters and gradients
    /// (`param` and `grad`, as the plan names them) get buffers 0 and 1, as in the runtime;
    /// other streams get 2, 3, ... in order of first appearance.
    pub fn new<'a>(passes: impl IntoIterator<Item = (&'a [String], &'a [String])>) -> ProbePlan {
        let mut names: Vec<&str> = vec!["param", "grad"];
        let mut index = |name: &'a str| match names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                names.push(name);
                names.len() - 1
            }
        };
        let mut plan = ProbePlan::default();
        for (reads, writes) in passes {
            let mut roles = Roles::default();
            for r in reads {
                let i = index(r);
                if writes.contains(r) { roles.updates.push(i) } else { roles.reads.push(i) }
            }
            for w in writes.iter().filter(|w| !reads.contains(w)) {
                roles.writes.push(index(w));
            }
            plan.passes.push(roles);
        }
        plan.buffers = names.len();
        plan
    }

    /// Buffers the probe needs (at least 2: parameters and gradients).
    pub fn buffers(&self) -> usize {
        self.buffers
    }

    /// Bytes moved per element by all passes (4 per float read or written).
    pub fn bytes_per_element(&self) -> usize {
        self.passes.iter().map(|r| 4 * (r.reads.len() + 2 * r.updates.len() + r.writes.len())).sum()
    }

    /// One probe step: every pass in order, each with [`probe`], on `arena`'s buffers (a
    /// buffer the arena lacks is left out). Returns the sum of the passes' sums.
    pub fn run(&self, isa: Isa, arena: &mut Arena, threads: usize) -> f32 {
        let mut sum = 0.0;
        for roles in &self.passes {
            let mut slots: Vec<Option<&mut [f32]>> = arena.slices_mut().into_iter().map(Some).collect();
            let mut take = |i: &usize| slots.get_mut(*i).and_then(Option::take);
            let reads = roles.reads.iter().filter_map(&mut take).map(|s| &*s).collect();
            let updates = roles.updates.iter().filter_map(&mut take).collect();
            let writes = roles.writes.iter().filter_map(&mut take).collect();
            sum += probe(isa, Streams { reads, updates, writes }, threads);
        }
        sum
    }
}

/// Elements per thread for `n` elements over `threads` threads: whole cache lines, and all of
/// them on one thread when a piece would be too small to pay for starting a thread.
fn piece(n: usize, threads: usize) -> usize {
    let threads = threads.min(n / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return n.max(1);
    }
    n.div_ceil(threads).next_multiple_of(16)
}

/// Fills `xs` with floats in [-1, 1) from a fixed seed (xorshift): benchmark data that is the
/// same in every run.
pub fn pseudo_random(xs: &mut [f32], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for out in xs {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *out = (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut xs = vec![0.0; n];
        pseudo_random(&mut xs, seed);
        xs
    }

    /// Distance in units in the last place (same-sign finite floats).
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn every_version_of_adam_agrees_with_the_plain_one() {
        // Lengths around the vector widths (4, 8, 16 floats, unrolled) to reach every tail.
        for n in [0, 1, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 1000, 4099] {
            let g = data(n, 1);
            let run = |isa: Isa| {
                let (mut p, mut m, mut v) = (data(n, 2), vec![0.0; n], vec![0.0; n]);
                for count in 1..=3 {
                    adam(isa, &Adam::default().at(count), &mut p, &g, &mut m, &mut v, 1);
                }
                (p, m, v)
            };
            let plain = run(Isa::Plain);
            for isa in Isa::available() {
                let got = run(isa);
                // rustc never contracts `a * b + c` into an FMA, so today every version is bit
                // for bit the same; one ulp leaves room for a version that calls `mul_add`.
                for (which, (a, b)) in [("p", (&got.0, &plain.0)), ("m", (&got.1, &plain.1)), ("v", (&got.2, &plain.2))] {
                    for (i, (x, y)) in a.iter().zip(b).enumerate() {
                        assert!(ulps(*x, *y) <= 1, "{isa}, n = {n}: {which}[{i}] = {x}, plain gives {y}");
                    }
                }
            }
        }
    }

    #[test]
    fn threads_do_not_change_adam() {
        let n = 3 * MIN_PER_THREAD + 5;
        let g = data(n, 3);
        let run = |threads| {
            let (mut p, mut m, mut v) = (data(n, 4), vec![0.0; n], vec![0.0; n]);
            adam(Isa::best(), &Adam::default().at(1), &mut p, &g, &mut m, &mut v, threads);
            p
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn every_version_of_the_probes_agrees_with_the_plain_one() {
        for n in [0, 5, 17, 1023, 1025, 2 * MIN_PER_THREAD + 3] {
            let run = |isa: Isa, threads: usize| {
                let (a, b) = (data(n, 5), data(n, 6));
                let (mut c, mut d, mut e) = (data(n, 7), vec![0.0; n], vec![0.0; n]);
                let sum = probe(isa, Streams { reads: vec![&a, &b], updates: vec![&mut c], writes: vec![&mut d] }, threads);
                let (mut p, mut m) = (data(n, 8), data(n, 9));
                adam_probe(isa, &mut p, &a, &mut m, &mut e, threads);
                (sum, c, d, p, m, e)
            };
            let plain = run(Isa::Plain, 1);
            for isa in Isa::available() {
                let got = run(isa, 2);
                // The sum's order depends on the split over threads; the streams do not.
                assert!((got.0 - plain.0).abs() <= 1e-3 * (1.0 + plain.0.abs()), "{isa}, n = {n}: {} vs {}", got.0, plain.0);
                assert_eq!((&got.1, &got.2, &got.3, &got.4, &got.5), (&plain.1, &plain.2, &plain.3, &plain.4, &plain.5));
            }
            // The written stream holds half the sum of the read ones.
            let (a, b, c) = (data(n, 5), data(n, 6), data(n, 7));
            for i in 0..n {
                assert_eq!(plain.2[i], 0.5 * (a[i] + b[i] + c[i]));
            }
        }
    }

    #[test]
    fn fused_probes_move_the_streams_as_the_generic_one_does() {
        for n in [0, 15, 16, 17, 100] {
            for (r, u, w) in [(1, 0, 0), (1, 3, 0), (2, 3, 1), (1, 1, 1)] {
                let run = |fused: bool| {
                    let reads: Vec<Vec<f32>> = (0..r).map(|i| data(n, i)).collect();
                    let mut updates: Vec<Vec<f32>> = (0..u).map(|i| data(n, 10 + i)).collect();
                    let mut writes: Vec<Vec<f32>> = (0..w).map(|_| vec![0.0; n]).collect();
                    let reads: Vec<&[f32]> = reads.iter().map(|s| s.as_slice()).collect();
                    let mut u_refs: Vec<&mut [f32]> = updates.iter_mut().map(|s| s.as_mut_slice()).collect();
                    let mut w_refs: Vec<&mut [f32]> = writes.iter_mut().map(|s| s.as_mut_slice()).collect();
                    let sum = if fused {
                        probe_on(Isa::best(), &reads, &mut u_refs, &mut w_refs)
                    } else {
                        probe_generic(Isa::Plain, &reads, &mut u_refs, &mut w_refs)
                    };
                    (sum, updates, writes)
                };
                let (fused, generic) = (run(true), run(false));
                assert!((fused.0 - generic.0).abs() <= 1e-3 * (1.0 + generic.0.abs()), "{r} {u} {w}, n = {n}");
                assert_eq!((fused.1, fused.2), (generic.1, generic.2), "{r} {u} {w}, n = {n}");
            }
        }
    }

    #[test]
    fn a_probe_plan_shares_buffers_between_passes_by_name() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let passes = [
            (names(&["grad"]), names(&[])),
            (names(&["grad", "param", "state#1"]), names(&["param", "state#1", "scratch"])),
        ];
        let plan = ProbePlan::new(passes.iter().map(|(r, w)| (r.as_slice(), w.as_slice())));
        assert_eq!(plan.buffers(), 4);
        assert_eq!(plan.bytes_per_element(), 4 + 4 * 6);
        let n = 100;
        let mut arena = Arena::from_slices(&[&data(n, 1), &data(n, 2), &data(n, 3), &vec![0.0; n]], 0);
        let (p, g, s) = (data(n, 1), data(n, 2), data(n, 3));
        plan.run(Isa::best(), &mut arena, 1);
        for i in 0..n {
            assert_eq!(arena.get(0).map(|b| b[i]), Some(0.5 * p[i] + 1.0));
            assert_eq!(arena.get(1).map(|b| b[i]), Some(g[i]));
            assert_eq!(arena.get(3).map(|b| b[i]), Some(0.5 * (g[i] + p[i] + s[i])));
        }
    }

    #[test]
    fn the_best_version_is_available() {
        assert!(Isa::best().is_available());
        assert_eq!(Isa::available().last(), Some(&Isa::Plain));
    }
}

