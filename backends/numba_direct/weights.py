"""The weights and bias packed into the block layout each numba-direct kernel reads."""

from __future__ import annotations

import numpy as np

from backends.numba_direct.layout import aligned_copy, block_starts
from backends.numba_direct.plan import Plan
from reference.spec import Conv3DSpec


def _blocks(count: int, fb: int) -> int:
    return -(-count // fb)


def _depthwise_channels(spec: Conv3DSpec, p: Plan) -> np.ndarray:
    """(blocks, fb): the channel each lane of each depthwise block computes."""
    return block_starts(0, spec.filters, p.fb)[:, None] + np.arange(p.fb)


def pack_weights(kernel: np.ndarray, spec: Conv3DSpec, p: Plan) -> np.ndarray:
    """Broadcast: (G, blocks, kd, kh, kw, Cg, fb); lane: (blocks, kd, kh, kw, Cg, fb); the
    filters past the last one are zero (computed into the padding of the output buffer).
    Depthwise: (blocks, kd, kh, kw, fb), block b holding channels block_starts(0, F, fb)[b] + f.
    W-vector: (G, kd, kh, kw, Cg, F/G)."""
    groups, cg = spec.groups, spec.in_channels // spec.groups
    fg = spec.filters // groups
    if p.kernel == "depthwise":
        return aligned_copy(np.moveaxis(kernel[..., 0, _depthwise_channels(spec, p)], 3, 0))
    if p.kernel == "wvector":
        return np.ascontiguousarray(np.moveaxis(kernel.reshape(*kernel.shape[:4], groups, fg), 4, 0))
    if p.kernel == "lane":  # lane f of input position ci meets w[..., ci, f]
        width = _blocks(spec.filters, p.fb) * p.fb
        w = np.zeros((*spec.kernel_size, cg, width), dtype=kernel.dtype)
        w[..., :spec.filters] = kernel
        return aligned_copy(np.moveaxis(w.reshape(*w.shape[:4], -1, p.fb), 4, 0))
    width = _blocks(fg, p.fb) * p.fb
    w = np.zeros((*spec.kernel_size, cg, groups, width), dtype=kernel.dtype)
    w[..., :fg] = kernel.reshape(*spec.kernel_size, cg, groups, fg)
    w = w.reshape(*spec.kernel_size, cg, groups, -1, p.fb)
    return aligned_copy(np.moveaxis(w, (4, 5), (0, 1)))


def pack_bias(bias: np.ndarray | None, spec: Conv3DSpec, p: Plan, dtype) -> np.ndarray:
    """The bias in the weights' block layout, (G, blocks, fb), (blocks, fb) or (G, F/G); empty
    for none."""
    broadcast = p.kernel == "broadcast"
    if bias is None:
        return np.zeros((0,) * (3 if broadcast else 2), dtype=dtype)
    if p.kernel == "depthwise":
        return np.ascontiguousarray(bias[_depthwise_channels(spec, p)], dtype=dtype)
    if p.kernel == "wvector":
        return np.ascontiguousarray(bias.reshape(spec.groups, -1), dtype=dtype)
    groups = spec.groups if broadcast else 1
    out = np.zeros((groups, _blocks(spec.filters // groups, p.fb) * p.fb), dtype=dtype)
    out[:, :spec.filters // groups] = bias.reshape(groups, -1)
    return out.reshape(groups, -1, p.fb) if broadcast else out.reshape(-1, p.fb)
