"""Which numba-direct kernel computes a layer, and with which register blocks (`plan`).

The blocks are sized for the vectors numba compiles for (reference.numba_target: 64-byte vectors
and 32 registers with AVX-512, 32 bytes and 16 registers with AVX2) and the weight panel a block
streams for the L2 cache: measured choices, per register count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reference.numba_target import configure
from reference.spec import Conv3DSpec

# Rows per register block by kernel, register count and vectors per filter block (the lane kernel
# also holds the input vectors of a tap row in registers). 32 registers: measured on an Emerald
# Rapids Xeon; 16: the accumulators, the weight vectors and one broadcast within 16 (as BLIS's
# 6x16 Haswell kernel; on the same Xeon compiled for AVX2 only, dense 3x3x3 layers ran at 124-141
# GFLOP/s with these blocks, 74-102 with blocks that spill), the lane kernel's halved.
MAX_ROWS = {32: {"broadcast": {1: 12, 2: 8, 4: 6}, "lane": {1: 8, 2: 8, 4: 4}},
            16: {"broadcast": {1: 12, 2: 6, 4: 2}, "lane": {1: 6, 2: 4, 4: 2}}}
# Relative speed of each filter block width in vectors (one-vector blocks lose about a quarter
# to the loads).
EFFICIENCY = {1: 0.75, 2: 1.0, 4: 1.0}
MIN_BROADCAST_FILTERS = 16
# Output block (rows along H, pixels along W) of the depthwise kernel by register count and vectors
# per channel block.
DEPTHWISE_BLOCK = {32: {1: (4, 4), 2: (3, 3)}, 16: {1: (2, 4), 2: (2, 2)}}
DEFAULT_L2_BYTES = 2**20


@functools.cache
def l2_bytes() -> int:
    """The L2 cache of one core (Linux sysfs), else DEFAULT_L2_BYTES."""
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip()
                return int(size[:-1]) * {"K": 2**10, "M": 2**20}[size[-1]]
        except (OSError, ValueError, KeyError):
            break
    return DEFAULT_L2_BYTES


@dataclass(frozen=True)
class Plan:
    kernel: str  # "broadcast", "lane", "depthwise" or "wvector"
    fb: int  # filters per register block
    rw: int  # output pixels along W per register block (one vector each for "wvector")
    rh: int = 1  # output rows along H per register block (depthwise)


def rows_joined(spec: Conv3DSpec) -> Conv3DSpec:
    """The channels-last spec the kernels run: where the kernel is 1x1 along H and W at stride 1
    (a GEMM over each plane's pixels), H and W joined into one row of H*W outputs, which blocks
    with less recomputation than short rows (I3D 1x1x1, 14 outputs a row: 15 computed in blocks of
    5; joined, 198 for 196), as long as the planes alone give each thread several jobs."""
    import numba

    n, d, h, w = spec.batch, *spec.in_spatial
    one_by_one = spec.kernel_size[1:] == (1, 1) and spec.strides[1:] == (1, 1)
    joined = (n, d, 1, h * w, spec.in_channels) if one_by_one and n * d >= 4 * numba.get_num_threads() else (
        n, d, h, w, spec.in_channels)
    return replace(spec, input_shape=joined, data_format="channels_last")


def plan(spec: Conv3DSpec, dtype: np.dtype, in_place: bool = True) -> Plan:
    """The kernel and block sizes for a layer. `in_place`: the
    depthwise kernel may be used: the input is a C-contiguous channels-last array (read where it
    lies) and the weights are finite (depth padding taps are skipped, where the reference adds 0 * w)."""
    target = configure()
    itemsize = np.dtype(dtype).itemsize
    lanes = target.vector_bytes // itemsize
    registers = 32 if target.registers >= 32 else 16
    _, ho, wo = spec.output_spatial
    channels = spec.in_channels
    if spec.groups == channels == spec.filters > 1 and channels >= lanes and spec.channels_last and in_place:
        fb = 2 * lanes if channels >= 2 * lanes else lanes
        rh, rw = DEPTHWISE_BLOCK[registers][fb // lanes]
        return Plan("depthwise", fb, min(rw, wo), min(rh, ho))
    fg = spec.filters // spec.groups
    if spec.groups > 1 and 2 <= fg < MIN_BROADCAST_FILTERS and spec.strides[2] == 1:
        vectors = 4 if fg <= 4 else 2 if fg <= 8 else 1  # accumulators: fg x vectors <= registers / 2
        vectors = max(1, vectors * registers // 32)
        row_vectors = 1 << (-(-wo // lanes) - 1).bit_length()  # a power of two covering a row
        return Plan("wvector", fg, lanes * min(vectors, row_vectors))
    kernel = "broadcast" if fg >= MIN_BROADCAST_FILTERS else "lane"
    width = fg if kernel == "broadcast" else spec.filters
    # filter blocks of 16, 32 or 64: a loop of 16 or more stays vectorised (see the unroll limit);
    # the widest whose weight panel (every tap and channel of a group) fits half the L2 cache, which
    # it then stays in while a thread's run of output rows streams past it
    choices = [fb for fb in (64, 32, 16) if fb // lanes in EFFICIENCY]
    panel = spec.taps * itemsize
    fitting = [fb for fb in choices if fb * panel <= l2_bytes() // 2] or choices[-1:]
    fb = min(fitting, key=lambda f: (-(-width // f) * f / EFFICIENCY[f // lanes], -f))
    max_rw = min(MAX_ROWS[registers][kernel][fb // lanes], wo)  # the last block of a row overlaps
    # blocks of at least 2/3 of the registers, then the least of outputs computed (the last block of
    # a row overlaps) x (1 + 1/rows): a block loads its weight vectors once per rows x vectors FMAs
    # (I3D 1x1x1 joined, 196 outputs: 33 blocks of 6 run 1.2x faster than 49 of 4)
    rw = min(range(-(-2 * max_rw // 3), max_rw + 1), key=lambda r: (-(-wo // r) * (r + 1), -r))
    return Plan(kernel, fb, rw)


def filter_grad_blocks(spec: Conv3DSpec, dtype: np.dtype) -> tuple[int, int] | None:
    """(channels, filters) per register block of the blocked dkernel kernel
    (backends.numba_direct.filter_grad), for groups of 16 to 64 filters (to 32 for 1x1x1 kernels,
    plain GEMMs), where NumPy's GEMM of im2col^T dz is a skinny product that its gathers dominate
    (measured 1.2-4x slower on the default bench layers); None for the others. Accumulators:
    half the registers."""
    target = configure()
    lanes = target.vector_bytes // np.dtype(dtype).itemsize
    cg, fg = spec.in_channels // spec.groups, spec.filters // spec.groups
    if not 16 <= fg <= (32 if spec.kernel_size == (1, 1, 1) else 64) or lanes > 16:
        return None
    fb = 64 if fg >= 64 else 32 if fg >= 32 else 16
    rc = min(8, max(2, target.registers // 2 // -(-fb // lanes)))
    return (rc, fb) if cg >= rc else None
