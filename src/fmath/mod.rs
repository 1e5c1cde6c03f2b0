//! Float32 math written once: `exp`, `log`, `pow`, `sin`, `cos` and `tanh` as range reduction
//! and a polynomial in IEEE float32 and int32 operations, over the [`Arith`] trait. The
//! interpreter runs them on one float ([`Plain`]) or, over many elements, on arrays of them
//! ([`lanes::Lanes`]); the JIT implements [`Arith`] by emitting Cranelift instructions on one
//! float or on `f32x4` lanes. Each operation of [`Arith`] is an
//! IEEE 754 binary32 operation (rounded to nearest even, no fused multiply-add, subnormals
//! kept) or two's-complement int32 arithmetic, so every implementation computes the same bits.
//!
//! A function that is not total in this form (`log`, `pow`, `sin`, `cos`) returns, besides its
//! value on ordinary arguments, the lanes whose arguments are not ordinary ([`Part::edge`]):
//! zeros, infinities, NaN, negatives, subnormals, results out of the normal range, huge angles.
//! Those lanes take the scalar function ([`log`], [`pow`], [`sin`], [`cos`]), which the JIT
//! calls for them, so both backends give the same bits there too.
//!
//! Accuracy, the largest error in units in the last place against float64 libm: `exp` 1.011,
//! `log` 0.840, `tanh` 1.332 over every float32; `sin` 0.953 and `cos` 0.951 over every 31st
//! float32 bit pattern; `pow` 1.232 over dense sweeps of bases and exponents. `tests.rs`
//! asserts these bounds on sparser sweeps and says how to repeat the full measurement. Special
//! values are those of C99's Annex F, as libm gives them. The polynomials' coefficients come
//! from `docs/fmath_coefficients.py`.

mod exp;
pub mod lanes;
pub mod linalg;
mod log;
pub mod storage;
mod trig;
#[cfg(test)]
mod tests;

pub use exp::{exp, tanh};
pub use log::{PowBase, log_ordinary, pow_base, pow_ordinary, pow_with_base};
pub use trig::{cos_ordinary, sin_ordinary};

/// The operations the functions are written in. Floats (`F`), their int32 bit patterns (`I`)
/// and the truth of comparisons (`M`) are one value or lanes of values.
pub trait Arith {
    type F: Copy;
    type I: Copy;
    type M: Copy;
    fn fconst(&mut self, x: f32) -> Self::F;
    fn iconst(&mut self, n: i32) -> Self::I;
    fn add(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn sub(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn mul(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn div(&mut self, a: Self::F, b: Self::F) -> Self::F;
    /// a < b (false if either is NaN).
    fn lt(&mut self, a: Self::F, b: Self::F) -> Self::M;
    /// a == b (false if either is NaN).
    fn eq(&mut self, a: Self::F, b: Self::F) -> Self::M;
    /// a == b, on ints.
    fn ieq(&mut self, a: Self::I, b: Self::I) -> Self::M;
    fn and(&mut self, a: Self::M, b: Self::M) -> Self::M;
    fn or(&mut self, a: Self::M, b: Self::M) -> Self::M;
    fn not(&mut self, a: Self::M) -> Self::M;
    /// Where `m`, `a`; elsewhere `b`.
    fn select(&mut self, m: Self::M, a: Self::F, b: Self::F) -> Self::F;
    /// The bits of a float.
    fn bits(&mut self, a: Self::F) -> Self::I;
    /// The float with these bits.
    fn float(&mut self, a: Self::I) -> Self::F;
    fn iadd(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn isub(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn iand(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn ixor(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn shl(&mut self, a: Self::I, n: u8) -> Self::I;
    /// Arithmetic shift right.
    fn sar(&mut self, a: Self::I, n: u8) -> Self::I;
}

/// A function's value where its arguments are ordinary, and where they are not (`edge`): there
/// the value is meaningless and the scalar function gives the result.
pub struct Part<A: Arith> {
    pub value: A::F,
    pub edge: A::M,
}

/// [`Arith`] on one float, as the interpreter computes.
pub struct Plain;

impl Arith for Plain {
    type F = f32;
    type I = i32;
    type M = bool;
    fn fconst(&mut self, x: f32) -> f32 {
        x
    }
    fn iconst(&mut self, n: i32) -> i32 {
        n
    }
    fn add(&mut self, a: f32, b: f32) -> f32 {
        a + b
    }
    fn sub(&mut self, a: f32, b: f32) -> f32 {
        a - b
    }
    fn mul(&mut self, a: f32, b: f32) -> f32 {
        a * b
    }
    fn div(&mut self, a: f32, b: f32) -> f32 {
        a / b
    }
    fn lt(&mut self, a: f32, b: f32) -> bool {
        a < b
    }
    fn eq(&mut self, a: f32, b: f32) -> bool {
        a == b
    }
    fn ieq(&mut self, a: i32, b: i32) -> bool {
        a == b
    }
    fn and(&mut self, a: bool, b: bool) -> bool {
        a && b
    }
    fn or(&mut self, a: bool, b: bool) -> bool {
        a || b
    }
    fn not(&mut self, a: bool) -> bool {
        !a
    }
    fn select(&mut self, m: bool, a: f32, b: f32) -> f32 {
        if m { a } else { b }
    }
    fn bits(&mut self, a: f32) -> i32 {
        a.to_bits() as i32
    }
    fn float(&mut self, a: i32) -> f32 {
        f32::from_bits(a as u32)
    }
    fn iadd(&mut self, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
    fn isub(&mut self, a: i32, b: i32) -> i32 {
        a.wrapping_sub(b)
    }
    fn iand(&mut self, a: i32, b: i32) -> i32 {
        a & b
    }
    fn ixor(&mut self, a: i32, b: i32) -> i32 {
        a ^ b
    }
    fn shl(&mut self, a: i32, n: u8) -> i32 {
        a.wrapping_shl(u32::from(n))
    }
    fn sar(&mut self, a: i32, n: u8) -> i32 {
        a >> n
    }
}

/// `e ^ x`.
pub fn exp_f32(x: f32) -> f32 {
    exp(&mut Plain, x)
}

/// Hyperbolic tangent.
pub fn tanh_f32(x: f32) -> f32 {
    tanh(&mut Plain, x)
}

/// Natural logarithm.
pub fn log_f32(x: f32) -> f32 {
    let part = log_ordinary(&mut Plain, x);
    if part.edge { log::log_edge(x) } else { part.value }
}

/// `x ^ y` (C99's `powf`: `pow(x, 0) = 1` and `pow(1, y) = 1` even for NaN, a negative base
/// only with an integral exponent).
pub fn pow_f32(x: f32, y: f32) -> f32 {
    let part = pow_ordinary(&mut Plain, x, y);
    if part.edge { log::pow_edge(x, y) } else { part.value }
}

/// Sine.
pub fn sin_f32(x: f32) -> f32 {
    let part = sin_ordinary(&mut Plain, x);
    if part.edge { trig::sin_edge(x) } else { part.value }
}

/// Cosine.
pub fn cos_f32(x: f32) -> f32 {
    let part = cos_ordinary(&mut Plain, x);
    if part.edge { trig::cos_edge(x) } else { part.value }
}

// Building blocks shared by the functions.

const SIGN: i32 = i32::MIN;

fn abs<A: Arith>(a: &mut A, x: A::F) -> A::F {
    let bits = a.bits(x);
    let m = a.iconst(i32::MAX);
    let b = a.iand(bits, m);
    a.float(b)
}

/// `x` with the sign bit of `from` flipped into it.
fn flip_sign<A: Arith>(a: &mut A, x: A::F, sign: A::I) -> A::F {
    let bits = a.bits(x);
    let b = a.ixor(bits, sign);
    a.float(b)
}

/// The polynomial `c[0] + c[1] x + ...` (at most 8 coefficients) by Estrin's scheme: pairs
/// `c[2i] + c[2i+1] x`, then pairs of those with x^2, then with x^4, so the longest chain of
/// dependent operations is 2 log2(n) long instead of Horner's 2n (the JIT's code is bound by
/// that latency).
fn poly<A: Arith>(a: &mut A, x: A::F, c: &[f32]) -> A::F {
    let pair = |a: &mut A, i: usize| -> Option<A::F> {
        let c0 = a.fconst(*c.get(2 * i)?);
        Some(match c.get(2 * i + 1) {
            Some(&c1) => {
                let c1 = a.fconst(c1);
                let p = a.mul(c1, x);
                a.add(c0, p)
            }
            None => c0,
        })
    };
    let terms = [pair(a, 0), pair(a, 1), pair(a, 2), pair(a, 3)];
    let x2 = a.mul(x, x);
    let join = |a: &mut A, lo: Option<A::F>, hi: Option<A::F>, power: A::F| match (lo, hi) {
        (Some(lo), Some(hi)) => {
            let p = a.mul(hi, power);
            Some(a.add(lo, p))
        }
        (lo, _) => lo,
    };
    let low = join(a, terms[0], terms[1], x2);
    if terms[2].is_none() {
        return low.unwrap_or(x);
    }
    let high = join(a, terms[2], terms[3], x2);
    let x4 = a.mul(x2, x2);
    join(a, low, high, x4).unwrap_or(x)
}

/// 1.5 * 2^23: adding it rounds a float of magnitude below 2^22 to an integer (to nearest,
/// ties to even), which the low bits of the sum hold.
const ROUNDER: f32 = 12_582_912.0;

/// `x` rounded to the nearest integer, as a float and as an int (|x| < 2^22).
fn round<A: Arith>(a: &mut A, x: A::F) -> (A::F, A::I) {
    let rounder = a.fconst(ROUNDER);
    let t = a.add(x, rounder);
    let kf = a.sub(t, rounder);
    let tb = a.bits(t);
    let rb = a.iconst(ROUNDER.to_bits() as i32);
    let k = a.isub(tb, rb);
    (kf, k)
}

/// The int `k` as a float (|k| < 2^22).
fn to_float<A: Arith>(a: &mut A, k: A::I) -> A::F {
    let rb = a.iconst(ROUNDER.to_bits() as i32);
    let t = a.iadd(k, rb);
    let t = a.float(t);
    let rounder = a.fconst(ROUNDER);
    a.sub(t, rounder)
}

/// 2 ^ k for an int k in [-126, 127].
fn pow2i<A: Arith>(a: &mut A, k: A::I) -> A::F {
    let bias = a.iconst(127);
    let e = a.iadd(k, bias);
    let e = a.shl(e, 23);
    a.float(e)
}

/// `p * 2 ^ k` for k in [-252, 254], rounded once: in two factors, each a normal float.
fn scale<A: Arith>(a: &mut A, p: A::F, k: A::I) -> A::F {
    let k1 = a.sar(k, 1);
    let k2 = a.isub(k, k1);
    let s1 = pow2i(a, k1);
    let s2 = pow2i(a, k2);
    let p = a.mul(p, s1);
    a.mul(p, s2)
}

/// `x` where `x` lies in [lo, hi], else the nearer bound; NaN stays NaN.
fn clamp<A: Arith>(a: &mut A, x: A::F, lo: f32, hi: f32) -> A::F {
    let (lo, hi) = (a.fconst(lo), a.fconst(hi));
    let above = a.lt(hi, x);
    let x = a.select(above, hi, x);
    let below = a.lt(x, lo);
    a.select(below, lo, x)
}

/// `x` split into a high part of 12 significant bits and the exact rest: their products with
/// another split float are exact.
fn split<A: Arith>(a: &mut A, x: A::F) -> (A::F, A::F) {
    let bits = a.bits(x);
    let mask = a.iconst(-4096);
    let hb = a.iand(bits, mask);
    let hi = a.float(hb);
    (hi, a.sub(x, hi))
}

/// `x * y` as a rounded product and its exact error (Dekker), barring overflow and underflow.
fn two_prod<A: Arith>(a: &mut A, x: A::F, y: A::F) -> (A::F, A::F) {
    let p = a.mul(x, y);
    let (xh, xl) = split(a, x);
    let (yh, yl) = split(a, y);
    let hh = a.mul(xh, yh);
    let hl = a.mul(xh, yl);
    let lh = a.mul(xl, yh);
    let ll = a.mul(xl, yl);
    let e = a.sub(hh, p);
    let e = a.add(e, hl);
    let e = a.add(e, lh);
    (p, a.add(e, ll))
}

/// `x + y` as a rounded sum and its exact error, given |x| >= |y| or x = 0 (Dekker).
fn fast_two_sum<A: Arith>(a: &mut A, x: A::F, y: A::F) -> (A::F, A::F) {
    let s = a.add(x, y);
    let t = a.sub(s, x);
    (s, a.sub(y, t))
}

/// `x + y` as a rounded sum and its exact error, for any x and y (Knuth).
fn two_sum<A: Arith>(a: &mut A, x: A::F, y: A::F) -> (A::F, A::F) {
    let s = a.add(x, y);
    let bb = a.sub(s, x);
    let sb = a.sub(s, bb);
    let ex = a.sub(x, sb);
    let ey = a.sub(y, bb);
    (s, a.add(ex, ey))
}
