"""Index-addressable integer data for tensors too large to send between processes: element i of
a tensor is a hash of (seed, tensor, i) mapped to an integer in [-2, 2]. A backend worker fills
the whole tensor itself; the checker recomputes only the elements a sampled output reads.

Products of such values are at most 4 in magnitude, so every partial sum of a layer with fewer
than 2^22 taps (times channels) is an integer exactly held by float32: the expected outputs are
exact and any difference at all is an error (the exact regime, tolerance zero).
"""

from __future__ import annotations

import math

import numpy as np

from reference.formats import numpy_dtype
from reference.spec import Conv3DSpec

CHUNK = 1 << 24  # elements hashed at once while filling (bounds the temporary memory)
SALTS = {"x": 1, "kernel": 2, "bias": 3}
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)  # splitmix64


def values(flat: np.ndarray, seed: int, tensor: str) -> np.ndarray:
    """The integers (int64, in [-2, 2]) at flat indices `flat` of `tensor` ("x", "kernel", "bias")."""
    with np.errstate(over="ignore"):
        h = flat.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(
            (seed * 0x632BE59BD9B4E019 + SALTS[tensor] * 0x2545F4914F6CDD1D) % 2**64)
        h = (h ^ (h >> np.uint64(30))) * _M1
        h = (h ^ (h >> np.uint64(27))) * _M2
        h ^= h >> np.uint64(31)
    return (h % np.uint64(5)).astype(np.int64) - 2


def filled(shape: tuple[int, ...], dtype: str, seed: int, tensor: str) -> np.ndarray:
    """The whole tensor, channels last, hashed CHUNK elements at a time."""
    out = np.empty(math.prod(shape), numpy_dtype(dtype))
    for start in range(0, out.size, CHUNK):
        stop = min(start + CHUNK, out.size)
        out[start:stop] = values(np.arange(start, stop, dtype=np.int64), seed, tensor)
    return out.reshape(shape)


def layer_inputs(spec: Conv3DSpec, dtype: str, seed: int):
    """(x, kernel, bias) of a channels_last `spec` (bias None without one)."""
    bias = filled((spec.filters,), dtype, seed, "bias") if spec.use_bias else None
    return (filled(spec.input_shape, dtype, seed, "x"), filled(spec.kernel_shape, dtype, seed, "kernel"),
            bias)


def sampled_outputs(spec: Conv3DSpec, seed: int, samples: np.ndarray) -> np.ndarray:
    """The exact outputs (float64) of a channels_last, linear `spec` at flat output indices
    `samples`: each one's taps summed from the hashed values it reads, padding read as 0."""
    n, *out, f = np.unravel_index(samples, spec.output_shape)
    cg, fg = spec.in_channels // spec.groups, spec.filters // spec.groups
    kernel = values(np.arange(math.prod(spec.kernel_shape)), seed, "kernel").reshape(spec.kernel_shape)
    total = (values(f, seed, "bias") if spec.use_bias else np.zeros(len(samples), np.int64))
    for tap in np.ndindex(*spec.kernel_size):
        position = [o * s + t * d - before for o, s, t, d, (before, _) in
                    zip(out, spec.strides, tap, spec.dilation_rate, spec.pads)]
        inside = np.all([(p >= 0) & (p < size) for p, size in zip(position, spec.in_spatial)], axis=0)
        for c in range(cg):
            channel = (f // fg) * cg + c
            flat = np.ravel_multi_index((n, *(np.clip(p, 0, size - 1) for p, size in
                                              zip(position, spec.in_spatial)), channel),
                                        spec.input_shape)
            total += np.where(inside, values(flat, seed, "x"), 0) * kernel[tap][c, f]
    return total.astype(np.float64)
