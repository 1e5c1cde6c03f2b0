//! `log` and `pow`. Both start from x = 2^k m with m in [sqrt(1/2), sqrt(2)) and
//! s = (m - 1) / (m + 1), where log m = 2 atanh(s) = 2s + 2s^3/3 + ... (|s| <= 0.1716).
//! `pow` keeps log2 x to about 40 bits as a pair of floats, because its error is multiplied by
//! y: x^y = 2^(y log2 x).

use super::{Arith, Part, Plain, abs, fast_two_sum, poly, pow2i, round, scale, to_float, two_prod};

/// ln 2 in two parts; the first has 16 significant bits, so `k * LN2_HI` is exact for |k| < 2^8.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// Subtracting these bits from a float's puts its significand in [sqrt(1/2), sqrt(2)).
const SQRT_HALF_BITS: i32 = 0x3F35_04F3;
/// 2 atanh(s) = 2s + s z R(z), z = s^2 (absolute error of R 2^-30.2).
const LOG_R: [f32; 3] = [0.66666776, 0.39977542, 0.2987173];
/// 2 atanh(s) = 2s + 2s^3/3 + s^5 U(z) (error 2^-36.8 relative to 2s).
const POW_U: [f32; 3] = [0.40000153, 0.28547135, 0.23418576];
/// 2/3 and 1/ln2 as pairs of floats.
const TWO_THIRDS: (f32, f32) = (0.666_666_7, -1.986_821_6e-8);
const INV_LN2: (f32, f32) = (std::f32::consts::LOG2_E, 1.925_963e-8);
/// 2^r = 1 + r P(r) on [-1/2, 1/2] (relative error 2^-33.7).
const EXP2_P: [f32; 7] = [std::f32::consts::LN_2, 0.2402265, 0.055504113, 0.009618016, 0.0013332817, 0.00015473737, 1.5492598e-5];

/// x = 2^k m for a normal positive x: (k, m) with m in [sqrt(1/2), sqrt(2)).
fn decompose<A: Arith>(a: &mut A, x: A::F) -> (A::I, A::F) {
    let b = a.bits(x);
    let off = a.iconst(SQRT_HALF_BITS);
    let ix = a.isub(b, off);
    let k = a.sar(ix, 23);
    let mask = a.iconst(0x007F_FFFF);
    let mb = a.iand(ix, mask);
    let mb = a.iadd(mb, off);
    (k, a.float(mb))
}

/// Whether x is a normal positive float (not NaN, not infinite).
fn normal_positive<A: Arith>(a: &mut A, x: A::F) -> A::M {
    let inf = a.fconst(f32::INFINITY);
    let finite = a.lt(x, inf);
    let min = a.fconst(f32::MIN_POSITIVE);
    let tiny = a.lt(x, min);
    let not_tiny = a.not(tiny);
    a.and(finite, not_tiny)
}

/// ln(2^extra x) for a normal positive x.
fn log_normal<A: Arith>(a: &mut A, x: A::F, extra: i32) -> A::F {
    let (k, m) = decompose(a, x);
    let one = a.fconst(1.0);
    let f = a.sub(m, one);
    let two = a.fconst(2.0);
    let d = a.add(two, f);
    let s = a.div(f, d);
    let z = a.mul(s, s);
    let r = poly(a, z, &LOG_R);
    let r = a.mul(z, r);
    let half = a.fconst(0.5);
    let hf = a.mul(half, f);
    let hfsq = a.mul(hf, f);
    let extra = a.iconst(extra);
    let k = a.iadd(k, extra);
    let kf = to_float(a, k);
    // ln x = k ln2 + f - f^2/2 + s (f^2/2 + R) (as fdlibm arranges it)
    let t = a.add(hfsq, r);
    let t = a.mul(s, t);
    let lo = a.fconst(LN2_LO);
    let klo = a.mul(kf, lo);
    let t = a.add(t, klo);
    let t = a.sub(hfsq, t);
    let t = a.sub(t, f);
    let hi = a.fconst(LN2_HI);
    let khi = a.mul(kf, hi);
    a.sub(khi, t)
}

/// ln x where x is a normal positive float; other lanes are edges.
pub fn log_ordinary<A: Arith>(a: &mut A, x: A::F) -> Part<A> {
    let ok = normal_positive(a, x);
    let edge = a.not(ok);
    Part { value: log_normal(a, x, 0), edge }
}

/// ln x for the arguments [`log_ordinary`] leaves: NaN, negatives, zeros, infinity, subnormals.
pub(super) fn log_edge(x: f32) -> f32 {
    if x.is_nan() {
        x
    } else if x < 0.0 {
        f32::NAN
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        x
    } else {
        log_normal(&mut Plain, x * 8_388_608.0, -23)
    }
}

/// log2(2^extra x) for a normal positive x, as a pair (hi, lo) of floats.
fn log2_pair<A: Arith>(a: &mut A, x: A::F, extra: i32) -> (A::F, A::F) {
    let (k, m) = decompose(a, x);
    let one = a.fconst(1.0);
    let f = a.sub(m, one);
    // s = f / (2 + f) as sh + sl: 2 + f = dh + dl exactly, then the rest of the division.
    let two = a.fconst(2.0);
    let dh = a.add(two, f);
    let dt = a.sub(dh, two);
    let dl = a.sub(f, dt);
    let sh = a.div(f, dh);
    let (p, pe) = two_prod(a, sh, dh);
    let rest = a.sub(f, p);
    let rest = a.sub(rest, pe);
    let sdl = a.mul(sh, dl);
    let rest = a.sub(rest, sdl);
    let sl = a.div(rest, dh);
    // ln m = 2s + (2/3)s^3 + s^5 U(s^2), the middle term as a pair too.
    let (zh, zl) = two_prod(a, sh, sh);
    let (ch, cl) = two_prod(a, zh, sh);
    let zls = a.mul(zl, sh);
    let three = a.fconst(3.0);
    let zh3 = a.mul(zh, three);
    let zsl = a.mul(zh3, sl);
    let t = a.add(zls, zsl);
    let cl = a.add(cl, t);
    let two_thirds = (a.fconst(TWO_THIRDS.0), a.fconst(TWO_THIRDS.1));
    let (th, tl) = mul_pair(a, (ch, cl), two_thirds);
    let u = poly(a, zh, &POW_U);
    let chz = a.mul(ch, zh);
    let tail = a.mul(chz, u);
    let s2h = a.add(sh, sh);
    let s2l = a.add(sl, sl);
    let (ah, al) = fast_two_sum(a, s2h, th);
    let lo = a.add(s2l, tl);
    let lo = a.add(lo, tail);
    let al = a.add(al, lo);
    let (ah, al) = fast_two_sum(a, ah, al);
    // log2 m = ln m / ln 2, then + k.
    let inv_ln2 = (a.fconst(INV_LN2.0), a.fconst(INV_LN2.1));
    let (bh, bl) = mul_pair(a, (ah, al), inv_ln2);
    let extra = a.iconst(extra);
    let k = a.iadd(k, extra);
    let kf = to_float(a, k);
    let (lh, ll) = fast_two_sum(a, kf, bh);
    let ll = a.add(ll, bl);
    fast_two_sum(a, lh, ll)
}

/// (xh + xl)(yh + yl) as a pair of floats (xl yl dropped).
fn mul_pair<A: Arith>(a: &mut A, (xh, xl): (A::F, A::F), (yh, yl): (A::F, A::F)) -> (A::F, A::F) {
    let (h, l) = two_prod(a, xh, yh);
    let c1 = a.mul(xh, yl);
    let c2 = a.mul(xl, yh);
    let c = a.add(c1, c2);
    (h, a.add(l, c))
}

/// 2^(uh + ul) as p 2^k, p in about [sqrt(1/2), sqrt(2)], for |uh| < 2^21.
fn exp2_pair<A: Arith>(a: &mut A, uh: A::F, ul: A::F) -> (A::F, A::I) {
    let (kf, k) = round(a, uh);
    let r = a.sub(uh, kf);
    let r = a.add(r, ul);
    // r (c0 + r Q(r)): the leading term last, for accuracy.
    let q = poly(a, r, &EXP2_P[1..]);
    let q = a.mul(r, q);
    let c0 = a.fconst(EXP2_P[0]);
    let p = a.add(c0, q);
    let p = a.mul(r, p);
    let one = a.fconst(1.0);
    (a.add(one, p), k)
}

/// y (lh + ll) as a pair of floats.
fn times<A: Arith>(a: &mut A, lh: A::F, ll: A::F, y: A::F) -> (A::F, A::F) {
    let (uh, ul) = two_prod(a, y, lh);
    let yl = a.mul(y, ll);
    (uh, a.add(ul, yl))
}

/// The part of x^y that depends on x alone: log2 x as a pair of floats, and whether x is a
/// normal positive float. The JIT computes it once for a base every element shares.
pub struct PowBase<A: Arith> {
    pub hi: A::F,
    pub lo: A::F,
    pub ok: A::M,
}

pub fn pow_base<A: Arith>(a: &mut A, x: A::F) -> PowBase<A> {
    let ok = normal_positive(a, x);
    let (hi, lo) = log2_pair(a, x, 0);
    PowBase { hi, lo, ok }
}

/// x^y where x is a normal positive float, y is finite and 2^-125 < x^y < 2^125; other lanes
/// are edges.
pub fn pow_ordinary<A: Arith>(a: &mut A, x: A::F, y: A::F) -> Part<A> {
    let base = pow_base(a, x);
    pow_with_base(a, &base, y)
}

/// [`pow_ordinary`] from the part that depends on x alone.
pub fn pow_with_base<A: Arith>(a: &mut A, base: &PowBase<A>, y: A::F) -> Part<A> {
    let (uh, ul) = times(a, base.hi, base.lo, y);
    let au = abs(a, uh);
    let bound = a.fconst(125.0);
    let u_ok = a.lt(au, bound);
    let ok = a.and(base.ok, u_ok);
    let edge = a.not(ok);
    let (p, k) = exp2_pair(a, uh, ul);
    let s = pow2i(a, k);
    Part { value: a.mul(p, s), edge }
}

/// x^y for the arguments [`pow_ordinary`] leaves, with C99's special values.
pub(super) fn pow_edge(x: f32, y: f32) -> f32 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if x.is_nan() || y.is_nan() {
        return x + y;
    }
    let y_int = y.is_infinite() || y.trunc() == y;
    if x < 0.0 && x.is_finite() && !y_int {
        return f32::NAN;
    }
    let y_odd = y_int && y.abs() < 16_777_216.0 && (y as i32) % 2 != 0;
    let ax = x.abs();
    let magnitude = if ax == 0.0 {
        if y < 0.0 { f32::INFINITY } else { 0.0 }
    } else if ax.is_infinite() {
        if y < 0.0 { 0.0 } else { f32::INFINITY }
    } else if y.is_infinite() {
        if ax == 1.0 {
            1.0
        } else if (ax > 1.0) == (y > 0.0) {
            f32::INFINITY
        } else {
            0.0
        }
    } else {
        pow_finite(ax, y)
    };
    if x.is_sign_negative() && y_odd { -magnitude } else { magnitude }
}

/// x^y for a positive finite x (subnormal too) and a finite y, into the subnormals and
/// beyond the largest float.
fn pow_finite(x: f32, y: f32) -> f32 {
    let (x, extra) = if x < f32::MIN_POSITIVE { (x * 16_777_216.0, -24) } else { (x, 0) };
    let (lh, ll) = log2_pair(&mut Plain, x, extra);
    let (uh, ul) = times(&mut Plain, lh, ll, y);
    // 2^130 overflows and 2^-152 rounds to zero, whatever the low part.
    if uh.is_nan() || uh >= 130.0 {
        return if uh.is_nan() { f32::NAN } else { f32::INFINITY };
    }
    if uh <= -152.0 {
        return 0.0;
    }
    let (p, k) = exp2_pair(&mut Plain, uh, ul);
    scale(&mut Plain, p, k)
}
