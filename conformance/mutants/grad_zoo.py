"""Broken gradient implementations (the backward direction), one real bug class each.

Every mutant is numpy-im2col's backward pass (backends.im2col_grad: dz by act', dkernel by
im2col^T dz, dx by col2im, dbias by a sum) with exactly one defect; the forward pass is right, so
only the backward checks can catch them. `expected` lists the statuses that count as a catch.
"""

from __future__ import annotations

import numpy as np

from backends import im2col_grad
from backends.base import Capabilities, Prepared, grad_arrays
from backends.im2col import conv3d_channels_last
from backends.numpy_im2col import DEFAULT_WORKSPACE_BYTES, channels_last_operands
from conformance.mutants.zoo import Mutant, respec
from reference.activations import apply_activation
from reference.derivatives import vjp
from reference.spec import Conv3DSpec
from runtime.records import Status


class GradMutant(Mutant):
    """numpy-im2col's backward split into overridable steps: dz, the three gradients, finish."""

    capabilities = Capabilities(directions=("forward", "backward"))
    direction = "backward"

    def _prepare_grad(self, spec, x, kernel, bias, dy) -> Prepared:
        dtype = x.dtype
        x_cl, kernel, bias, dy = channels_last_operands(spec, x, kernel, bias, dy)

        def run():
            dz = self.cotangent(spec, x_cl, kernel, bias, dy)
            dx, dkernel, dbias = self.grads(spec, x_cl, kernel, dz)
            dx = dx if spec.channels_last else np.moveaxis(dx, -1, 1)
            return dx, dkernel.astype(dtype, copy=False), dbias if bias is not None else None

        return Prepared(run=run, to_numpy=grad_arrays)

    def cotangent(self, spec: Conv3DSpec, x_cl, kernel, bias, dy) -> np.ndarray:
        return im2col_grad.pre_activation_cotangent(
            np, lambda: conv3d_channels_last(np, x_cl, kernel, bias, spec, DEFAULT_WORKSPACE_BYTES),
            dy, spec, x_cl.dtype)

    def grads(self, spec: Conv3DSpec, x_cl, kernel, dz):
        return im2col_grad.conv3d_grad_channels_last(np, x_cl, kernel, dz, spec)


class DxPaddingOffset(GradMutant):
    """col2im crops the padded gradient one cell late on W when W is padded. Exposed by "same"
    with W padding before the input."""

    bug_class = "backward: padding offset in dx"

    def grads(self, spec, x_cl, kernel, dz):
        dx, dk, db = super().grads(spec, x_cl, kernel, dz)
        if spec.pads[2][0] > 0:
            dx = np.roll(dx, -1, axis=3)
        return dx, dk, db


class DxStrideTail(GradMutant):
    """With a W stride > 1 the last input column's gradient is never written (left 0). Exposed by
    a strided W axis whose last column some output reads."""

    bug_class = "backward: stride tail of dx dropped"

    def grads(self, spec, x_cl, kernel, dz):
        dx, dk, db = super().grads(spec, x_cl, kernel, dz)
        if spec.strides[2] > 1:
            dx = dx.copy()
            dx[:, :, :, -1] = 0
        return dx, dk, db


class DkernelDilationIgnored(GradMutant):
    """dkernel gathers the input with dilation 1 (the forward and dx honour it). Exposed by any
    dilation > 1."""

    bug_class = "backward: dilation ignored in dkernel"

    def grads(self, spec, x_cl, kernel, dz):
        dx, dk, db = super().grads(spec, x_cl, kernel, dz)
        if max(spec.dilation_rate) > 1:  # tap (a, b, c) read at o*s + (a, b, c), not o*s + a*d
            xpad = im2col_grad.padded_input(np, x_cl, spec)
            cg, fg = spec.in_channels // spec.groups, spec.filters // spec.groups
            dk = np.zeros_like(dk)
            for a, b, c in np.ndindex(*spec.kernel_size):
                view = xpad[:, a:, b:, c:][:, ::spec.strides[0], ::spec.strides[1], ::spec.strides[2]]
                view = view[:, :dz.shape[1], :dz.shape[2], :dz.shape[3]]
                for g in range(spec.groups):
                    dk[a, b, c, :, g * fg:(g + 1) * fg] = np.einsum(
                        "ndhwc,ndhwf->cf", view[..., g * cg:(g + 1) * cg], dz[..., g * fg:(g + 1) * fg])
        return dx, dk, db


class DkernelGroupOffset(GradMutant):
    """Grouped dkernel: group g's filters get group g+1's input channels. Exposed by groups > 1
    with different data per group."""

    bug_class = "backward: grouped channel offset in dkernel"

    def grads(self, spec, x_cl, kernel, dz):
        dx, dk, db = super().grads(spec, x_cl, kernel, dz)
        if spec.groups > 1:
            fg = spec.filters // spec.groups
            dk = np.roll(dk, fg, axis=-1)
        return dx, dk, db


class DbiasFirstSampleOnly(GradMutant):
    """dbias reduces over the first sample of the batch only. Exposed by a batch > 1."""

    bug_class = "backward: dbias over the wrong axes (batch dropped)"

    def grads(self, spec, x_cl, kernel, dz):
        dx, dk, _ = super().grads(spec, x_cl, kernel, dz)
        return dx, dk, dz[0].reshape(-1, spec.filters).sum(axis=0)


class DerivativeAtOutput(GradMutant):
    """act' evaluated at the output y = act(z) instead of at z (right for relu, whose sign is
    kept). Exposed by tanh, sigmoid, gelu and the like."""

    bug_class = "backward: activation derivative taken at the output"

    def cotangent(self, spec, x_cl, kernel, bias, dy):
        if spec.activation in (None, "linear"):
            return super().cotangent(spec, x_cl, kernel, bias, dy)
        z = conv3d_channels_last(np, x_cl, kernel, bias, spec, DEFAULT_WORKSPACE_BYTES)
        z = z if spec.channels_last else np.moveaxis(z, -1, 1)
        y = apply_activation(z.astype(np.float64), spec.activation)
        if y.shape != z.shape:  # glu halves the axis: evaluate at z as a fallback
            y = z
        dz = vjp(spec.activation, y, dy.astype(np.float64)).astype(x_cl.dtype)
        return dz if spec.channels_last else np.moveaxis(dz, 1, -1)


class DkernelHalfPrecision(GradMutant):
    """dkernel accumulated in float16 (a low-precision workspace for the long N*Do*Ho*Wo sums).
    Exposed by realistic data."""

    bug_class = "backward: low-precision accumulation of dkernel"

    def grads(self, spec, x_cl, kernel, dz):
        dx, _, db = super().grads(spec, x_cl, kernel, dz)
        dk = super().grads(spec, x_cl.astype(np.float16), kernel.astype(np.float16),
                           dz.astype(np.float16))[1]
        return dx, dk.astype(x_cl.dtype), db


class DxBatchTail(GradMutant):
    """Batch processed in pairs; with an odd batch the last sample's dx is its neighbour's.
    Exposed by an odd batch > 1."""

    bug_class = "backward: batch tail of dx (odd batch)"

    def grads(self, spec, x_cl, kernel, dz):
        dx, dk, db = super().grads(spec, x_cl, kernel, dz)
        if spec.batch > 1 and spec.batch % 2:
            dx = dx.copy()
            dx[-1] = dx[-2]
        return dx, dk, db


class DxFlippedKernel(GradMutant):
    """The transposed convolution for dx uses the kernel flipped on every axis (a doubled flip).
    Exposed by a kernel larger than 1 on some axis with non-symmetric weights."""

    bug_class = "backward: flipped kernel in dx"

    def grads(self, spec, x_cl, kernel, dz):
        _, dk, db = super().grads(spec, x_cl, kernel, dz)
        dx = super().grads(spec, x_cl, np.ascontiguousarray(kernel[::-1, ::-1, ::-1]), dz)[0]
        return dx, dk, db


class DkernelSwappedAxes(GradMutant):
    """dkernel written with its H and W kernel axes swapped (kh == kw, so the shape hides it).
    Exposed by kh == kw > 1."""

    bug_class = "backward: swapped kernel axes in dkernel"

    def grads(self, spec, x_cl, kernel, dz):
        dx, dk, db = super().grads(spec, x_cl, kernel, dz)
        if spec.kernel_size[1] == spec.kernel_size[2]:
            dk = np.ascontiguousarray(np.swapaxes(dk, 1, 2))
        return dx, dk, db


class GradNaNSwallowed(GradMutant):
    """NaN and inf in the gradients replaced by 0 / the largest finite value (a nan_to_num in a
    fused epilogue). Exposed by special values."""

    bug_class = "backward: NaN swallowed"

    def grads(self, spec, x_cl, kernel, dz):
        return tuple(np.nan_to_num(g) for g in super().grads(spec, x_cl, kernel, dz))


class DkernelOrderRace(GradMutant):
    """dkernel's reduction order changes from call to call (a split-K reduction whose partial
    sums arrive in any order). Exposed by running the same input twice."""

    bug_class = "backward: nondeterministic dkernel"
    expected = (Status.NONDETERMINISTIC,)
    _calls = 0

    def grads(self, spec, x_cl, kernel, dz):
        dx, dk, db = super().grads(spec, x_cl, kernel, dz)
        DkernelOrderRace._calls += 1
        if DkernelOrderRace._calls % 2 and spec.batch > 1:  # the samples' halves summed apart
            half = spec.batch // 2
            first, second = (respec(spec, input_shape=(n, *spec.input_shape[1:]))
                             for n in (half, spec.batch - half))
            dk = (super().grads(first, x_cl[:half], kernel, dz[:half])[1]
                  + super().grads(second, x_cl[half:], kernel, dz[half:])[1])
        return dx, dk, db


GRAD_ZOO: tuple[type[GradMutant], ...] = (
    DxPaddingOffset, DxStrideTail, DkernelDilationIgnored, DkernelGroupOffset, DbiasFirstSampleOnly,
    DerivativeAtOutput, DkernelHalfPrecision, DxBatchTail, DxFlippedKernel, DkernelSwappedAxes,
    GradNaNSwallowed, DkernelOrderRace,
)
