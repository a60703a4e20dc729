"""numba-direct: our CPU backend of direct Conv3D kernels, compiled by numba and register-blocked
like a GEMM micro-kernel (modules: plan, weights, layout, slabs, kernels, drivers).

Each kernel computes a block of outputs held in vector registers while it runs over every kernel
tap and input channel; the block sizes are compile-time constants, so LLVM keeps the accumulators
in registers and vectorises the innermost loop. numba compiles them for the vector width the CPU
really has (reference.numba_target: 512-bit where AVX-512 is, which LLVM's tuning for Intel server
cores would otherwise split into 256-bit halves) and the blocks are sized for that width's
registers and the L2 cache (`plan`). Four kernels, chosen by `plan`:
- broadcast: `rw` output pixels x `fb` filters, one input value times a vector of filters (dense
  layers, and groups with at least MIN_BROADCAST_FILTERS filters each);
- wvector: `rw` output pixels along W (the vector) x the filters of one group, one weight times a
  vector of inputs, from a slab transposed to (N, D, H, C, W) (groups of 2 to 15 filters);
- depthwise: rh x rw output pixels x `fb` channels, reading the input where it lies (one channel
  per group);
- lane: a vector of input values (one per filter) times a vector of weights, for the rest (the
  input is expanded so that lane f holds the channel that feeds filter f).
numba may reassociate and fuse (fastmath 'reassoc' and 'contract', never the no-NaN/no-inf flags),
which the VERIFICATION.md bound allows for any summation order. Rows whose width is not a multiple
of the block end with a block that overlaps the one before (recomputing, never reading past the
row). Unpadded dense layers and depthwise layers are read where they lie; the others in padded
slabs (backends.im2col tiles), so the extra memory stays within the workspace.
Activations are evaluated by the reference's NumPy definitions. Backward, one engine per call:
for groups of 16 to 64 filters (to 32 for 1x1x1 kernels) and layers of 8 groups or more, dkernel
by numba kernels (backends.numba_direct.filter_grad) and dx by the transposed convolution run by
the forward kernels (backends.numba_direct.transposed); otherwise, and for a non-finite weight's dx,
NumPy's GEMM (backends.im2col_grad: im2col^T dz, col2im). dbias is a sum. Without numba the
backend is unavailable; numpy-im2col is the backend that needs no numba.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import numpy as np

from backends import im2col_grad
from backends.base import Availability, Backend, Capabilities, Prepared
from backends.numpy_im2col import (
    LOW_PRECISION_CAPABILITIES,
    channels_last_operands,
    epilogue,
    rounded,
    working_dtype,
    working_input,
)
from reference.spec import Conv3DSpec

DEFAULT_WORKSPACE_BYTES = 256 * 2**20


class NumbaDirect(Backend):
    """Every SPEC.md feature; float32 and float64 accumulate in the input dtype, float16 and
    bfloat16 in float32."""

    name = "numba-direct"
    libraries = ("numba", "numpy")
    capabilities = Capabilities(
        host_memory_traced=True, directions=("forward", "backward"), thread_invariant=True,
        **LOW_PRECISION_CAPABILITIES,
        notes=("four register-blocked numba kernels (broadcast, wvector, depthwise, lane), chosen per layer",
               "backward: for groups of 16-64 filters (1x1x1: 16-32) or 8 groups or more, dkernel by "
               "numba kernels and dx by the same forward kernels (transposed convolution, one per "
               "stride phase); otherwise dkernel = im2col^T dz and dx by col2im (NumPy GEMM); dbias a sum",
               "activations evaluated by the reference's NumPy definitions",
               "thread-count invariant: every prange job writes outputs of its own, in a fixed order",
               f"workspace budget {DEFAULT_WORKSPACE_BYTES // 2**20} MiB by default"))

    def __init__(self, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES) -> None:
        self.workspace_bytes = workspace_bytes

    def availability(self) -> Availability:
        if importlib.util.find_spec("numba") is None:
            return Availability(False, "numba is not installed")
        return Availability(True)

    def set_threads(self, threads: int) -> None:
        import numba

        super().set_threads(threads)  # NumPy's BLAS
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))

    def _forward(self, kernel: np.ndarray, bias: np.ndarray | None, spec: Conv3DSpec, dtype: np.dtype,
                 in_place: bool = True) -> Callable[[np.ndarray], np.ndarray]:
        """The pre-activation forward pass (channels last in and out), weights packed once.
        `in_place`: the input will be C-contiguous (see `plan`)."""
        from backends.numba_direct.drivers import conv3d_channels_last
        from backends.numba_direct.plan import plan, rows_joined
        from backends.numba_direct.weights import pack_bias, pack_weights

        run_spec = rows_joined(spec)
        layer_plan = plan(run_spec, dtype, in_place and bool(np.isfinite(kernel).all()))
        wp = pack_weights(kernel, run_spec, layer_plan)
        bp = pack_bias(bias, run_spec, layer_plan, dtype)
        out_shape = (spec.batch, *spec.output_spatial, spec.filters)
        workspace = self.workspace_bytes
        return lambda x_cl: conv3d_channels_last(x_cl.reshape(run_spec.input_shape), wp, bp, run_spec,
                                                 layer_plan, workspace).reshape(out_shape)

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        dtype, work = x.dtype, working_dtype(x.dtype)
        x_cl, kernel, bias, _ = channels_last_operands(spec, x, kernel, bias)
        forward = self._forward(kernel, bias, spec, work, work != dtype or x_cl.flags.c_contiguous)
        return Prepared(run=lambda: epilogue(forward(working_input(x_cl)), spec, dtype),
                        to_numpy=np.ascontiguousarray)

    def _prepare_grad(self, spec, x, kernel, bias, dy) -> Prepared:
        from backends.numba_direct.filter_grad import MIN_GROUPS, blocked_kernel_grad, grouped_kernel_grad
        from backends.numba_direct.plan import filter_grad_blocks
        from backends.numba_direct.transposed import input_grad

        dtype, work = x.dtype, working_dtype(x.dtype)
        x_cl, kernel, bias, dy = channels_last_operands(spec, x, kernel, bias, dy)
        x_cl = working_input(x_cl)
        forward = self._forward(kernel, bias, spec, work, x_cl.flags.c_contiguous)
        # One engine per call: dkernel by a numba kernel (groups of 16-64 filters, or many groups)
        # and dx by the transposed convolution of our kernels, or both by NumPy's GEMM (im2col^T dz
        # and col2im). Mixed, BLAS's threads go on spinning after each GEMM and take the cores
        # from the numba kernel that comes next (measured 1.3-3x on the default bench layers).
        # A non-finite weight takes col2im: the transposed convolution's zero border would add 0 * inf.
        blocks = filter_grad_blocks(spec, work) if spec.groups < MIN_GROUPS else None
        numba_dkernel = blocks is not None or spec.groups >= MIN_GROUPS
        transposed = (input_grad(kernel, spec, lambda w, s, d: self._forward(w, None, s, d))
                      if numba_dkernel and np.isfinite(kernel).all() else None)

        def run():
            dz = np.ascontiguousarray(im2col_grad.pre_activation_cotangent(
                np, lambda: forward(x_cl), dy, spec, work))
            dx = transposed(dz) if transposed else im2col_grad.input_grad_col2im(np, kernel, dz, spec)
            if blocks:
                dkernel = blocked_kernel_grad(x_cl, dz, spec, *blocks)
            elif spec.groups >= MIN_GROUPS:
                dkernel = grouped_kernel_grad(x_cl, dz, spec)
            else:
                dkernel = im2col_grad.kernel_grad(np, x_cl, dz, spec)
            dx = dx if spec.channels_last else np.moveaxis(dx, -1, 1)
            dbias = dz.reshape(-1, spec.filters).sum(axis=0) if bias is not None else None
            return dx, dkernel, dbias

        return Prepared(run=run, to_numpy=lambda grads: rounded(grads, dtype))
