"""Input data for a case, fully determined by (spec, dtype, regime, seed) and the compute precision.

Regimes (VERIFICATION.md §2 and §4): `exact` small integers whose every partial sum is exact in
the compute precision (tolerance zero); `normal`, `uniform`, `wide` dense reals; `large` values
whose sums may overflow; `subnormal` tiny inputs; `special` NaN, +-inf and -0.0 placed in x.
"""

from __future__ import annotations

import math

import numpy as np

from reference.formats import FORMATS, finfo, numpy_dtype, significand_bits
from reference.spec import Conv3DSpec

REGIMES = ("exact", "normal", "uniform", "wide", "large", "subnormal", "special")
REALISTIC = ("normal", "uniform", "wide")
EXTREME = ("large", "subnormal", "special")

def _exact_integers(rng: np.random.Generator, spec: Conv3DSpec, precision: str, dtype: str):
    """Integers with K*max|x|*max|w| + max|b| < 2^p, so every partial sum is exact in the compute
    precision and the result in the dtype."""
    limit = 2 ** min(FORMATS[precision].exact_bits, significand_bits(dtype)) - 1  # |inputs| <= 4 fit all
    k = spec.taps
    for xm, wm, bm in ((4, 2, 8), (2, 2, 4), (2, 1, 2), (1, 1, 0)):
        if k * xm * wm + bm <= limit:
            break
    x = rng.integers(-xm, xm + 1, spec.input_shape).astype(np.float64)
    w = rng.integers(-wm, wm + 1, spec.kernel_shape).astype(np.float64)
    if k > limit:  # even ones would overflow: keep at most `limit` nonzero taps per filter
        flat = w.reshape(k, spec.filters)
        for f in range(spec.filters):
            flat[rng.permutation(k)[limit:], f] = 0
    b = rng.integers(-bm, bm + 1, spec.filters).astype(np.float64)
    return x, w, b


def _large_scale(info) -> float:
    """The large regime's scale: products of two such values near the top of the range (float64:
    beyond float32's range instead; the exact reference needs float64 headroom)."""
    return 2.0 ** (min(info.maxexp, 128) / 2 - 1 + (info.maxexp > 128) * 32)


def _reals(rng: np.random.Generator, spec: Conv3DSpec, regime: str, dtype: str):
    xs, ws = spec.input_shape, spec.kernel_shape
    scale = 1 / math.sqrt(spec.taps)
    if regime in ("normal", "special"):
        return rng.standard_normal(xs), rng.standard_normal(ws) * scale, rng.standard_normal(spec.filters)
    if regime == "uniform":
        return rng.uniform(-1, 1, xs), rng.uniform(-1, 1, ws), rng.uniform(-1, 1, spec.filters)
    info = finfo(dtype)
    if regime == "wide":  # magnitudes over a wide exponent range, random signs: cancellation
        span = min(20, info.maxexp // 4)

        def wide(shape):
            return rng.choice([-1.0, 1.0], shape) * 2.0 ** rng.uniform(-span, span, shape)

        return wide(xs), wide(ws), wide(spec.filters)
    if regime == "large":  # products near the top of the range: some sums overflow
        top = _large_scale(info)
        return rng.standard_normal(xs) * top, rng.standard_normal(ws) * top, rng.standard_normal(spec.filters)
    if regime == "subnormal":  # inputs around the smallest normal, products deep in subnormals
        tiny = float(info.smallest_normal)
        x, b = rng.standard_normal(xs) * tiny, rng.standard_normal(spec.filters) * tiny
        return x, rng.standard_normal(ws), b
    raise ValueError(f"unknown data regime {regime!r}; choose from {', '.join(REGIMES)}")


def _place_specials(rng: np.random.Generator, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
    """A few NaN, +inf, -inf in x; -0.0 in x, w and bias."""
    flat = x.reshape(-1)
    count = max(1, flat.size // 64)
    for value in (np.nan, np.inf, -np.inf):
        flat[rng.choice(flat.size, size=min(count, flat.size), replace=False)] = value
    for array in (flat, w.reshape(-1), b):
        array[rng.choice(array.size, size=max(1, array.size // 8), replace=False)] = -0.0


def strided_view(a: np.ndarray) -> np.ndarray:
    """The values of `a` as a non-contiguous view: every other element of a buffer twice as long on
    the last axis, whose gaps hold NaN, so a backend that ignores strides reads NaN."""
    buffer = np.full((*a.shape[:-1], 2 * a.shape[-1]), np.nan, dtype=a.dtype)
    view = buffer[..., ::2]
    view[...] = a
    return view


def _real_cotangent(rng: np.random.Generator, shape: tuple[int, ...], regime: str,
                    dtype: str) -> np.ndarray:
    """dy for the real regimes, scaled like x in the extreme ones: large (the products x*dy and
    dy*w near the top of the range), subnormal (around the smallest normal: dx's products dy*w
    straddle the subnormals), special (NaN, +-inf and -0.0)."""
    dy = rng.standard_normal(shape)
    info = finfo(dtype)
    if regime == "large":
        dy *= _large_scale(info)
    elif regime == "subnormal":
        dy *= float(info.smallest_normal)
    elif regime == "special":
        flat = dy.reshape(-1)
        for value, share in ((np.nan, 64), (np.inf, 64), (-np.inf, 64), (-0.0, 8)):
            flat[rng.choice(flat.size, size=max(1, flat.size // share), replace=False)] = value
    return dy.astype(numpy_dtype(dtype))


def make_cotangent(spec: Conv3DSpec, shape: tuple[int, ...], dtype: str, regime: str, seed: int,
                   precision: str | None = None) -> np.ndarray:
    """dy of `shape` (the output's) for a backward case. Exact regime: integers small enough, and
    sparse enough, that every partial sum of dx (kd*kh*kw*F/groups terms dy*w) and of dkernel and
    dbias (N*Dout*Hout*Wout terms x*dy) is exact next to `_exact_integers`' x and w."""
    rng = np.random.default_rng([seed, REGIMES.index(regime) if regime in REGIMES else 0, 1])
    if regime != "exact":
        return _real_cotangent(rng, shape, regime, dtype)
    limit = 2 ** min(FORMATS[precision or dtype].exact_bits, significand_bits(dtype)) - 1
    dx_terms, count, _ = spec.grad_terms
    m = next((m for m in (4, 2, 1) if dx_terms * m * 2 <= limit and count * m * 4 <= limit), 1)
    dy = rng.integers(-m, m + 1, shape).astype(np.float64)
    keep = limit // (4 * m)  # nonzero terms per dkernel sum (|x| <= 4)
    flat = dy.reshape(-1, shape[-1]) if spec.channels_last else np.moveaxis(dy, 1, -1).reshape(-1, shape[1])
    for f in range(flat.shape[1]):
        flat[rng.permutation(flat.shape[0])[keep:], f] = 0
    if not spec.channels_last:
        dy = np.moveaxis(flat.reshape(*np.moveaxis(dy, 1, -1).shape), -1, 1)
    return np.ascontiguousarray(dy).astype(numpy_dtype(dtype))


def make_arrays(spec: Conv3DSpec, dtype: str, regime: str, seed: int,
                precision: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, kernel, bias) in `dtype`; `precision` (default dtype) sizes the exact regime."""
    np_dtype = numpy_dtype(dtype)
    rng = np.random.default_rng([seed, REGIMES.index(regime)] if regime in REGIMES else seed)
    if regime == "exact":
        x, w, b = _exact_integers(rng, spec, precision or dtype, dtype)
    else:
        x, w, b = _reals(rng, spec, regime, dtype)
        if regime == "special":
            _place_specials(rng, x, w, b)
    arrays = [a.astype(np_dtype) for a in (x, w, b)]
    return arrays[0], arrays[1], arrays[2] if spec.use_bias else None
