//! [`Arith`] on arrays of `N` floats: the interpreter's tensor code runs a function on many
//! elements at once this way, its independent lanes overlapping where one float at a time would
//! wait on each operation. Every lane computes what [`super::Plain`] computes, bit for bit.

use super::{Arith, Plain};

/// [`Arith`] on `N` lanes, each as [`Plain`].
pub struct Lanes<const N: usize>;

fn each<T: Copy, U, const N: usize>(a: [T; N], f: impl Fn(T) -> U) -> [U; N] {
    a.map(f)
}

fn pair<T: Copy, U, const N: usize>(a: [T; N], b: [T; N], f: impl Fn(T, T) -> U) -> [U; N] {
    std::array::from_fn(|i| f(a[i], b[i]))
}

impl<const N: usize> Arith for Lanes<N> {
    type F = [f32; N];
    type I = [i32; N];
    type M = [bool; N];
    fn fconst(&mut self, x: f32) -> [f32; N] {
        [x; N]
    }
    fn iconst(&mut self, n: i32) -> [i32; N] {
        [n; N]
    }
    fn add(&mut self, a: [f32; N], b: [f32; N]) -> [f32; N] {
        pair(a, b, |a, b| Plain.add(a, b))
    }
    fn sub(&mut self, a: [f32; N], b: [f32; N]) -> [f32; N] {
        pair(a, b, |a, b| Plain.sub(a, b))
    }
    fn mul(&mut self, a: [f32; N], b: [f32; N]) -> [f32; N] {
        pair(a, b, |a, b| Plain.mul(a, b))
    }
    fn div(&mut self, a: [f32; N], b: [f32; N]) -> [f32; N] {
        pair(a, b, |a, b| Plain.div(a, b))
    }
    fn lt(&mut self, a: [f32; N], b: [f32; N]) -> [bool; N] {
        pair(a, b, |a, b| Plain.lt(a, b))
    }
    fn eq(&mut self, a: [f32; N], b: [f32; N]) -> [bool; N] {
        pair(a, b, |a, b| Plain.eq(a, b))
    }
    fn ieq(&mut self, a: [i32; N], b: [i32; N]) -> [bool; N] {
        pair(a, b, |a, b| Plain.ieq(a, b))
    }
    fn and(&mut self, a: [bool; N], b: [bool; N]) -> [bool; N] {
        pair(a, b, |a, b| a & b)
    }
    fn or(&mut self, a: [bool; N], b: [bool; N]) -> [bool; N] {
        pair(a, b, |a, b| a | b)
    }
    fn not(&mut self, a: [bool; N]) -> [bool; N] {
        each(a, |a| !a)
    }
    fn select(&mut self, m: [bool; N], a: [f32; N], b: [f32; N]) -> [f32; N] {
        std::array::from_fn(|i| Plain.select(m[i], a[i], b[i]))
    }
    fn bits(&mut self, a: [f32; N]) -> [i32; N] {
        each(a, |a| Plain.bits(a))
    }
    fn float(&mut self, a: [i32; N]) -> [f32; N] {
        each(a, |a| Plain.float(a))
    }
    fn iadd(&mut self, a: [i32; N], b: [i32; N]) -> [i32; N] {
        pair(a, b, |a, b| Plain.iadd(a, b))
    }
    fn isub(&mut self, a: [i32; N], b: [i32; N]) -> [i32; N] {
        pair(a, b, |a, b| Plain.isub(a, b))
    }
    fn iand(&mut self, a: [i32; N], b: [i32; N]) -> [i32; N] {
        pair(a, b, |a, b| Plain.iand(a, b))
    }
    fn ixor(&mut self, a: [i32; N], b: [i32; N]) -> [i32; N] {
        pair(a, b, |a, b| Plain.ixor(a, b))
    }
    fn shl(&mut self, a: [i32; N], n: u8) -> [i32; N] {
        each(a, |a| Plain.shl(a, n))
    }
    fn sar(&mut self, a: [i32; N], n: u8) -> [i32; N] {
        each(a, |a| Plain.sar(a, n))
    }
}

/// Lanes at a time.
const N: usize = 8;

/// `x(i) ^ y(i)` for `i` in `0..n`, as [`super::pow_f32`] computes each: lanes of ordinary
/// arguments together, the others one by one.
pub fn pow_each(n: usize, x: impl Fn(usize) -> f32, y: impl Fn(usize) -> f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    let whole = n - n % N;
    for start in (0..whole).step_by(N) {
        let (xs, ys): ([f32; N], [f32; N]) = (std::array::from_fn(|i| x(start + i)), std::array::from_fn(|i| y(start + i)));
        let part = super::pow_ordinary(&mut Lanes::<N>, xs, ys);
        out.extend((0..N).map(|i| if part.edge[i] { super::log::pow_edge(xs[i], ys[i]) } else { part.value[i] }));
    }
    out.extend((whole..n).map(|i| super::pow_f32(x(i), y(i))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_give_the_scalar_function_bit_for_bit() {
        // Ordinary arguments and every kind of edge, in lanes of mixed kinds.
        let bases = [0.5f32, 2.0, 1e-30, 3.7e7, 0.0, -0.0, -2.0, f32::INFINITY, f32::NAN, 1.0, 1e-40, 0.999_999];
        let exps = [-0.5f32, 0.8, 3.0, -1.0, 0.0, f32::NAN, 200.0, -200.0, 1.5, f32::NEG_INFINITY, 0.25, 7.0, -3.0];
        let (n, m) = (bases.len() * exps.len(), exps.len());
        let got = pow_each(n, |i| bases[i / m], |i| exps[i % m]);
        for (i, g) in got.iter().enumerate() {
            let want = super::super::pow_f32(bases[i / m], exps[i % m]);
            assert_eq!(g.to_bits(), want.to_bits(), "{} ^ {}", bases[i / m], exps[i % m]);
        }
    }
}
