#!/usr/bin/python3
"""Derives the GELU polynomial of src/engine/ops/vec_kern.h (engine/ops, not run by make goldens).

GELU(x) = x Phi(x) and, for x < 0, x Phi(x) = x 0.5 erfc(z) with z = |x|/sqrt2. With
t = 2sqrt2 / (2sqrt2 + |x|) = 1 / (1 + z/2):  erfc(z) = t exp(-z^2 + P(t)), where
P(t) = log(erfc(z)/t) + z^2 is smooth on t in (0, 1]. This fits P by Chebyshev interpolation in
(t - mid) on |x| <= 14.8 (beyond, x Phi(x) is 0 or x in float) with mpmath at 40 digits, prints
the fit's maximum error in exact arithmetic and the coefficients rounded to float32 (Horner order
is c[11] ... c[0], as in vec_kern.h).

    /usr/bin/python3 tests/reference/ops_fit_gelu.py
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40
C = 2 * mp.sqrt(2)
DEG = 11
X_MAX = mp.mpf("14.8")


def p_of_t(t):
    ax = C / t - C
    z = ax / mp.sqrt(2)
    return mp.log(mp.erfc(z) / t) + z * z


def main():
    a, b = C / (C + X_MAX), mp.mpf(1)
    mid, half = (a + b) / 2, (b - a) / 2
    n = DEG + 1
    nodes = [mid + half * mp.cos(mp.pi * (k + 0.5) / n) for k in range(n)]
    vand = mp.matrix([[(x - mid) ** j for j in range(n)] for x in nodes])
    c = mp.lu_solve(vand, mp.matrix([p_of_t(x) for x in nodes]))
    err = 0
    for i in range(4001):
        t = a + (b - a) * i / 4000
        err = max(err, abs(sum(c[j] * (t - mid) ** j for j in range(n)) - p_of_t(t)))
    print("degree %d on |x| <= %s: max |P_fit - P| = %s (relative error of erfc)"
          % (DEG, X_MAX, mp.nstr(err, 3)))
    print("mid %.9g" % np.float32(float(mid)))
    for j in range(n - 1, -1, -1):
        print("c[%d] = %.9g" % (j, np.float32(float(c[j]))))


if __name__ == "__main__":
    main()
