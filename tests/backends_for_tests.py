"""Backends that misbehave at the process level, for the isolation tests (loaded by module:attr)."""

import os
import time

import numpy as np

from backends import Unsupported, declare
from backends.keras_backend import KerasTorch
from conformance.mutants import layer_zoo
from reference import conv3d as reference_conv3d


def aborts(x, kernel, bias=None, **args):
    """Kills its own process, like a segfault in native code."""
    os.abort()


def hangs(x, kernel, bias=None, **args):
    time.sleep(3600)


def raises_runtime_error(x, kernel, bias=None, **args):
    raise RuntimeError("internal error in a native kernel")


def exact_float32(x, kernel, bias=None, **args):
    """A user's function with the reference signature: the reference rounded to x's dtype."""
    return reference_conv3d(x, kernel, bias, **args).astype(np.asarray(x).dtype)


def contiguous_only(x, kernel, bias=None, **args):
    """Refuses non-contiguous arrays, as a C extension might."""
    if not all(a.flags.c_contiguous for a in (x, kernel, bias) if a is not None):
        raise ValueError("needs C-contiguous arrays")
    return exact_float32(x, kernel, bias, **args)


def returns_none(x, kernel, bias=None, **args):
    return None


def wrong_shape(x, kernel, bias=None, **args):
    """Drops all channels but the first."""
    return exact_float32(x, kernel, bias, **args)[..., :1]


def writes_into_input(x, kernel, bias=None, **args):
    """A correct output, then scribbles over its input (as an in-place kernel might)."""
    out = exact_float32(x, kernel, bias, **args)
    x[...] = 0
    return out


def returns_nan(x, kernel, bias=None, **args):
    return np.full_like(exact_float32(x, kernel, bias, **args), np.nan)


def returns_zeros(x, kernel, bias=None, **args):
    """Right shape and dtype, ignores its inputs: linearity and the like hold for it."""
    return np.zeros_like(exact_float32(x, kernel, bias, **args))


def memory_bomb(x, kernel, bias=None, **args):
    """Touches 4 GiB, 64 MiB at a time."""
    hoard = []
    for _ in range(64):
        hoard.append(np.ones(2**23))
    return hoard


def hangs_when_large(x, kernel, bias=None, **args):
    """Correct on small inputs, hangs on larger ones: shrinking reaches the boundary."""
    if np.size(x) > 60:
        time.sleep(3600)
    return exact_float32(x, kernel, bias, **args)


def reference_grad_float32(x, kernel, bias, dy, **args):
    """A correct conv3d_grad: the exact gradients rounded to float32."""
    from reference import conv3d_grad

    grads = conv3d_grad(x, kernel, bias, dy, **args)
    return tuple(None if g is None else g.astype(np.float32) for g in grads)


def grad_bias_over_channels(x, kernel, bias, dy, **args):
    """dbias summed over the wrong axes (the spatial sum of each sample's first element)."""
    dx, dk, db = reference_grad_float32(x, kernel, bias, dy, **args)
    if db is not None:
        db = db + np.float32(1)
    return dx, dk, db


def grad_dx_shifted(x, kernel, bias, dy, **args):
    """dx one cell off along W (a padding offset in col2im)."""
    dx, dk, db = reference_grad_float32(x, kernel, bias, dy, **args)
    axis = 3 if args.get("data_format", "channels_last") == "channels_last" else 4
    return np.roll(dx, 1, axis=axis), dk, db


class AnyLayerMutant(KerasTorch):
    """One worker for every layer mutant: each probe runs as the mutant params["mutant"] names."""

    def layer_probe(self, probe, params):
        params = dict(params)
        return getattr(layer_zoo, params.pop("mutant"))().layer_probe(probe, params)


@declare(dtypes=("float32",), data_formats=("channels_last",))
def declares_no_dilation(x, kernel, bias=None, **args):
    """A user's function that says what it supports and declines dilation."""
    if args.get("dilation_rate", 1) not in (1, (1, 1, 1)):
        raise Unsupported("dilation is not implemented")
    return exact_float32(x, kernel, bias, **args)


def _blas_threads() -> int:
    """The thread count the worker was given (Backend.set_threads limits the BLAS loaded then to
    it; one loaded later keeps its default, hence the smallest)."""
    from threadpoolctl import threadpool_info

    return min((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)


@declare(thread_invariant=True)
def thread_dependent_rounding(x, kernel, bias=None, **args):
    """Correct at every thread count, but summed in another order above one thread (the
    reference rounded once on one thread, a float32 GEMM on more, as a split-K kernel might)
    while it declares thread-count-invariant results."""
    if _blas_threads() == 1:
        return exact_float32(x, kernel, bias, **args)
    from backends.registry import get_backend

    return get_backend("numpy-im2col").conv3d(x, kernel, bias, **args)


def wrong_at_one_thread(x, kernel, bias=None, **args):
    """Drops the bias on one thread only (a serial fallback path with a bug)."""
    out = exact_float32(x, kernel, None if _blas_threads() == 1 else bias, **args)
    return out


def marks_its_node(x, kernel, bias=None, **args):
    """exact_float32, leaving a file behind when it runs on the Ray node whose raylet has
    CONV3D_TEST_NODE set (the Ray executor's test kills that node once the file appears)."""
    if os.environ.get("CONV3D_TEST_NODE") and os.environ.get("CONV3D_TEST_MARK"):
        with open(os.environ["CONV3D_TEST_MARK"], "a") as handle:
            handle.write(f"{os.getpid()}\n")
    return exact_float32(x, kernel, bias, **args)


def wrong_last_row(x, kernel, bias=None, **args):
    """Correct but for the output's last element (an index computed in 32 bits would do this)."""
    out = exact_float32(x, kernel, bias, **args)
    out.reshape(-1)[-1] += 1
    return out
