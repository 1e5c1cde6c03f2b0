//! `exp` and `tanh`, total in vector form: over- and underflow come from clamping the argument,
//! so no lane needs the scalar path.

use super::{Arith, abs, clamp, poly, round, scale};

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 in two parts; the first has 9 significant bits, so `k * LN2_HI` is exact for |k| < 2^15.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// e^r = 1 + r + r^2 Q(r) on [-ln2/2, ln2/2] (relative error 2^-28.3).
const EXP_Q: [f32; 5] = [0.49999994, 0.16666521, 0.04166839, 0.00836871, 0.0013814613];

/// e^r for |r| <= ln2 / 2 (a little more is fine).
pub(super) fn exp_reduced<A: Arith>(a: &mut A, r: A::F) -> A::F {
    let q = poly(a, r, &EXP_Q);
    let r2 = a.mul(r, r);
    let t = a.mul(r2, q);
    let t = a.add(r, t);
    let one = a.fconst(1.0);
    a.add(one, t)
}

/// e^x: x = k ln2 + r with |r| <= ln2/2 (Cody and Waite), e^x = 2^k e^r.
pub fn exp<A: Arith>(a: &mut A, x: A::F) -> A::F {
    // Below -104, e^x rounds to 0; above 89, to infinity. The clamp keeps k in [-150, 129].
    let x = clamp(a, x, -104.0, 89.0);
    let log2e = a.fconst(LOG2E);
    let t = a.mul(x, log2e);
    let (kf, k) = round(a, t);
    let hi = a.fconst(LN2_HI);
    let khi = a.mul(kf, hi);
    let r = a.sub(x, khi);
    let lo = a.fconst(LN2_LO);
    let klo = a.mul(kf, lo);
    let r = a.sub(r, klo);
    let p = exp_reduced(a, r);
    scale(a, p, k)
}

/// Below this, tanh x = x + x^3 T(x^2); above, 1 - 2 / (e^2x + 1).
const TANH_SMALL: f32 = 0.625;
/// tanh x = x + x^3 T(x^2) on [0, 0.625] (relative error 2^-27.9).
const TANH_T: [f32; 5] = [-0.33333284, 0.13331491, -0.053743497, 0.020650588, -0.0057170456];

/// Hyperbolic tangent.
pub fn tanh<A: Arith>(a: &mut A, x: A::F) -> A::F {
    // tanh is odd: computed for |x|, then given the sign of x (-0 included).
    let ax = abs(a, x);
    // Small: odd polynomial.
    let z = a.mul(ax, ax);
    let t = poly(a, z, &TANH_T);
    let xz = a.mul(ax, z);
    let t = a.mul(xz, t);
    let small = a.add(ax, t);
    // Large: from e^2|x|, which the clamp keeps finite (tanh 9 rounds to 1).
    let c = clamp(a, ax, 0.0, 9.0);
    let two = a.fconst(2.0);
    let c2 = a.mul(c, two);
    let e = exp(a, c2);
    let one = a.fconst(1.0);
    let d = a.add(e, one);
    let q = a.div(two, d);
    let large = a.sub(one, q);
    let sign = {
        let bits = a.bits(x);
        let m = a.iconst(super::SIGN);
        a.iand(bits, m)
    };
    let bound = a.fconst(TANH_SMALL);
    let is_small = a.lt(ax, bound);
    let t = a.select(is_small, small, large);
    super::flip_sign(a, t, sign)
}
