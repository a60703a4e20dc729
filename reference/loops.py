"""The naive Conv3D loop nest, with error-free products and compensated sums (VERIFICATION.md §1).

`accumulate` is plain Python that numba compiles unchanged when it is installed (imported on the
first compiled call, so importing the reference never loads numba); the environment variable
CONV3D_REFERENCE_ENGINE=python|numba|auto (default auto) forces either. Both give
bit-identical results: the compiled version uses no fast-math, so no operation is reordered or
fused, and parallelism only splits independent output elements.

Accuracy (Ogita, Rump and Oishi's Dot2): each output is within 2^-53*|y| + gamma_n(2^-53)^2 * S of
the exact sum, n = K + 1 terms (K products and the bias), S = |bias| + sum |x*w|. Products of
float32 (or narrower) inputs are exact in float64, so the split is skipped for them.
"""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np

ENGINE_VARIABLE = "CONV3D_REFERENCE_ENGINE"

prange = range  # numba.prange once the compiled engine is used: parallel over output rows
_SPLITTER = 134217729.0  # 2^27 + 1, Veltkamp's constant for float64


def accumulate(xpad: np.ndarray, wt: np.ndarray, bias: np.ndarray, strides: tuple,
               dilation: tuple, groups: int, exact_products: bool,
               out: np.ndarray, abs_sum: np.ndarray) -> None:
    """out[n,od,oh,ow,f] = bias[f] + sum_{a,b,c,ci} xpad[n, od*sd+a*dd, ..., g*Cg+ci] * wt[f,a,b,c,ci].

    xpad: zero-padded input (N, Dp, Hp, Wp, C), channels last; wt: kernel as (F, kd, kh, kw, Cg);
    all float64. Writes the compensated sum to `out` and S = |bias| + sum|x*w| to `abs_sum`.
    Non-finite products are summed apart and added last, so NaN and inf propagate as in IEEE
    arithmetic whatever the order. A partial sum beyond float64's range (only float64 inputs
    near 2^1023 reach it) is recorded as that overflow.
    """
    n_batch, d_out, h_out, w_out, filters = out.shape
    _, kd, kh, kw, cg = wt.shape
    fg = filters // groups
    sd, sh, sw = strides
    dd, dh, dw = dilation
    for nd in prange(n_batch * d_out):
        n = nd // d_out
        od = nd % d_out
        for oh in range(h_out):
            for ow in range(w_out):
                for f in range(filters):
                    g = f // fg
                    total = 0.0
                    compensation = 0.0
                    special = 0.0
                    magnitude = 0.0
                    for a in range(kd):
                        for b in range(kh):
                            for c in range(kw):
                                for ci in range(cg):
                                    xv = xpad[n, od * sd + a * dd, oh * sh + b * dh,
                                              ow * sw + c * dw, g * cg + ci]
                                    wv = wt[f, a, b, c, ci]
                                    p = xv * wv
                                    p_err = 0.0
                                    if not exact_products:  # Dekker's TwoProduct, no FMA
                                        t = _SPLITTER * xv
                                        x_hi = t - (t - xv)
                                        x_lo = xv - x_hi
                                        t = _SPLITTER * wv
                                        w_hi = t - (t - wv)
                                        w_lo = wv - w_hi
                                        p_err = x_lo * w_lo - (((p - x_hi * w_hi) - x_lo * w_hi)
                                                               - x_hi * w_lo)
                                        if not math.isfinite(p_err):  # |operand| > 2^995
                                            p_err = 0.0
                                    if not math.isfinite(p):
                                        special += p
                                        continue
                                    s = total + p  # Knuth's branch-free TwoSum
                                    if not math.isfinite(s):  # beyond float64: overflow
                                        special += s
                                        continue
                                    z = s - total
                                    compensation += ((total - (s - z)) + (p - z)) + p_err
                                    total = s
                                    magnitude += abs(p)
                    bf = bias[f]
                    if not math.isfinite(bf):
                        special += bf
                    else:
                        s = total + bf
                        if not math.isfinite(s):
                            special += s
                            s = total
                        z = s - total
                        compensation += (total - (s - z)) + (bf - z)
                        total = s
                        magnitude += abs(bf)
                    out[n, od, oh, ow, f] = (total + compensation) + special
                    abs_sum[n, od, oh, ow, f] = magnitude


def engine() -> str:
    """'numba' or 'python': which implementation `run_accumulate` uses now."""
    wanted = os.environ.get(ENGINE_VARIABLE, "auto").lower()
    if wanted not in ("auto", "numba", "python"):
        raise ValueError(f"{ENGINE_VARIABLE} must be auto, numba or python; got {wanted!r}")
    installed = importlib.util.find_spec("numba") is not None
    if wanted == "numba" and not installed:
        raise RuntimeError(f"{ENGINE_VARIABLE}=numba but numba is not installed")
    return "numba" if installed and wanted != "python" else "python"


_compiled = None


def run_accumulate(*args) -> None:
    """Call `accumulate` through the selected engine (compiling it once on first numba use)."""
    global _compiled, prange
    if engine() == "python":
        return accumulate(*args)
    if _compiled is None:
        import numba

        prange = numba.prange  # a global: numba reads it when it compiles
        _compiled = numba.njit(parallel=True, cache=True)(accumulate)
    return _compiled(*args)
