"""Parameter classes of a Conv3D case, a covering array over them, and the regions of
VERIFICATION.md §4b: what lets a run reach every bug region on every seed, and say so.

Each case falls in one class per factor: per spatial axis its output extent, stride, kernel,
dilation and total "same" padding (0, odd, even, or negative and clamped to 0); then batch, input
channels, groups, layout (channels_last, channels_first, or either as non-contiguous views), bias,
activation and dtype. `covering_cases` picks, deterministically,
a small set of valid cases that holds every pair of classes (and every triple of two
innermost-axis classes with the batch class) that any valid case can hold; it runs as the
"covering" check in every profile.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from collections.abc import Iterable

from conformance.cases import Case
from reference.activations import ACTIVATIONS
from reference.spec import Conv3DSpec, axis_output

AXES = ("d", "h", "w")
AXIS_FACTORS = ("extent", "stride", "kernel", "dilation", "pad")
FACTORS = (*(f"{a}_{f}" for a in AXES for f in AXIS_FACTORS),
           "batch", "channels", "groups", "layout", "bias", "activation", "dtype")
INNER = tuple(f"w_{f}" for f in AXIS_FACTORS)  # the innermost axis, the one tiled loops vectorise
POOL_SIZE, POOL_SEED = 6000, 20261201
MAX_COVERING_MACS = 2_000_000


def _axis_classes(n: int, k: int, s: int, d: int, padding: str) -> tuple[str, ...]:
    out, before, after = axis_output(n, k, s, d, padding)
    ek = d * (k - 1) + 1
    extent = "1" if out == 1 else "2-3" if out <= 3 else ">3"
    stride = "1" if s == 1 else ">kernel" if s > k else ">1"
    kernel = ("1" if k == 1 else "larger than input" if padding == "same" and ek > n
              else "even" if k % 2 == 0 else "odd")
    total = before + after
    clamped = padding == "same" and (out - 1) * s + ek - n < 0  # a stride past a short axis
    pad = ("valid" if padding == "valid" else "clamped" if clamped else "0" if total == 0
           else "odd" if total % 2 else "even")
    return extent, stride, kernel, "1" if d == 1 else ">1", pad


def _activation_class(name) -> str:
    if name in (None, "linear"):
        return "none"
    info = ACTIVATIONS[name]
    return "exact ops" if info.exact_ops else "axis" if info.axis else "rounded"


def _groups_class(groups: int, channels: int, filters: int) -> str:
    if groups == 1:
        return "dense"
    if groups == channels:
        return "depthwise" if filters == channels else "depthwise x multiplier"
    if 2 * groups == channels:
        return "C/2"
    return "2" if groups == 2 else "other grouped"


def classes(spec: Conv3DSpec, dtype: str, strided: bool = False) -> dict[str, str]:
    """factor -> class of one case (`strided`: its arrays reach the backend as non-contiguous views)."""
    found: dict[str, str] = {}
    for a, n, k, s, d in zip(AXES, spec.in_spatial, spec.kernel_size, spec.strides, spec.dilation_rate):
        found |= dict(zip((f"{a}_{f}" for f in AXIS_FACTORS), _axis_classes(n, k, s, d, spec.padding)))
    b, c = spec.batch, spec.in_channels
    return found | dict(
        batch="1" if b == 1 else "2" if b == 2 else "odd >2" if b % 2 else "even >2",
        channels="1" if c == 1 else "multiple of 8" if c % 8 == 0 else "tail >8" if c > 8 else "2-7",
        groups=_groups_class(spec.groups, c, spec.filters),
        layout="non-contiguous" if strided else spec.data_format,
        bias="bias" if spec.use_bias else "no bias", activation=_activation_class(spec.activation),
        dtype=dtype)


def combinations_of(cls: dict[str, str]) -> set[tuple]:
    """The combinations a case holds: every pair of factors, and every triple of two innermost-axis
    factors with the batch."""
    pairs = {(f, cls[f], g, cls[g]) for f, g in itertools.combinations(FACTORS, 2)}
    triples = {(f, cls[f], g, cls[g], "batch", cls["batch"]) for f, g in itertools.combinations(INNER, 2)}
    return pairs | triples


# ---- a pool of valid candidates, drawn so that every class is likely -----------------------------

def _axis_choices() -> dict[tuple[str, tuple[str, ...]], list[tuple[int, int, int, int]]]:
    """(padding, axis classes) -> small (n, k, s, d) that realise them, smallest inputs first."""
    found: dict = {}
    for padding, n, k, s, d in itertools.product(("valid", "same"), range(1, 10), range(1, 6),
                                                 range(1, 5), range(1, 3)):
        if s > 1 and d > 1:
            continue
        if axis_output(n, k, s, d, padding)[0] < 1:
            continue
        found.setdefault((padding, _axis_classes(n, k, s, d, padding)), []).append((n, k, s, d))
    return {key: sorted(v)[:4] for key, v in found.items()}


ACTIVATION_CLASSES = {"none": [None], "exact ops": ["relu", "relu6", "hard_tanh"],
                      "rounded": ["tanh", "gelu", "sigmoid", "elu", "silu"],
                      "axis": ["softmax", "log_softmax"]}
CHANNELS = {"1": [1], "2-7": [3, 4, 6], "multiple of 8": [8, 16], "tail >8": [17, 33]}


def _candidate(rng: random.Random, axis_table: dict, dtypes: tuple[str, ...],
               formats: tuple[str, ...], groups_ok: bool, dilation_ok: bool) -> Case | None:
    padding = rng.choice(("valid", "same"))
    # Keras forbids strides > 1 together with dilation > 1 anywhere: one or the other per case
    mode = rng.choice(("stride", "dilation") if dilation_ok else ("stride",))
    keys = [key for key in axis_table if key[0] == padding
            and (key[1][1] == "1" if mode == "dilation" else key[1][3] == "1")]
    axes = [rng.choice(axis_table[rng.choice(keys)]) for _ in AXES]
    channels = rng.choice(CHANNELS[rng.choice(list(CHANNELS))])
    options = [(1, f) for f in (1, 2, 5, 8)]
    if groups_ok and channels > 1:
        options += [(channels, channels), (channels, 2 * channels)]
        options += [(g, g * fg) for g in {2, channels // 2} if channels % g == 0 and g > 1
                    for fg in (1, 2)]
    groups, filters = rng.choice(options)
    activation = rng.choice(ACTIVATION_CLASSES[rng.choice(list(ACTIVATION_CLASSES))])
    batch = rng.choice((1, 2, 3, 5))
    data_format = rng.choice(formats)
    strided = rng.random() < 1 / (len(formats) + 1)  # as likely as each contiguous layout
    sizes = tuple(a[0] for a in axes)
    shape = (batch, *sizes, channels) if data_format == "channels_last" else (batch, channels, *sizes)
    spec = Conv3DSpec(filters=filters, kernel_size=tuple(a[1] for a in axes), input_shape=shape,
                      strides=tuple(a[2] for a in axes), padding=padding, data_format=data_format,
                      dilation_rate=tuple(a[3] for a in axes), groups=groups, activation=activation,
                      use_bias=rng.random() < 0.5)
    if activation == "glu" or spec.flops // 2 > MAX_COVERING_MACS:
        return None
    data = "exact" if _activation_class(activation) in ("none", "exact ops") else "normal"
    return Case(spec, rng.choice(dtypes), data, rng.randrange(2**31), check="covering", strided=strided)


@functools.lru_cache(maxsize=16)
def _covering(dtypes: tuple[str, ...], formats: tuple[str, ...], groups_ok: bool,
              dilation_ok: bool) -> tuple[tuple[Case, ...], frozenset]:
    rng = random.Random(POOL_SEED)
    axis_table = _axis_choices()
    pool = [c for c in (_candidate(rng, axis_table, dtypes, formats, groups_ok, dilation_ok)
                        for _ in range(POOL_SIZE)) if c is not None]
    holds = [combinations_of(classes(c.spec, c.dtype, c.strided)) for c in pool]
    reachable = frozenset().union(*holds)
    # lazy greedy set cover: a candidate's gain only shrinks, so a stale gain is an upper bound
    uncovered, chosen = set(reachable), []
    heap = [(-len(h), pool[i].spec.flops, i) for i, h in enumerate(holds)]
    heapq.heapify(heap)
    while uncovered:
        _, flops, i = heapq.heappop(heap)
        gain = len(holds[i] & uncovered)
        if heap and gain < -heap[0][0]:
            heapq.heappush(heap, (-gain, flops, i))
            continue
        chosen.append(pool[i])
        uncovered -= holds[i]
    return tuple(chosen), reachable


def covering_cases(dtypes: Iterable[str] = ("float32", "float64"),
                   formats: Iterable[str] = ("channels_last", "channels_first"),
                   groups: bool = True, dilation: bool = True) -> list[Case]:
    """The covering array for a backend's declared dtypes, layouts and features."""
    return list(_covering(tuple(dtypes), tuple(formats), groups, dilation)[0])


def reachable_combinations(dtypes: Iterable[str] = ("float32", "float64"),
                           formats: Iterable[str] = ("channels_last", "channels_first"),
                           groups: bool = True, dilation: bool = True) -> frozenset:
    """Every combination some valid case holds (the rest are impossible, not holes)."""
    return _covering(tuple(dtypes), tuple(formats), groups, dilation)[1]


# ---- VERIFICATION.md §4b ------------------------------------------------------------------------

def _any_axis(spec: Conv3DSpec, test) -> bool:
    return any(test(n, k, s, d, before + after) for n, k, s, d, (before, after) in zip(
        spec.in_spatial, spec.kernel_size, spec.strides, spec.dilation_rate, spec.pads))


REGIONS = {
    "per-axis distinct kernel/stride/dilation, non-cubic input": lambda s: (
        len({*zip(s.kernel_size, s.strides, s.dilation_rate)}) > 1 and len(set(s.in_spatial)) > 1),
    "stride larger than kernel under same": lambda s: s.padding == "same" and any(
        st > k for st, k in zip(s.strides, s.kernel_size)),
    "even effective kernel, odd total same padding": lambda s: s.padding == "same" and _any_axis(
        s, lambda n, k, st, d, total: (d * (k - 1) + 1) % 2 == 0 and total % 2 == 1),
    "dilation with same": lambda s: s.padding == "same" and max(s.dilation_rate) > 1,
    "output extent 1 with stride > 1 (innermost axis)": lambda s: (
        s.output_spatial[2] == 1 and s.strides[2] > 1),
    "anisotropic kernel": lambda s: len(set(s.kernel_size)) > 1,
    "channels a multiple of 8": lambda s: s.in_channels % 8 == 0,
    "channels not a multiple of 8 (> 8)": lambda s: s.in_channels > 8 and s.in_channels % 8,
    "groups 2": lambda s: s.groups == 2,
    "groups C/2": lambda s: s.groups > 1 and 2 * s.groups == s.in_channels,
    "depthwise": lambda s: s.groups == s.in_channels > 1 and s.filters == s.groups,
    "depthwise with multiplier": lambda s: s.groups == s.in_channels > 1 and s.filters > s.groups,
    "batch > 1, not a multiple of 32": lambda s: s.batch > 1 and s.batch % 32,
    "1x1x1 kernel": lambda s: s.kernel_size == (1, 1, 1),
    "kernel equal to input under valid": lambda s: s.padding == "valid" and s.output_spatial == (1, 1, 1),
    "channels_first": lambda s: not s.channels_last,
}


def regions(spec: Conv3DSpec) -> list[str]:
    """The §4b regions a case lies in."""
    return [name for name, test in REGIONS.items() if test(spec)]

