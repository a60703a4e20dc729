"""Which numba-direct kernel computes a layer, and with which register blocks (`plan`).

The block sizes are measured choices for 512-bit vectors (VECTOR_BYTES); on narrower machines
LLVM splits the vectors, still correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference.spec import Conv3DSpec

VECTOR_BYTES = 64  # AVX-512; on narrower machines LLVM splits the vectors, still correct
# Rows per register block by kernel and vectors per filter block (the lane kernel also holds the
# input vectors of a tap row in registers), and the relative speed of each filter block width
# (measured on this machine's layers: one-vector blocks lose about a quarter to the loads).
MAX_ROWS = {"broadcast": {1: 12, 2: 8, 4: 6}, "lane": {1: 8, 2: 8, 4: 4}}
EFFICIENCY = {1: 0.75, 2: 1.0, 4: 1.0}
MIN_BROADCAST_FILTERS = 16
# Output block (rows along H, pixels along W) of the depthwise kernel by vectors per channel block.
DEPTHWISE_BLOCK = {1: (4, 4), 2: (3, 3)}


@dataclass(frozen=True)
class Plan:
    kernel: str  # "broadcast", "lane", "depthwise" or "wvector"
    fb: int  # filters per register block
    rw: int  # output pixels along W per register block (one vector each for "wvector")
    rh: int = 1  # output rows along H per register block (depthwise)


def plan(spec: Conv3DSpec, dtype: np.dtype, in_place: bool = True) -> Plan:
    """The kernel and block sizes for a layer. `in_place`: the
    depthwise kernel may be used: the input is a C-contiguous channels-last array (read where it
    lies) and the weights are finite (depth padding taps are skipped, where the reference adds 0 * w)."""
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    _, ho, wo = spec.output_spatial
    channels = spec.in_channels
    if spec.groups == channels == spec.filters > 1 and channels >= lanes and spec.channels_last and in_place:
        fb = 2 * lanes if channels >= 2 * lanes else lanes
        rh, rw = DEPTHWISE_BLOCK[fb // lanes]
        return Plan("depthwise", fb, min(rw, wo), min(rh, ho))
    fg = spec.filters // spec.groups
    if spec.groups > 1 and 2 <= fg < MIN_BROADCAST_FILTERS and spec.strides[2] == 1:
        vectors = 4 if fg <= 4 else 2 if fg <= 8 else 1  # accumulators: fg x vectors <= 16
        row_vectors = 1 << (-(-wo // lanes) - 1).bit_length()  # a power of two covering a row
        return Plan("wvector", fg, lanes * min(vectors, row_vectors))
    kernel = "broadcast" if fg >= MIN_BROADCAST_FILTERS else "lane"
    width = fg if kernel == "broadcast" else spec.filters
    # filter blocks of 16, 32 or 64: a loop of 16 or more stays vectorised (see the unroll limit)
    choices = [fb for fb in (64, 32, 16) if fb // lanes in EFFICIENCY]
    fb = min(choices, key=lambda f: (-(-width // f) * f / EFFICIENCY[f // lanes], -f))
    max_rw = min(MAX_ROWS[kernel][fb // lanes], wo)  # the last block of a row overlaps the one before
    # blocks of at least 2/3 of the registers (they amortise the loads), then least recomputation
    # (V-Net, 16 outputs: 4+4+4+4 is 15% faster than 6+6+6 with two recomputed), then the widest
    rw = min(range(-(-2 * max_rw // 3), max_rw + 1), key=lambda r: (-(-wo // r) * r, -r))
    return Plan(kernel, fb, rw)
