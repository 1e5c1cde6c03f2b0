#!/usr/bin/env python3
"""The polynomial coefficients of `src/fmath/`, by the Remez exchange algorithm.

Each polynomial P(t) of degree n minimizes max |w(t) (P(t) - g(t))| over [a, b], computed in
50-digit decimal arithmetic, then rounded to float32 (the printed values are exact float32
numbers). Python's standard library only: `python3 docs/fmath_coefficients.py`.
"""

import struct
from decimal import Decimal as D, getcontext

getcontext().prec = 50
ONE = D(1)
TWO = D(2)


def pi():
    # Machin: pi = 16 atan(1/5) - 4 atan(1/239)
    def atan_inv(n):
        n = D(n)
        x, total, k, sign = ONE / n, D(0), 1, 1
        term = x
        while term > D(10) ** -60:
            total += sign * term / k
            x /= n * n
            term = x
            k += 2
            sign = -sign
        return total
    return 16 * atan_inv(5) - 4 * atan_inv(239)


PI = pi()
LN2 = TWO.ln()


def sin(x):
    total, term, k = D(0), x, 1
    while abs(term) > D(10) ** -60:
        total += term
        term = -term * x * x / ((k + 1) * (k + 2))
        k += 2
    return total


def cos(x):
    total, term, k = D(0), ONE, 0
    while abs(term) > D(10) ** -60:
        total += term
        term = -term * x * x / ((k + 1) * (k + 2))
        k += 2
    return total


def tanh(x):
    e = (2 * x).exp()
    return (e - 1) / (e + 1)


def atanh(s):
    return ((1 + s) / (1 - s)).ln() / 2


def solve(m, v):
    """Gaussian elimination with partial pivoting."""
    n = len(v)
    a = [row[:] + [v[i]] for i, row in enumerate(m)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(a[r][c]))
        a[c], a[p] = a[p], a[c]
        for r in range(n):
            if r != c:
                f = a[r][c] / a[c][c]
                for k in range(c, n + 1):
                    a[r][k] -= f * a[c][k]
    return [a[i][n] / a[i][i] for i in range(n)]


def powers(x, n):
    out = [ONE]
    for _ in range(n):
        out.append(out[-1] * x)
    return out


def horner(c, x):
    acc = D(0)
    for cj in reversed(c):
        acc = acc * x + cj
    return acc


def remez(g, w, a, b, n, iterations=30):
    """Coefficients c0..cn of P minimizing max |w (P - g)| on [a, b], and that maximum."""
    a, b = D(a), D(b)
    # Chebyshev points as the first reference.
    xs = [(a + b) / 2 - (b - a) / 2 * cos(PI * i / (n + 1)) for i in range(n + 2)]
    err = D(0)
    for _ in range(iterations):
        # P(x_i) - g(x_i) = (-1)^i E / w(x_i)
        m = [[powers(x, n)[j] for j in range(n + 1)] + [D((-1) ** i) / w(x)] for i, x in enumerate(xs)]
        sol = solve(m, [g(x) for x in xs])
        c, err = sol[:-1], abs(sol[-1])
        e = lambda x: w(x) * (horner(c, x) - g(x))
        # New reference: the extrema of the error between sign changes, on a fine grid.
        grid = [a + (b - a) * i / 2000 for i in range(2001)]
        vals = [e(x) for x in grid]
        ext = []
        start = 0
        for i in range(1, len(grid) + 1):
            if i == len(grid) or (vals[i] > 0) != (vals[start] > 0):
                best = max(range(start, i), key=lambda k: abs(vals[k]))
                ext.append(grid[best])
                start = i
        if len(ext) < n + 2:
            break
        # Keep n + 2 alternating extrema with the largest errors.
        while len(ext) > n + 2:
            if abs(e(ext[0])) < abs(e(ext[-1])):
                ext.pop(0)
            else:
                ext.pop()
        xs = ext
    return c, err


def f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def show(name, coeffs, err):
    print(f"{name}: max weighted error {float(err):.3e} (2^{float(err.ln() / LN2):.1f})")
    for j, c in enumerate(coeffs):
        print(f"    c{j} = {f32(c)!r}  # {float(c)!r}")


def series(f, small, x, tol=D("1e-4")):
    return small(x) if abs(x) < tol else f(x)


if __name__ == "__main__":
    half_ln2 = LN2 / 2
    # e^r = 1 + r + r^2 Q(r), r in [-ln2/2, ln2/2]; relative error of e^r.
    q = lambda r: series(lambda r: (r.exp() - 1 - r) / (r * r), lambda r: ONE / 2 + r / 6 + r * r / 24 + r**3 / 120, r)
    show("exp Q", *remez(q, lambda r: r * r / r.exp(), -half_ln2, half_ln2, 4))
    # 2^r = 1 + r P(r), r in [-1/2, 1/2]; relative error of 2^r.
    p = lambda r: series(lambda r: ((r * LN2).exp() - 1) / r, lambda r: LN2 + LN2**2 * r / 2 + LN2**3 * r * r / 6, r)
    show("exp2 P", *remez(p, lambda r: r / (r * LN2).exp() if r != 0 else ONE, -D("0.5"), D("0.5"), 6))
    # log(1 + f) = 2 atanh(s) = 2 s + s R(z), z = s^2, R(z) = z (c0 + c1 z + ...), s^2 <= z_max.
    z_max = ((TWO.sqrt() - 1) / (TWO.sqrt() + 1)) ** 2
    r = lambda z: series(lambda z: (2 * atanh(z.sqrt()) / z.sqrt() - 2) / z, lambda z: TWO / 3 + 2 * z / 5 + 2 * z * z / 7, z)
    show("log R/z", *remez(r, lambda z: z / 2, D("1e-30"), z_max, 2))
    # pow's log: 2 atanh(s) = 2 s + (2/3) s^3 + s^5 U(z); weight s^5 / (2 s) = z^2 / 2.
    u = lambda z: series(lambda z: (2 * atanh(z.sqrt()) / z.sqrt() - 2 - 2 * z / 3) / (z * z), lambda z: TWO / 5 + 2 * z / 7 + 2 * z * z / 9, z)
    show("pow log U", *remez(u, lambda z: z * z / 2, D("1e-30"), z_max, 2))
    # sin r = r + r^3 S(z), z = r^2, r in [0, pi/4]: relative error of sin.
    quarter = PI / 4
    s = lambda z: series(lambda z: (sin(z.sqrt()) - z.sqrt()) / (z * z.sqrt()), lambda z: -ONE / 6 + z / 120 - z * z / 5040, z)
    show("sin S", *remez(s, lambda z: z, D("1e-30"), quarter**2, 2))
    # cos r = 1 - z/2 + z^2 C(z): error relative to cos (>= 0.707).
    c = lambda z: series(lambda z: (cos(z.sqrt()) - 1 + z / 2) / (z * z), lambda z: ONE / 24 - z / 720 + z * z / 40320, z)
    show("cos C", *remez(c, lambda z: z * z, D("1e-30"), quarter**2, 2))
    # tanh x = x + x^3 T(z), z = x^2, x in [0, 0.625]: relative error of tanh.
    t = lambda z: series(lambda z: (tanh(z.sqrt()) - z.sqrt()) / (z * z.sqrt()), lambda z: -ONE / 3 + 2 * z / 15 - 17 * z * z / 315, z)
    show("tanh T", *remez(t, lambda z: z, D("1e-30"), D("0.625") ** 2, 4))
