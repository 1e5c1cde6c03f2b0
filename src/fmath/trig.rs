//! `sin` and `cos`: x = k π/2 + r with |r| <= π/4, r kept as a pair of floats (so that x near
//! a multiple of π/2 keeps its digits), then a polynomial for sin r or cos r by k mod 4.
//! Below [`FAST_LIMIT`] the reduction subtracts π/2 in four parts (Cody and Waite); above it,
//! the scalar path multiplies by 2/π to 96 bits in integer arithmetic (Payne and Hanek).

use super::{Arith, Part, Plain, abs, fast_two_sum, flip_sign, poly, round, two_sum};

/// Below this magnitude k < 2^10, and the Cody-Waite reduction is exact enough.
const FAST_LIMIT: f32 = 1600.0;
const TWO_OVER_PI: f32 = std::f32::consts::FRAC_2_PI;
/// -π/2 in four parts; the first three have 14 significant bits, so `k * PIO2[i]` is exact
/// for |k| < 2^10.
const MINUS_PIO2: [f32; 4] = [-1.5708008, 4.454516e-6, -6.077272e-11, 1.7151245e-15];
/// sin r = r + r z S(z), z = r^2, on [0, π/4] (relative error 2^-28.1).
const SIN_S: [f32; 3] = [-0.16666655, 0.008332178, -0.000195173];
/// cos r = 1 - z/2 + z^2 C(z) on [0, π/4].
const COS_C: [f32; 3] = [0.041666653, -0.0013887654, 2.4463838e-5];

/// x = k π/2 + rh + rl, for |x| < FAST_LIMIT.
fn reduce<A: Arith>(a: &mut A, x: A::F) -> (A::I, A::F, A::F) {
    let c = a.fconst(TWO_OVER_PI);
    let t = a.mul(x, c);
    let (kf, k) = round(a, t);
    let part = |a: &mut A, i: usize| {
        let c = a.fconst(MINUS_PIO2[i]);
        a.mul(kf, c)
    };
    let p1 = part(a, 0);
    let t = a.add(x, p1);
    let p2 = part(a, 1);
    let (rh, rl) = two_sum(a, t, p2);
    let p3 = part(a, 2);
    let (rh, e) = two_sum(a, rh, p3);
    let rl = a.add(rl, e);
    let p4 = part(a, 3);
    let rl = a.add(rl, p4);
    let (rh, rl) = fast_two_sum(a, rh, rl);
    (k, rh, rl)
}

/// sin(q π/2 + r), r = rh + rl.
fn eval<A: Arith>(a: &mut A, q: A::I, rh: A::F, rl: A::F) -> A::F {
    let z = a.mul(rh, rh);
    // sin r = rh + (rh z S(z) + rl)
    let s = poly(a, z, &SIN_S);
    let rz = a.mul(rh, z);
    let s = a.mul(rz, s);
    let s = a.add(s, rl);
    let sin = a.add(rh, s);
    // cos r = w + ((1 - w) - z/2 + (z^2 C(z) - rh rl)), w = 1 - z/2
    let c = poly(a, z, &COS_C);
    let zz = a.mul(z, z);
    let c = a.mul(zz, c);
    let rr = a.mul(rh, rl);
    let c = a.sub(c, rr);
    let half = a.fconst(0.5);
    let hz = a.mul(half, z);
    let one = a.fconst(1.0);
    let w = a.sub(one, hz);
    let t = a.sub(one, w);
    let t = a.sub(t, hz);
    let t = a.add(t, c);
    let cos = a.add(w, t);
    let one_i = a.iconst(1);
    let odd = a.iand(q, one_i);
    let odd = a.ieq(odd, one_i);
    let v = a.select(odd, cos, sin);
    let two = a.iconst(2);
    let half_turn = a.iand(q, two);
    let sign = a.shl(half_turn, 30);
    flip_sign(a, v, sign)
}

fn sin_cos<A: Arith>(a: &mut A, x: A::F, quarter: i32) -> Part<A> {
    let ax = abs(a, x);
    let limit = a.fconst(FAST_LIMIT);
    let ok = a.lt(ax, limit);
    let edge = a.not(ok);
    let (k, rh, rl) = reduce(a, x);
    let quarter = a.iconst(quarter);
    let q = a.iadd(k, quarter);
    Part { value: eval(a, q, rh, rl), edge }
}

/// sin x for |x| < 1600; other lanes (and NaN) are edges.
pub fn sin_ordinary<A: Arith>(a: &mut A, x: A::F) -> Part<A> {
    let part = sin_cos(a, x, 0);
    // sin(±0) = ±0, which the sum above turns into +0.
    let zero = a.fconst(0.0);
    let is_zero = a.eq(x, zero);
    Part { value: a.select(is_zero, x, part.value), edge: part.edge }
}

/// cos x for |x| < 1600; other lanes (and NaN) are edges. cos x = sin(x + π/2).
pub fn cos_ordinary<A: Arith>(a: &mut A, x: A::F) -> Part<A> {
    sin_cos(a, x, 1)
}

pub(super) fn sin_edge(x: f32) -> f32 {
    edge(x, 0)
}

pub(super) fn cos_edge(x: f32) -> f32 {
    edge(x, 1)
}

fn edge(x: f32, quarter: i32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x.is_infinite() {
        return f32::NAN;
    }
    let (k, rh, rl) = reduce_huge(x);
    eval(&mut Plain, k.wrapping_add(quarter), rh, rl)
}

/// The bits of 2/π after the binary point, 32 at a time.
const TWO_OVER_PI_BITS: [u32; 10] =
    [0xA2F9_836E, 0x4E44_1529, 0xFC27_57D1, 0xF534_DDC0, 0xDB62_9599, 0x3C43_9041, 0xFE51_63AB, 0xDEBB_C561, 0xB724_6E3A, 0x424D_D2E0];

/// x = k π/2 + rh + rl for a finite x of any size (Payne and Hanek): x = M 2^e with an integer
/// M < 2^24; the bits of 2/π that make M 2^e (2/π) a multiple of 4 do not matter, so only 96
/// bits from there on are multiplied by M.
fn reduce_huge(x: f32) -> (i32, f32, f32) {
    let bits = x.to_bits();
    let biased = ((bits >> 23) & 0xFF) as i32;
    if biased == 0 {
        // Only reached for small x when called directly; the fast path covers them.
        let (k, rh, rl) = reduce(&mut Plain, x);
        return (k, rh, rl);
    }
    let m = u128::from((bits & 0x007F_FFFF) | 0x0080_0000);
    let e = biased - 150;
    // Bit j (from 1) of 2/π weighs 2^(e - j) in x 2/π: start at j = e - 1, where it weighs 2.
    let start = (e - 1).max(1) as usize;
    let (word, off) = ((start - 1) / 32, (start - 1) % 32);
    let mut window: u128 = 0;
    for w in &TWO_OVER_PI_BITS[word..word + 4] {
        window = (window << 32) | u128::from(*w);
    }
    if off > 0 {
        window = (window << off) | (u128::from(TWO_OVER_PI_BITS[word + 4]) >> (32 - off));
    }
    let product = m * (window >> 32);
    // x 2/π = product 2^-shift (mod 4)
    let shift = start as i32 + 95 - e;
    let whole = (product >> shift) as i32 & 3;
    let frac = product & ((1u128 << shift) - 1);
    let (k, frac) = if frac >> (shift - 1) == 1 { (whole + 1, frac as i128 - (1i128 << shift)) } else { (whole, frac as i128) };
    let f = frac as f64 * f64::from_bits(((1023 - shift) as u64) << 52);
    let r = f * std::f64::consts::FRAC_PI_2;
    let rh = r as f32;
    let rl = (r - f64::from(rh)) as f32;
    if x < 0.0 { (k.wrapping_neg(), -rh, -rl) } else { (k, rh, rl) }
}
