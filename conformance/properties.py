"""Oracle-free properties (VERIFICATION.md §5) for shapes too large for the reference.

Data are integers in {-1, 0, 1}, so every partial sum is an exactly representable integer in any
format with at least log2(2K) significand bits: each property must then hold bit for bit, in
whatever order a backend sums. A shape whose K is too large for the dtype is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from conformance.cases import command
from conformance.execute import modified_inputs, refusal_message, refusal_status
from conformance.judge import output_problem
from reference.conv import conv3d
from reference.formats import FORMATS, numpy_dtype
from reference.spec import spec_for_arrays
from runtime.records import Record, Status
from runtime.worker import Worker


class _Refused(Exception):
    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Problem:
    """The base problem the properties perturb: channels-last input shape and filters."""

    batch: int
    spatial: tuple[int, int, int]
    channels: int
    filters: int
    kernel: tuple[int, int, int] = (3, 3, 3)

    @property
    def label(self) -> str:
        d, h, w = self.spatial
        return (f"mb{self.batch}_ic{self.channels}id{d}ih{h}iw{w}_oc{self.filters}"
                f"_k{'x'.join(map(str, self.kernel))}")


class Caller:
    """conv3d on the worker; an output that is not a finite array of the right shape and dtype,
    or an input the backend wrote into, ends the property with FAIL."""

    def __init__(self, worker: Worker, dtype: str) -> None:
        self.worker, self.dtype = worker, dtype

    @staticmethod
    def _usable(outcome):
        """The outcome of a call that returned, untouched inputs; else the property ends here."""
        if outcome.kind == "crashed":
            raise _Refused(Status.CRASHED, outcome.message)
        if outcome.kind == "raised":
            raise _Refused(refusal_status(outcome.error_type), refusal_message(outcome))
        if outcome.changed_inputs:
            raise _Refused(Status.FAIL, modified_inputs(outcome.changed_inputs))
        return outcome

    def __call__(self, x, w, b=None, **args) -> np.ndarray:
        cast = [None if a is None else np.ascontiguousarray(a, dtype=numpy_dtype(self.dtype))
                for a in (x, w, b)]
        outcome = self._usable(self.worker.call(*cast, args, repeats=1))
        shape = spec_for_arrays(x.shape, w.shape, b is not None, **args).output_shape
        problem = output_problem(outcome.outputs[0], shape, self.dtype, finite=True)
        if problem:
            raise _Refused(Status.FAIL, problem)
        return outcome.outputs[0].astype(np.float64)


class GradCaller(Caller):
    """conv3d_grad on the worker: (dx, dkernel, dbias) as float64, each checked like an output;
    `forward` gives the same backend's conv3d."""

    def __call__(self, x, w, b, dy, **args) -> tuple:
        cast = [None if a is None else np.ascontiguousarray(a, dtype=numpy_dtype(self.dtype))
                for a in (x, w, b, dy)]
        outcome = self._usable(self.worker.call_grad(*cast, args, repeats=1))
        grads = outcome.outputs[0]
        if not isinstance(grads, tuple) or len(grads) != 3 or (grads[2] is None) != (b is None):
            raise _Refused(Status.FAIL, "did not return (dx, dkernel, dbias) (dbias None without bias)")
        out = []
        for name, g, like in zip(("dx", "dkernel", "dbias"), grads, (x, w, b)):
            if like is None:
                out.append(None)
                continue
            problem = output_problem(g, like.shape, self.dtype, finite=True)
            if problem:
                raise _Refused(Status.FAIL, f"{name}: {problem}")
            out.append(g.astype(np.float64))
        return tuple(out)

    def forward(self, x, w, b=None, **args) -> np.ndarray:
        """The backend's conv3d, or the reference's for a backward-only backend (exact here)."""
        if "forward" in self.worker.capabilities.directions:
            return Caller.__call__(self, x, w, b, **args)
        return conv3d(x, w, b, **args)


def _ints(rng, shape) -> np.ndarray:
    return rng.integers(-1, 2, shape).astype(np.float64)


def linearity_in_x(f, p, rng):
    x1, x2 = _ints(rng, (p.batch, *p.spatial, p.channels)), _ints(rng, (p.batch, *p.spatial, p.channels))
    w = _ints(rng, (*p.kernel, p.channels, p.filters))
    return f(x1 + x2, w), f(x1, w) + f(x2, w)


def linearity_in_w(f, p, rng):
    x = _ints(rng, (p.batch, *p.spatial, p.channels))
    w1, w2 = _ints(rng, (*p.kernel, p.channels, p.filters)), _ints(rng, (*p.kernel, p.channels, p.filters))
    return f(x, w1 + w2), f(x, w1) + f(x, w2)


def bias_shift(f, p, rng):
    x, w = _ints(rng, (p.batch, *p.spatial, p.channels)), _ints(rng, (*p.kernel, p.channels, p.filters))
    b = rng.integers(-8, 9, p.filters).astype(np.float64)
    return f(x, w, b, padding="same"), f(x, w, padding="same") + b


def translation_equivariance(f, p, rng):
    x, w = _ints(rng, (p.batch, *p.spatial, p.channels)), _ints(rng, (*p.kernel, p.channels, p.filters))
    return f(x[:, 1:, 2:, 3:], w), f(x, w)[:, 1:, 2:, 3:]


def channels_first_is_transposed(f, p, rng):
    x, w = _ints(rng, (p.batch, *p.spatial, p.channels)), _ints(rng, (*p.kernel, p.channels, p.filters))
    first = f(np.moveaxis(x, -1, 1), w, padding="same", strides=(2, 1, 2),
              data_format="channels_first")
    return first, np.moveaxis(f(x, w, padding="same", strides=(2, 1, 2)), -1, 1)


def groups_are_concatenated_convs(f, p, rng):
    groups = 4
    x = _ints(rng, (p.batch, *p.spatial, p.channels))
    cg, fg = p.channels // groups, p.filters // groups
    w = _ints(rng, (*p.kernel, cg, p.filters))
    parts = [f(x[..., g * cg:(g + 1) * cg], w[..., g * fg:(g + 1) * fg]) for g in range(groups)]
    return f(x, w, groups=groups), np.concatenate(parts, axis=-1)


def strided_is_subsampled(f, p, rng):
    x, w = _ints(rng, (p.batch, *p.spatial, p.channels)), _ints(rng, (*p.kernel, p.channels, p.filters))
    return f(x, w, strides=(2, 3, 1)), f(x, w)[:, ::2, ::3, ::1]


def dilation_is_a_sparse_kernel(f, p, rng):
    x, w = _ints(rng, (p.batch, *p.spatial, p.channels)), _ints(rng, (*p.kernel, p.channels, p.filters))
    kd, kh, kw = p.kernel
    sparse = np.zeros((kd, 2 * kh - 1, 3 * kw - 2, p.channels, p.filters))
    sparse[:, ::2, ::3] = w
    return f(x, w, dilation_rate=(1, 2, 3)), f(x, sparse)


def same_is_valid_on_padded_input(f, p, rng):
    x, w = _ints(rng, (p.batch, *p.spatial, p.channels)), _ints(rng, (2, 4, 3, p.channels, p.filters))
    # "same" with stride 2 and even kernels: total padding per axis, odd cell after
    pads = []
    for n, k in zip(p.spatial, (2, 4, 3)):
        total = max((-(-n // 2) - 1) * 2 + k - n, 0)
        pads.append((total // 2, total - total // 2))
    padded = np.pad(x, ((0, 0), *pads, (0, 0)))
    return f(x, w, strides=2, padding="same"), f(padded, w, strides=2)


def batch_split(f, p, rng):
    x = _ints(rng, (max(p.batch, 2), *p.spatial, p.channels))
    w = _ints(rng, (*p.kernel, p.channels, p.filters))
    return f(x, w)[1:2], f(x[1:2], w)


def zero_kernel_gives_activation_of_bias(f, p, rng):
    x = _ints(rng, (p.batch, *p.spatial, p.channels))
    b = rng.integers(-8, 9, p.filters).astype(np.float64)
    got = f(x, np.zeros((*p.kernel, p.channels, p.filters)), b, activation="relu", padding="same")
    return got, np.broadcast_to(np.maximum(b, 0), got.shape)


def pointwise_is_a_matmul(f, p, rng):
    x, w = _ints(rng, (p.batch, *p.spatial, p.channels)), _ints(rng, (1, 1, 1, p.channels, p.filters))
    return f(x, w), (x.astype(np.int64) @ w[0, 0, 0].astype(np.int64)).astype(np.float64)


PROPERTIES: dict[str, Callable] = {fn.__name__: fn for fn in (
    linearity_in_x, linearity_in_w, bias_shift, translation_equivariance,
    channels_first_is_transposed, groups_are_concatenated_convs, strided_is_subsampled,
    dilation_is_a_sparse_kernel, same_is_valid_on_padded_input, batch_split,
    zero_kernel_gives_activation_of_bias, pointwise_is_a_matmul)}


# ---- backward (VERIFICATION.md §7): each side a tuple of arrays, compared exactly -----------

def _grad_operands(p, rng, groups: int = 1):
    x = _ints(rng, (p.batch, *p.spatial, p.channels))
    w = _ints(rng, (*p.kernel, p.channels // groups, p.filters))
    b = _ints(rng, (p.filters,))
    dy = _ints(rng, (p.batch, *(n - k + 1 for n, k in zip(p.spatial, p.kernel)), p.filters))
    return x, w, b, dy


def grad_linearity_in_dy(g, p, rng):
    x, w, b, dy1 = _grad_operands(p, rng)
    dy2 = _ints(rng, dy1.shape)
    both = [u + v for u, v in zip(g(x, w, b, dy1), g(x, w, b, dy2))]
    return np.concatenate([a.ravel() for a in g(x, w, b, dy1 + dy2)]), np.concatenate(
        [a.ravel() for a in both])


def grad_dbias_is_sum_of_dy(g, p, rng):
    x, w, b, dy = _grad_operands(p, rng)
    return g(x, w, b, dy)[2], dy.sum(axis=(0, 1, 2, 3))


def grad_adjoint_identity(g, p, rng):
    """sum(conv(x, w) * dy) = sum(x * dx) (per sample) = sum(w * dkernel), exactly on integers."""
    x, w, _, dy = _grad_operands(p, rng)
    dx, dk, _ = g(x, w, None, dy)
    ydy = np.sum(g.forward(x, w) * dy, axis=(1, 2, 3, 4))
    return (np.array([*np.sum(x * dx, axis=(1, 2, 3, 4)), np.sum(w * dk)]),
            np.array([*ydy, np.sum(ydy)]))


def grad_groups_are_block_diagonal(g, p, rng):
    groups = 4
    x, w, b, dy = _grad_operands(p, rng, groups)
    cg, fg = p.channels // groups, p.filters // groups
    parts = [g(x[..., i * cg:(i + 1) * cg], w[..., i * fg:(i + 1) * fg], b[i * fg:(i + 1) * fg],
               dy[..., i * fg:(i + 1) * fg]) for i in range(groups)]
    whole = g(x, w, b, dy, groups=groups)
    split = [np.concatenate([part[k] for part in parts], axis=-1) for k in range(3)]
    return (np.concatenate([a.ravel() for a in whole]), np.concatenate([a.ravel() for a in split]))


BACKWARD_PROPERTIES: dict[str, Callable] = {fn.__name__: fn for fn in (
    grad_linearity_in_dy, grad_dbias_is_sum_of_dy, grad_adjoint_identity,
    grad_groups_are_block_diagonal)}


def check_property(worker: Worker, name: str, problem: Problem, dtype: str, seed: int,
                   profile: str) -> Record:
    """One property on one problem: a record (PASS / FAIL / MISTRUSTED / UNSUPPORTED / CRASHED ...).

    MISTRUSTED: both sides held one value everywhere, which a backend ignoring its inputs
    (returning zeros, say) would also satisfy."""
    backward = name in BACKWARD_PROPERTIES
    direction = "backward" if backward else "forward"

    def record(status: Status, message: str = "") -> Record:
        return Record(backend=worker.name, check="property", case=f"property:{name}:{problem.label}",
                      status=status, message=message, descriptor=problem.label, dtype=dtype,
                      data="integer", seed=seed, direction=direction,
                      repro=f"{command(worker.name)} --property {name} "
                            f"--profile {profile} --dtype {dtype} --seed {seed}"
                            + " --direction backward" * backward)

    caps = worker.capabilities
    k = max(27, 4 * 4 * 3) * problem.channels * 2  # largest |partial sum| any property makes
    if backward:  # dkernel and dbias sum N*Do*Ho*Wo terms, dx 27*F
        k = max(k, problem.batch * int(np.prod(problem.spatial)), 27 * problem.filters)
    if direction not in caps.directions:
        return record(Status.UNSUPPORTED, f"the {direction} direction is not supported")
    precision = caps.precision(dtype, direction)
    if dtype not in caps.dtypes or k >= 2 ** FORMATS[precision].exact_bits:
        held = dtype if precision == dtype else f"{dtype} computed in {precision}"
        return record(Status.UNSUPPORTED, f"{held} cannot hold sums up to {k} exactly")
    if name in ("groups_are_concatenated_convs", "grad_groups_are_block_diagonal") and not caps.groups:
        return record(Status.UNSUPPORTED, "grouped convolution not supported")
    if name == "dilation_is_a_sparse_kernel" and not caps.dilation:
        return record(Status.UNSUPPORTED, "dilation not supported")
    try:
        caller = GradCaller(worker, dtype) if backward else Caller(worker, dtype)
        got, expected = (BACKWARD_PROPERTIES if backward else PROPERTIES)[name](
            caller, problem, np.random.default_rng(seed))
    except _Refused as refused:
        return record(refused.status, str(refused))
    if got.shape != expected.shape:
        return record(Status.FAIL, f"shapes differ: {got.shape} vs {expected.shape}")
    diff = np.argwhere(got != expected)
    if len(diff):
        idx = tuple(int(i) for i in diff[0])
        return record(Status.FAIL, f"{len(diff)} of {got.size} elements differ; first "
                                   f"at {idx}: {float(got[idx])} vs {float(expected[idx])}")
    if got.size > 1 and np.all(got == got.flat[0]):
        return record(Status.MISTRUSTED, f"every element is {float(got.flat[0])}: too weak to "
                                         "tell a correct backend from one that ignores its inputs")
    return record(Status.PASS)
