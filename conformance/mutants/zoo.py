"""A zoo of deliberately broken Conv3D backends, each one real bug class (VERIFICATION.md §6).

Every mutant is numpy-im2col (im2col + NumPy GEMM, backends.im2col) with exactly one defect. Its
docstring names the bug class and the configuration that exposes it; `expected` lists the
statuses that count as catching it.
"""

from __future__ import annotations

import os
import random

import numpy as np

from backends.base import Backend, Capabilities, Prepared
from backends.im2col import conv3d_channels_last
from backends.numpy_im2col import DEFAULT_WORKSPACE_BYTES
from reference.activations import apply_activation
from reference.formats import finfo, numpy_dtype
from reference.spec import Conv3DSpec, spec_for_arrays
from runtime.records import Status


def _conv(x: np.ndarray, kernel: np.ndarray, bias, spec: Conv3DSpec) -> np.ndarray:
    """numpy-im2col's channels-last convolution (pre-activation)."""
    return conv3d_channels_last(np, x, kernel, bias, spec, DEFAULT_WORKSPACE_BYTES)


def respec(spec: Conv3DSpec, **changes) -> Conv3DSpec:
    """`spec` with some Keras arguments replaced (input shape kept unless given)."""
    args = dict(spec.keras_kwargs(), input_shape=spec.input_shape) | changes
    return Conv3DSpec(**args)


class Mutant(Backend):
    """numpy-im2col split into overridable steps: inputs, conv (channels last), activation."""

    capabilities = Capabilities()
    expected: tuple[Status, ...] = (Status.FAIL,)
    bug_class = ""
    direction = "forward"  # the direction whose checks hunt it

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        def run() -> np.ndarray:
            x_cl = x if spec.channels_last else self.to_channels_last(x)
            b = None if bias is None else bias.astype(x.dtype)
            out = self.conv(spec, x_cl, kernel.astype(x.dtype), b)
            if not spec.channels_last:
                out = np.moveaxis(out, -1, 1)
            return self.activate(spec, out).astype(x.dtype, copy=False)

        return Prepared(run=run, to_numpy=np.ascontiguousarray)

    def to_channels_last(self, x: np.ndarray) -> np.ndarray:
        return np.moveaxis(x, 1, -1)

    def conv(self, spec: Conv3DSpec, x: np.ndarray, kernel: np.ndarray, bias) -> np.ndarray:
        return _conv(x, kernel, bias, spec)

    def activate(self, spec: Conv3DSpec, out: np.ndarray) -> np.ndarray:
        return apply_activation(out, spec.activation)


def _conv_padded(spec: Conv3DSpec, x: np.ndarray, kernel, bias, pads) -> np.ndarray:
    """A valid convolution of x padded by `pads` (per axis (before, after); negative crops)."""
    for axis, (before, after) in enumerate(pads, start=1):
        crop = [slice(None)] * 5
        crop[axis] = slice(max(-before, 0), x.shape[axis] - max(-after, 0))
        x = x[tuple(crop)]
        widths = [(0, 0)] * 5
        widths[axis] = (max(before, 0), max(after, 0))
        x = np.pad(x, widths)
    valid = respec(spec, padding="valid", data_format="channels_last", input_shape=x.shape)
    return _conv(x, kernel, bias, valid)


class FlippedKernel(Mutant):
    """Convolution instead of cross-correlation: the kernel is flipped on all three axes.
    Exposed by any kernel larger than 1 on some axis with non-symmetric weights."""

    bug_class = "flipped kernel (convolution, not cross-correlation)"

    def conv(self, spec, x, kernel, bias):
        return super().conv(spec, x, kernel[::-1, ::-1, ::-1].copy(), bias)


class SameOddCellFirst(Mutant):
    """"same" puts the odd padding cell BEFORE the data (ONNX Runtime, MLX shipped this).
    Exposed by "same" with an even effective kernel or a stride leaving odd total padding."""

    bug_class = '"same" odd cell placed first'

    def conv(self, spec, x, kernel, bias):
        return _conv_padded(spec, x, kernel, bias, [(a, b) for b, a in spec.pads])


class SymmetricSameIgnoringStride(Mutant):
    """"same" padding computed as for stride 1, (ek-1)//2 before (PyTorch's padding="same" idea).
    Exposed by "same" with stride > 1 where (out-1)*s + ek - n differs from ek - 1."""

    bug_class = "symmetric same that ignores stride"

    def conv(self, spec, x, kernel, bias):
        pads = []
        for k, d in zip(spec.kernel_size, spec.dilation_rate):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        if spec.padding == "valid":
            return super().conv(spec, x, kernel, bias)
        return _conv_padded(spec, x, kernel, bias, pads)


class SameNegativePadding(Mutant):
    """"same" total padding without max(., 0): negative when stride exceeds the kernel, so the
    input is cropped (Keras' torch backend before 3.9, k=1 s=3 n=5). Exposed by k < s under same."""

    bug_class = "same padding allowed to go negative"

    def conv(self, spec, x, kernel, bias):
        if spec.padding == "valid":
            return super().conv(spec, x, kernel, bias)
        pads = []
        for n, k, s, d in zip(spec.in_spatial, spec.kernel_size, spec.strides, spec.dilation_rate):
            total = (-(-n // s) - 1) * s + d * (k - 1) + 1 - n
            pads.append((total // 2, total - total // 2))
        return _conv_padded(spec, x, kernel, bias, pads)


class DilationIgnoredOnW(Mutant):
    """Dilation dropped on the innermost (W) axis. Exposed by dilation_rate[2] > 1 with kw > 1."""

    bug_class = "dilation ignored on one axis"

    def conv(self, spec, x, kernel, bias):
        dd, dh, _ = spec.dilation_rate
        return _conv(x, kernel, bias, respec(spec, dilation_rate=(dd, dh, 1)))


class DilationAsInputStride(Mutant):
    """Dilation applied to the input instead of the kernel (used as a stride over x).
    Exposed by any dilation_rate > 1."""

    bug_class = "dilation applied to the input instead of the kernel"

    def conv(self, spec, x, kernel, bias):
        if max(spec.dilation_rate) == 1:
            return super().conv(spec, x, kernel, bias)
        return _conv(x, kernel, bias, respec(spec, strides=spec.dilation_rate, dilation_rate=1))


class StrideOnWrongAxis(Mutant):
    """Strides read in (W, H, D) order. Exposed by anisotropic strides with sd != sw."""

    bug_class = "stride applied to the wrong axis"

    def conv(self, spec, x, kernel, bias):
        return _conv(x, kernel, bias, respec(spec, strides=spec.strides[::-1]))


class GroupsInterleaved(Mutant):
    """Group g reads channels g, g+G, g+2G... instead of the contiguous block [g*Cg, (g+1)*Cg).
    Exposed by groups > 1 with C/groups > 1."""

    bug_class = "groups read interleaved instead of blocked"

    def conv(self, spec, x, kernel, bias):
        c, g = spec.in_channels, spec.groups
        interleaved = np.arange(c).reshape(c // g, g).T.reshape(-1)
        return super().conv(spec, x[..., interleaved], kernel, bias)


class ChannelsFirstKernelSpatialReversed(Mutant):
    """For channels_first the kernel's spatial axes are taken as (kw, kh, kd), as if the layout
    change applied to the kernel too. Exposed by channels_first with an anisotropic kernel."""

    bug_class = "channels_first handled as channels_last for the kernel"

    def conv(self, spec, x, kernel, bias):
        if spec.channels_last:
            return super().conv(spec, x, kernel, bias)
        swapped = np.ascontiguousarray(np.transpose(kernel, (2, 1, 0, 3, 4)))
        wrong = respec(spec, kernel_size=swapped.shape[:3])
        return _conv(x, swapped, bias, wrong)


class ChannelsFirstReshapedNotTransposed(Mutant):
    """channels_first input turned into channels_last with reshape instead of a transpose: same
    memory, wrong axes. Exposed by channels_first with more than one channel."""

    bug_class = "channels_first transposed wrongly (reshape instead of transpose)"

    def to_channels_last(self, x):
        n, c, d, h, w = x.shape
        return np.ascontiguousarray(x).reshape(n, d, h, w, c)


class OutputOffByOne(Mutant):
    """Valid output size computed as ceil((n - ek) / s) + 1: one extra row (reading zeros) when
    (n - ek) % s != 0. Exposed by valid padding, stride > 1 and a non-zero remainder."""

    bug_class = "output size off by one when (n - ek) % s != 0"

    def conv(self, spec, x, kernel, bias):
        if spec.padding == "same":
            return super().conv(spec, x, kernel, bias)
        pads = []
        for n, k, s, d in zip(spec.in_spatial, spec.kernel_size, spec.strides, spec.dilation_rate):
            rem = (n - d * (k - 1) - 1) % s
            pads.append((0, s - rem if rem else 0))
        return _conv_padded(spec, x, kernel, bias, pads)


class BiasDropped(Mutant):
    """Bias silently ignored. Exposed by use_bias with a non-zero bias."""

    bug_class = "bias dropped"

    def conv(self, spec, x, kernel, bias):
        return super().conv(spec, x, kernel, None)


class BiasAfterActivation(Mutant):
    """Bias added after the activation. Exposed by use_bias with a non-linear activation."""

    bug_class = "bias added after the activation"

    def _prepare(self, spec, x, kernel, bias):
        inner = super()._prepare(spec, x, kernel, None)

        def run():
            out = inner.run()
            if bias is None:
                return out
            shape = (-1,) if spec.channels_last else (-1, 1, 1, 1)
            return (out + bias.reshape(shape)).astype(x.dtype)

        return Prepared(run=run, to_numpy=np.ascontiguousarray)


class GeluTanhApproximation(Mutant):
    """gelu computed with the tanh approximation instead of the exact erf form.
    Exposed by activation="gelu" with outputs of magnitude around 1-3."""

    bug_class = "activation wrong for one name (gelu tanh approximation)"

    def activate(self, spec, out):
        if spec.activation != "gelu":
            return super().activate(spec, out)
        z = out.astype(np.float64)
        return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))


class SoftmaxOverChannels(Mutant):
    """Axis activations applied over channels for channels_first, where Keras uses the LAST
    axis (W). Exposed by softmax-family activations with channels_first."""

    bug_class = "axis activation applied over the wrong axis"

    def activate(self, spec, out):
        if spec.channels_last or spec.activation not in ("softmax", "log_softmax", "glu", "sparsemax"):
            return super().activate(spec, out)
        return np.moveaxis(apply_activation(np.moveaxis(out, 1, -1), spec.activation), -1, 1)


class Float16Accumulation(Mutant):
    """Partial sums over kernel taps kept in float16 while declaring float32. Exposed by realistic
    data: errors near 2^-11 * |y| break the float32 bound."""

    bug_class = "float16 accumulation"

    def conv(self, spec, x, kernel, bias):
        if x.dtype == np.float64:
            return super().conv(spec, x, kernel, bias)
        acc = None
        for tap in np.ndindex(*spec.kernel_size):  # one tap at a time, the running sum in float16
            single = np.zeros_like(kernel)
            single[tap] = kernel[tap]
            part = _conv(x, single, None, spec).astype(np.float16)
            acc = part if acc is None else (acc + part).astype(np.float16)
        out = acc.astype(x.dtype)
        return out if bias is None else out + bias


def _round_to_tf32(a: np.ndarray) -> np.ndarray:
    bits = a.astype(np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)
    return rounded.view(np.float32)


class TF32Inputs(Mutant):
    """Inputs rounded to TF32 (10-bit mantissa) while declaring float32, as cuDNN does by default.
    Exposed by realistic float32 data: errors near 2^-11 * S break the float32 bound."""

    bug_class = "TF32-rounded inputs while declaring float32"

    def conv(self, spec, x, kernel, bias):
        if x.dtype != np.float32:
            return super().conv(spec, x, kernel, bias)
        return super().conv(spec, _round_to_tf32(x), _round_to_tf32(kernel), bias)


class DropsLastOddChannel(Mutant):
    """A vectorised loop over input channels in pairs that forgets the tail when C/groups is odd.
    Exposed by C/groups odd and > 1 (e.g. 3, 17, 33)."""

    bug_class = "summation drops the last input channel when C is odd"

    def conv(self, spec, x, kernel, bias):
        cg = kernel.shape[3]
        if cg % 2 and cg > 1:
            kernel = kernel.copy()
            kernel[:, :, :, -1, :] = 0
        return super().conv(spec, x, kernel, bias)


class NaNSwallowingRelu(Mutant):
    """relu written as where(x > 0, x, 0), which maps NaN to 0. Exposed by NaN inputs with relu."""

    bug_class = "NaN swallowed by relu"

    def activate(self, spec, out):
        if spec.activation == "relu":
            return np.where(out > 0, out, 0).astype(out.dtype)
        return super().activate(spec, out)


class InfClampedInput(Mutant):
    """Infinite inputs clamped to the largest finite value (a 'safe' nan_to_num on load).
    Exposed by +-inf in x: the reference gives +-inf (or NaN), this gives finite numbers."""

    bug_class = "inf mishandled (clamped to finite)"

    def conv(self, spec, x, kernel, bias):
        info = np.finfo(x.dtype)
        return super().conv(spec, np.nan_to_num(x, nan=np.nan, posinf=info.max, neginf=-info.max),
                            kernel, bias)


_SCRATCH: dict[str, np.ndarray] = {}


class UninitialisedBorder(Mutant):
    """The padded input lives in a reused scratch buffer whose border is never zeroed, so it holds
    data from an earlier call (np.empty instead of np.zeros). Exposed by "same" padding."""

    bug_class = "uninitialised border (np.empty instead of zeros in padding)"

    def conv(self, spec, x, kernel, bias):
        if spec.padding == "valid" or not any(sum(p) for p in spec.pads):
            return super().conv(spec, x, kernel, bias)
        shape = (x.shape[0], *(n + a + b for n, (a, b) in zip(x.shape[1:4], spec.pads)), x.shape[4])
        size = int(np.prod(shape))
        key = x.dtype.name
        buffer = _SCRATCH.get(key)
        if buffer is None or buffer.size < size:
            buffer = _SCRATCH[key] = np.full(max(size, 1 << 16), 0.5, dtype=x.dtype)
        padded = buffer[:size].reshape(shape)
        (d0, _), (h0, _), (w0, _) = spec.pads
        padded[:, d0:d0 + x.shape[1], h0:h0 + x.shape[2], w0:w0 + x.shape[3]] = x
        return _conv_padded(spec, padded, kernel, bias, [(0, 0)] * 3)


class AcceptsStrideWithDilation(Mutant):
    """Skips the strides>1-with-dilation>1 check and returns the dilated conv subsampled by the
    strides. Exposed by that invalid call."""

    bug_class = "accepts an invalid configuration (stride > 1 with dilation > 1)"
    expected = (Status.ACCEPTED_INVALID,)

    def prepare(self, x, kernel, bias=None, **args):
        try:
            return super().prepare(x, kernel, bias, **args)
        except ValueError as exc:
            if "in conjunction with" not in str(exc):
                raise
        strides = args.pop("strides")
        sd, sh, sw = (strides,) * 3 if isinstance(strides, int) else tuple(strides)
        loose = super().prepare(x, kernel, bias, **args)
        return Prepared(run=lambda: loose.run()[:, ::sd, ::sh, ::sw], to_numpy=np.ascontiguousarray)


class RejectsKernelLargerThanInput(Mutant):
    """Refuses "same" when the effective kernel exceeds the input, which Keras allows.
    Exposed by "same" with d*(k-1)+1 > n on some axis."""

    bug_class = "rejects a valid configuration (kernel larger than input under same)"
    expected = (Status.REJECTED_VALID,)

    def prepare(self, x, kernel, bias=None, **args):
        spec = spec_for_arrays(np.shape(x), np.shape(kernel), bias is not None, **args)
        for n, k, d in zip(spec.in_spatial, spec.kernel_size, spec.dilation_rate):
            if d * (k - 1) + 1 > n:
                raise ValueError(f"kernel extent {d * (k - 1) + 1} larger than input {n}")
        return super().prepare(x, kernel, bias, **args)


class LastBitNoise(Mutant):
    """Sometimes (30% of calls) nudges one output element by one ulp, like a racy reduction.
    Exposed by running the same input twice (NONDETERMINISTIC) or by the exact regime."""

    bug_class = "non-deterministic result (last-bit noise, sometimes)"
    expected = (Status.NONDETERMINISTIC, Status.FAIL)
    _rng = random.Random(os.urandom(8))

    def activate(self, spec, out):
        out = super().activate(spec, out)
        if self._rng.random() < 0.3 and out.size:
            flat = out.reshape(-1)
            i = self._rng.randrange(flat.size)
            flat[i] = np.nextafter(flat[i], np.inf)
        return out


class OddBatchTailStale(Mutant):
    """Batch processed in pairs; with an odd batch the last sample gets its neighbour's result.
    Exposed by a batch size that is odd and > 1."""

    bug_class = "batch split drops the tail (odd batch)"

    def conv(self, spec, x, kernel, bias):
        out = super().conv(spec, x, kernel, bias)
        if x.shape[0] > 1 and x.shape[0] % 2:
            out[-1] = out[-2]
        return out


# ---- region mutants: wrong in one combination of parameter classes only (conformance.coverage) --

class InnermostExtentOneStrided(Mutant):
    """With a single output along W and a W stride > 1, reads its window one column late (the
    oneDNN bf16 region of VERIFICATION.md §4b). Exposed by W output extent 1 with W stride > 1."""

    bug_class = "region: W output extent 1 with W stride > 1"

    def conv(self, spec, x, kernel, bias):
        if spec.output_spatial[2] == 1 and spec.strides[2] > 1:
            x = np.roll(x, -1, axis=3)
        return super().conv(spec, x, kernel, bias)


class OddBatchChannelsFirst(Mutant):
    """channels_first with an odd batch > 2: the last sample gets the first one's result.
    Exposed by that pair only."""

    bug_class = "region: odd batch > 2 under channels_first"

    def conv(self, spec, x, kernel, bias):
        out = super().conv(spec, x, kernel, bias)
        if not spec.channels_last and x.shape[0] > 2 and x.shape[0] % 2:
            out[-1] = out[0]
        return out


class ChannelTailBeyondVector(Mutant):
    """A channel loop in vectors of 8 that drops the tail when C > 8 is not a multiple of 8
    (C = 17, 33). Exposed by such channel counts only."""

    bug_class = "region: channel tail beyond the last vector of 8"

    def conv(self, spec, x, kernel, bias):
        c = x.shape[-1]
        if c > 8 and c % 8:
            x = x.copy()
            x[..., c - c % 8:] = 0
        return super().conv(spec, x, kernel, bias)


class LastPartialWBlockStale(Mutant):
    """W outputs computed in blocks of 2; an odd W output count > 2 leaves the last (partial)
    block holding its neighbour's value. Exposed by odd W output extents from 3 up."""

    bug_class = "region: last partial block of a tiled W loop"

    def conv(self, spec, x, kernel, bias):
        out = super().conv(spec, x, kernel, bias)
        if out.shape[3] > 2 and out.shape[3] % 2:
            out[:, :, :, -1] = out[:, :, :, -2]
        return out


class DepthwiseMultiplierTransposed(Mutant):
    """Depthwise with a channel multiplier m > 1 orders the outputs (m, C) instead of (C, m).
    Exposed by groups == C with filters > C."""

    bug_class = "region: depthwise with a multiplier"

    def conv(self, spec, x, kernel, bias):
        out = super().conv(spec, x, kernel, bias)
        g, f = spec.groups, spec.filters
        if g == spec.in_channels > 1 and f > g:
            out = out.reshape(*out.shape[:4], g, f // g).swapaxes(-1, -2).reshape(out.shape)
        return out


class GroupsHalfChannelsSwapped(Mutant):
    """groups == C/2 (two channels per group) reads each group's two channels in swapped order.
    Exposed by that groups class only."""

    bug_class = "region: groups = C/2"

    def conv(self, spec, x, kernel, bias):
        if spec.groups > 1 and 2 * spec.groups == spec.in_channels:
            x = x.reshape(*x.shape[:4], spec.groups, 2)[..., ::-1].reshape(x.shape)
        return super().conv(spec, x, kernel, bias)


class StridedOddSameOnHFirst(Mutant):
    """"same" with an H stride > 1 and an odd total of H padding puts the odd cell first (on H
    only; stride 1 and the other axes are right). Exposed by that pair of H classes."""

    bug_class = "region: odd same padding on a strided H axis"

    def conv(self, spec, x, kernel, bias):
        (d0, d1), (h0, h1), (w0, w1) = spec.pads
        if spec.padding == "same" and spec.strides[1] > 1 and (h0 + h1) % 2:
            return _conv_padded(spec, x, kernel, bias, [(d0, d1), (h1, h0), (w0, w1)])
        return super().conv(spec, x, kernel, bias)


class IgnoresStrides(Mutant):
    """Reads x's buffer as if it were C-contiguous (a C extension handed `a.data` without its
    strides); right on every contiguous input. Exposed by the non-contiguous layout class."""

    bug_class = "region: strides ignored (non-contiguous input read as contiguous)"

    def _prepare(self, spec, x, kernel, bias):
        contiguous = tuple(x.itemsize * int(np.prod(x.shape[i + 1:])) for i in range(x.ndim))
        raw = np.lib.stride_tricks.as_strided(x, x.shape, contiguous)
        return super()._prepare(spec, raw, kernel, bias)


class LowPrecisionMutant(Mutant):
    """The unmutated low-precision base: bfloat16 inputs summed in float32, the activation in
    float32, one rounding at the end (as numba-direct and numpy-im2col do them, and declare)."""

    capabilities = Capabilities(dtypes=("bfloat16",), compute_precision={"bfloat16": "float32"})

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        dtype = x.dtype
        wide = super()._prepare(spec, x.astype(np.float32), kernel.astype(np.float32),
                                None if bias is None else bias.astype(np.float32))
        return Prepared(run=lambda: self.result(wide.run(), dtype), to_numpy=np.ascontiguousarray)

    def result(self, out: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return out.astype(dtype)


def _to(a: np.ndarray, name: str) -> np.ndarray:
    """`a` rounded to float16 or bfloat16 and back to float32."""
    return a.astype(numpy_dtype(name)).astype(np.float32)


def _tap_by_tap(spec, x, kernel, storage: str) -> np.ndarray:
    """The pre-bias sum built one kernel tap at a time, the running sum held in `storage`."""
    acc = None
    for tap in np.ndindex(*spec.kernel_size):
        single = np.zeros_like(kernel)
        single[tap] = kernel[tap]
        part = _to(_conv(x, single, None, spec), storage)
        acc = part if acc is None else _to(acc + part, storage)
    return acc


class BFloat16Accumulation(LowPrecisionMutant):
    """The running sum over kernel taps held in bfloat16 while declaring float32 sums. Exposed by
    realistic bfloat16 data with several taps: each tap's rounding (2^-9 of the partial sum) adds
    up past the bound of one final rounding."""

    bug_class = "bfloat16 accumulation while declaring float32"

    def conv(self, spec, x, kernel, bias):
        acc = _tap_by_tap(spec, x, kernel, "bfloat16")
        return acc if bias is None else _to(acc + bias, "bfloat16")


class Float16PartialSumOverflow(LowPrecisionMutant):
    """float16 partial sums (declared: float32 sums): a partial sum past 65504 becomes inf though
    the float32 sum and its rounded result are finite; the rest loses bits tap by tap. Exposed by
    the large regime, and by realistic data."""

    bug_class = "float16 partial sums that overflow to inf"
    capabilities = Capabilities(dtypes=("float16",), compute_precision={"float16": "float32"})

    def conv(self, spec, x, kernel, bias):
        with np.errstate(over="ignore"):
            acc = _tap_by_tap(spec, x, kernel, "float16")
            return acc if bias is None else _to(acc + bias, "float16")


class BiasAfterRounding(LowPrecisionMutant):
    """The sum rounded to bfloat16 before the bias is added, then rounded again, while declaring
    one rounding. Exposed by a bias that cancels most of the sum: the first rounding's error,
    2^-9 of the sum, is far above 2^-8 of the small result."""

    bug_class = "bias added after the sum was rounded to bfloat16 (two roundings)"

    def conv(self, spec, x, kernel, bias):
        out = _to(_conv(x, kernel, None, spec), "bfloat16")
        return out if bias is None else out + bias


class Float32Result(LowPrecisionMutant):
    """The float32 result returned when bfloat16 was asked. Exposed by any case: the output's dtype
    differs from the input's."""

    bug_class = "float32 output for bfloat16 inputs"

    def result(self, out, dtype):
        return out


class FlushesSubnormalInputs(LowPrecisionMutant):
    """Subnormal bfloat16 inputs read as zero (denormals-are-zero) without declaring it. Exposed by
    the subnormal regime, whose inputs straddle bfloat16's smallest normal."""

    bug_class = "subnormals flushed without declaring it"

    def conv(self, spec, x, kernel, bias):
        tiny = float(finfo("bfloat16").smallest_normal)
        return super().conv(spec, np.where(np.abs(x) < tiny, 0, x).astype(x.dtype), kernel, bias)


LOW_PRECISION_ZOO: tuple[type[Mutant], ...] = (
    BFloat16Accumulation, Float16PartialSumOverflow, BiasAfterRounding, Float32Result,
    FlushesSubnormalInputs,
)

ZOO: tuple[type[Mutant], ...] = (
    FlippedKernel, SameOddCellFirst, SymmetricSameIgnoringStride, SameNegativePadding,
    DilationIgnoredOnW, DilationAsInputStride, StrideOnWrongAxis, GroupsInterleaved,
    ChannelsFirstKernelSpatialReversed, ChannelsFirstReshapedNotTransposed, OutputOffByOne,
    BiasDropped, BiasAfterActivation, GeluTanhApproximation, SoftmaxOverChannels,
    Float16Accumulation, TF32Inputs, DropsLastOddChannel, NaNSwallowingRelu, InfClampedInput,
    UninitialisedBorder, AcceptsStrideWithDilation, RejectsKernelLargerThanInput, LastBitNoise,
    OddBatchTailStale, InnermostExtentOneStrided, OddBatchChannelsFirst, ChannelTailBeyondVector,
    LastPartialWBlockStale, DepthwiseMultiplierTransposed, GroupsHalfChannelsSwapped,
    StridedOddSameOnHFirst, IgnoresStrides, *LOW_PRECISION_ZOO,
)
