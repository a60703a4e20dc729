"""Memory layout helpers of the numba-direct kernels: aligned buffers and overlapping blocks."""

from __future__ import annotations

import numpy as np

ALIGN_BYTES = 64  # a cache line, and an AVX-512 vector


def block_starts(lo: int, hi: int, block: int) -> np.ndarray:
    """Starts of blocks covering [lo, hi), the last one ending at hi (overlapping the one before)."""
    return np.minimum(np.arange(lo, hi, block), hi - block) if hi - lo >= block else np.arange(0)


def aligned_empty(shape: tuple[int, ...], dtype, align: int = ALIGN_BYTES) -> np.ndarray:
    """np.empty starting on an `align`-byte boundary: a vector load that straddles two cache lines
    costs two (NumPy aligns to 16 bytes only, and which allocations happen to land on 64 varies)."""
    dtype = np.dtype(dtype)
    raw = np.empty(int(np.prod(shape)) * dtype.itemsize + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)


def aligned_copy(a: np.ndarray) -> np.ndarray:
    out = aligned_empty(a.shape, a.dtype)
    out[...] = a
    return out
