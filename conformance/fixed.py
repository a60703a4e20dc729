"""Fixed cases: SPEC.md's worked shapes, the seed example, and reduced real network layers."""

from __future__ import annotations

import math

from conformance.cases import Case
from conformance.strategies import EXTREME_ACTIVATIONS
from reference.activations import ACTIVATIONS
from reference.spec import Conv3DSpec, axis_output
from runtime.workloads import workload_rows, workload_spec

# (input shape channels-last, layer arguments) from SPEC.md's table of worked shapes
WORKED = [
    ((1, 5, 5, 5, 3), dict(filters=4, kernel_size=3)),
    ((1, 8, 8, 8, 3), dict(filters=4, kernel_size=3, strides=2)),
    ((1, 8, 8, 8, 3), dict(filters=4, kernel_size=3, strides=2, padding="same")),
    ((1, 8, 8, 8, 3), dict(filters=4, kernel_size=3, strides=(2, 1, 2), padding="same")),
    ((1, 8, 8, 8, 3), dict(filters=4, kernel_size=3, dilation_rate=(1, 2, 2))),
    ((1, 2, 2, 2, 3), dict(filters=4, kernel_size=7, strides=3, padding="same")),
    ((3, 5, 5, 5, 4), dict(filters=6, kernel_size=(2, 2, 3), strides=(2, 1, 2), groups=2)),
    ((2, 8, 8, 8, 4), dict(filters=6, kernel_size=2, padding="same", dilation_rate=(2, 3, 4), groups=2)),
]
SEED_EXAMPLE = ((4, 10, 10, 10, 128), dict(filters=32, kernel_size=3, activation="relu"))
REDUCED_MAX_MACS = 60_000_000  # per reduced layer: ~50 ms of reference time
REDUCED_MAX_ELEMENTS = 4_000_000  # input and kernel elements (whole-volume kernels are huge)


def _spec(shape, args, data_format="channels_last") -> Conv3DSpec:
    if data_format == "channels_first":
        shape = (shape[0], shape[-1], *shape[1:-1])
    return Conv3DSpec(input_shape=shape, data_format=data_format, **args)


def activation_cases() -> list[Case]:
    """Every activation once on normal data, in both layouts: generated cases reach each of the
    31 names only by chance, so a wrong activation could slip through a seed."""
    return [Case(_spec((2, 5, 6, 8, 3), dict(filters=6, kernel_size=(2, 3, 2), strides=(1, 2, 1),
                                             padding="same", activation=name), fmt),
                 data="normal", seed=i, check="worked")
            for i, name in enumerate(ACTIVATIONS) for fmt in ("channels_last", "channels_first")]


def special_value_cases() -> list[Case]:
    """NaN, +-inf and -0.0 through each activation that extreme data may meet, both layouts:
    like activation_cases, deterministic coverage that generated cases only reach by chance."""
    return [Case(_spec((2, 5, 6, 8, 3), dict(filters=6, kernel_size=(2, 3, 2), padding="same",
                                             activation=name), fmt),
                 data="special", seed=i, check="worked")
            for i, name in enumerate(EXTREME_ACTIVATIONS) for fmt in ("channels_last", "channels_first")]


def worked_cases() -> list[Case]:
    """Every worked shape in both layouts, exact data, the seed example (exact and normal), every
    activation, and special values through the activations extreme data meets."""
    out = [Case(_spec(shape, args, fmt), data="exact", check="worked")
           for shape, args in WORKED for fmt in ("channels_last", "channels_first")]
    seed = _spec(*SEED_EXAMPLE)
    return out + [Case(seed, data="exact", check="worked"), Case(seed, data="normal", check="worked"),
                  *activation_cases(), *special_value_cases()]


def _reduced_size(n: int, k: int, s: int, d: int, padding: str) -> int:
    """A small input size along one axis that keeps the layer's padding pattern (output 2-3)."""
    ek = d * (k - 1) + 1
    small = ek + 2 * s if padding == "valid" else max(2 * s + 1, ek)
    small = min(n, small)
    return small if axis_output(small, k, s, d, padding)[0] > 0 else n


def reduced_spec(spec: Conv3DSpec) -> Conv3DSpec:
    """`spec` at batch 1 and a small spatial size with the same padding pattern per axis."""
    spatial = tuple(_reduced_size(n, k, s, d, spec.padding) for n, k, s, d in
                    zip(spec.in_spatial, spec.kernel_size, spec.strides, spec.dilation_rate))
    c = spec.in_channels
    shape = (1, *spatial, c) if spec.channels_last else (1, c, *spatial)
    return Conv3DSpec(**spec.keras_kwargs(), input_shape=shape)


def workload_cases(limit: int | None = None) -> list[Case]:
    """Each Keras-expressible CSV layer at batch 1 and small spatial size, deduplicated; layers
    still too big for the reference after reduction are left to the oracle-free properties."""
    seen: dict[str, Case] = {}
    for row in workload_rows():
        spec = workload_spec(row, batch=1)
        if spec is None:
            continue
        spec = reduced_spec(spec)
        if spec.flops // 2 > REDUCED_MAX_MACS:
            continue
        if max(math.prod(spec.input_shape), math.prod(spec.kernel_shape)) > REDUCED_MAX_ELEMENTS:
            continue
        if spec.descriptor not in seen:
            seen[spec.descriptor] = Case(spec, data="exact", check="workload")
    cases = sorted(seen.values(), key=lambda c: c.spec.flops)
    if limit is not None and len(cases) > limit:  # spread the sample over the size range
        step = len(cases) / limit
        cases = [cases[int(i * step)] for i in range(limit)]
    return cases
