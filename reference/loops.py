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
import types

import numpy as np

ENGINE_VARIABLE = "CONV3D_REFERENCE_ENGINE"

prange = range  # numba.prange in the compiled engine: parallel over output rows
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


def _product(xv: float, wv: float, exact: bool) -> tuple[float, float]:
    """xv*wv and its rounding error (Dekker's TwoProduct without FMA; 0 when known exact)."""
    p = xv * wv
    if exact:
        return p, 0.0
    t = _SPLITTER * xv
    x_hi = t - (t - xv)
    x_lo = xv - x_hi
    t = _SPLITTER * wv
    w_hi = t - (t - wv)
    w_lo = wv - w_hi
    p_err = x_lo * w_lo - (((p - x_hi * w_hi) - x_lo * w_hi) - x_hi * w_lo)
    return p, p_err if math.isfinite(p_err) else 0.0


def _add_term(total: float, compensation: float, special: float, magnitude: float, p: float,
              p_err: float) -> tuple[float, float, float, float]:
    """One step of `accumulate`'s compensated sum, as a function: a non-finite term or partial
    sum goes to `special`, a finite one into (total, compensation) by Knuth's TwoSum."""
    if not math.isfinite(p):
        return total, compensation, special + p, magnitude
    s = total + p
    if not math.isfinite(s):
        return total, compensation, special + s, magnitude
    z = s - total
    return s, compensation + (((total - (s - z)) + (p - z)) + p_err), special, magnitude + abs(p)


def accumulate_input_grad(dz: np.ndarray, kernel: np.ndarray, pads: tuple, strides: tuple,
                          dilation: tuple, groups: int, exact_products: bool,
                          out: np.ndarray, abs_sum: np.ndarray) -> None:
    """out[n,i,j,k,ch] = sum dz[n,od,oh,ow,f] * kernel[a,b,c,ch - g*Cg,f] over the taps (a, b, c)
    and output positions with od*sd + a*dd = i + pad_d (and so on per axis), f in ch's group g.

    dz: (N, Dout, Hout, Wout, F) channels last; kernel: (kd, kh, kw, Cg, F); pads: the "before"
    padding per axis; out, abs_sum: (N, D, H, W, C). Padding cells receive nothing; an input cell
    no output reads gets exactly 0. Same compensated sum as `accumulate`.
    """
    n_batch, d_in, h_in, w_in, channels = out.shape
    d_out, h_out, w_out, filters = dz.shape[1:]
    kd, kh, kw, cg = kernel.shape[:4]
    fg = filters // groups
    pd, ph, pw = pads
    sd, sh, sw = strides
    dd, dh, dw = dilation
    for nd in prange(n_batch * d_in):
        n = nd // d_in
        i = nd % d_in
        for j in range(h_in):
            for k in range(w_in):
                for ch in range(channels):
                    g = ch // cg
                    ci = ch - g * cg
                    total = 0.0
                    compensation = 0.0
                    special = 0.0
                    magnitude = 0.0
                    for a in range(kd):
                        td = i + pd - a * dd
                        if td < 0 or td % sd != 0 or td // sd >= d_out:
                            continue
                        od = td // sd
                        for b in range(kh):
                            th = j + ph - b * dh
                            if th < 0 or th % sh != 0 or th // sh >= h_out:
                                continue
                            oh = th // sh
                            for c in range(kw):
                                tw = k + pw - c * dw
                                if tw < 0 or tw % sw != 0 or tw // sw >= w_out:
                                    continue
                                ow = tw // sw
                                for f in range(g * fg, (g + 1) * fg):
                                    p, p_err = _product(dz[n, od, oh, ow, f], kernel[a, b, c, ci, f],
                                                        exact_products)
                                    total, compensation, special, magnitude = _add_term(
                                        total, compensation, special, magnitude, p, p_err)
                    out[n, i, j, k, ch] = (total + compensation) + special
                    abs_sum[n, i, j, k, ch] = magnitude


HELPERS = ("_product", "_add_term")  # called by the loops: compiled with them


def engine() -> str:
    """'numba' or 'python': which implementation `run_accumulate` uses now."""
    wanted = os.environ.get(ENGINE_VARIABLE, "auto").lower()
    if wanted not in ("auto", "numba", "python"):
        raise ValueError(f"{ENGINE_VARIABLE} must be auto, numba or python; got {wanted!r}")
    installed = importlib.util.find_spec("numba") is not None
    if wanted == "numba" and not installed:
        raise RuntimeError(f"{ENGINE_VARIABLE}=numba but numba is not installed")
    return "numba" if installed and wanted != "python" else "python"


_compiled: dict = {}


def _compile(fn):
    """`fn` compiled by numba, its helpers and prange resolved to compiled ones (no fast-math)."""
    import numba

    from reference.numba_target import configure

    configure()
    scope = dict(globals(), prange=numba.prange)
    scope |= {name: numba.njit(cache=True)(globals()[name]) for name in HELPERS}
    return numba.njit(parallel=True, cache=True)(
        types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__))


def run(fn, *args) -> None:
    """Call one of the loops above through the selected engine (compiled once on first use)."""
    if engine() == "python":
        return fn(*args)
    if fn.__name__ not in _compiled:
        _compiled[fn.__name__] = _compile(fn)
    return _compiled[fn.__name__](*args)


def run_accumulate(*args) -> None:
    """`accumulate` through the selected engine."""
    return run(accumulate, *args)
