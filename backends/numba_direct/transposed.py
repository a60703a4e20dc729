"""dx of numba-direct: the transposed convolution, computed by the forward kernels themselves.

Along one axis, input position p (padded coordinates) receives dz[o] * w[t] for every o*s + t*d
= p. Split p by its residue r = p mod s (a phase, as sub-pixel convolution does): the taps with
t*d = r (mod s) form a progression t0 + j*(s/g), g = gcd(s, d), and p = q*s + r meets them at
o = q - (t0*d - r)/s - j*(d/g). So each phase is a stride-1 convolution of a zero-bordered dz with
those taps in reverse order, dilation d/g, and in/out channels swapped per group; the product of
the three axes' phases covers dx. A phase with no tap gets 0, as SPEC.md requires of input cells
no output reads. Without stride (s = 1) there is one phase: the classic flipped-kernel form.
The zero border meets real weights only; a non-finite weight would make 0 * w NaN where the
reference adds nothing, so such calls go to col2im instead (backends.im2col_grad).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

import numpy as np

from reference.spec import Conv3DSpec


@dataclass(frozen=True)
class AxisPhase:
    """One residue class of one axis: which taps (in convolution order), where its dz window
    starts (may be negative: zeros), how long it is, and the first input index it writes."""

    taps: tuple[int, ...]
    start: int
    length: int
    first: int  # input (unpadded) index of the phase's first output
    dilation: int
    count: int  # outputs of this phase


def axis_phases(size: int, k: int, s: int, d: int, pad: int) -> list[AxisPhase]:
    """The phases of one axis of an input of `size` cells, padding `pad` before (a window that
    runs past dz reads zeros: no output count is needed)."""
    g = math.gcd(s, d)
    phases = []
    for r in range(s):
        taps = [t for t in range(k) if t * d % s == r]
        q0 = -(-(pad - r) // s)  # the first q with q*s + r inside the input
        q1 = (pad + size - 1 - r) // s
        if not taps or q1 < q0:
            continue
        step = d // g
        c0 = (taps[0] * d - r) // s
        span = (len(taps) - 1) * step
        count = q1 - q0 + 1
        # output q reads dz[q - c0 - j*step], j = 0..J-1: the window starts at q0 - c0 - span
        phases.append(AxisPhase(tuple(reversed(taps)), q0 - c0 - span, count + span,
                                q0 * s + r - pad, step, count))
    return phases


def _window(dz: np.ndarray, axis: int, start: int, length: int) -> np.ndarray:
    """dz[start:start + length] along `axis` (1 to 3), zeros outside dz."""
    shape = list(dz.shape)
    lo, hi = max(start, 0), min(start + length, shape[axis])
    if lo == start and hi == start + length:
        return dz[(slice(None),) * axis + (slice(lo, hi),)]
    shape[axis] = length
    out = np.zeros(shape, dz.dtype)
    if hi > lo:
        lead = (slice(None),) * axis
        out[lead + (slice(lo - start, hi - start),)] = dz[lead + (slice(lo, hi),)]
    return out


def transposed_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """(kd, kh, kw, C/G, F) -> (kd, kh, kw, F/G, C): per group, filters become input channels."""
    *k, cg, f = kernel.shape
    w = kernel.reshape(*k, cg, groups, f // groups)
    return np.ascontiguousarray(w.transpose(0, 1, 2, 5, 4, 3).reshape(*k, f // groups, groups * cg))


Forward = Callable[[np.ndarray, np.ndarray, Conv3DSpec], Callable[[np.ndarray], np.ndarray]]


def input_grad(kernel: np.ndarray, spec: Conv3DSpec, forward: Forward) -> Callable[[np.ndarray], np.ndarray]:
    """dz (channels last, C-contiguous) -> dx (N, D, H, W, C) by the phases above, planned and
    packed once. `forward(kernel, spec, dtype)` prepares the backend's own pre-activation forward
    pass (channels last, no bias) and returns it as a function of its input."""
    w_t = transposed_kernel(kernel, spec.groups)
    per_axis = [axis_phases(n, k, s, d, pad) for n, k, s, d, (pad, _) in zip(
        spec.in_spatial, spec.kernel_size, spec.strides, spec.dilation_rate, spec.pads)]
    steps = []
    for phase in product(*per_axis):
        window = (spec.batch, *(p.length for p in phase), spec.filters)
        sub_spec = Conv3DSpec(filters=spec.in_channels, kernel_size=tuple(len(p.taps) for p in phase),
                              input_shape=window, dilation_rate=tuple(p.dilation for p in phase),
                              groups=spec.groups, use_bias=False)
        run = forward(np.ascontiguousarray(w_t[np.ix_(*(p.taps for p in phase))]), sub_spec, kernel.dtype)
        target = (slice(None), *(slice(p.first, None, s) for p, s in zip(phase, spec.strides)))
        steps.append((phase, run, target))

    def dx_of(dz: np.ndarray) -> np.ndarray:
        dx = np.zeros((spec.batch, *spec.in_spatial, spec.in_channels), dz.dtype)
        for phase, run, target in steps:
            window = dz
            for axis, p in enumerate(phase, start=1):
                window = _window(window, axis, p.start, p.length)
            dx[target] = run(np.ascontiguousarray(window))
        return dx

    return dx_of
