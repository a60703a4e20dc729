"""Benchmark workloads: real network layers from runtime/shapes/conv3d_shapes.csv, the seed example,
and scaling sweeps, in named sets (quick, default, wide: a stratified sample of 48 layers, full) or
from a user's CSV of the same form."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from conformance.fixed import SEED_EXAMPLE
from reference.spec import Conv3DSpec
from runtime.workloads import workload_rows, workload_spec


@dataclass(frozen=True)
class Workload:
    name: str
    spec: Conv3DSpec
    group: str  # network or sweep it belongs to
    sweep: str = ""  # sweep axis ("spatial", "channels", "kernel", "batch") or ""
    sweep_value: int = 0
    note: str = ""


def seed_example() -> Workload:
    shape, args = SEED_EXAMPLE
    return Workload("seed (4,10,10,10,128) k3 relu", Conv3DSpec(input_shape=shape, **args), "seed")


# One representative layer per network (batch 1 where the network used 2: 2 cores, 24 GiB),
# chosen by name or CSV line so the set is stable and reviewable.
DEFAULT_LAYERS = (
    ("shapes_3d_unet", "3d_unet:conv_7", "3D U-Net conv_7 (256->256, 3x3x3)"),
    ("shapes_3d_i3d", "12", "I3D 3x3x3 (96->208, 16x14x14)"),
    ("shapes_3d_i3d", "*3", "I3D 1x1x1 (512->64)"),
    ("shapes_3d_resnext101", "Resnext:conv_3d:1", "ResNeXt-101 grouped 3x3x3 (g16)"),
    ("shapes_x3d_dw", "x3d_dw:conv_5", "X3D depthwise 3x3x3 (54 ch, 8x56x56)"),
    ("shapes_movinet_dw", "movinet:conv_3", "MoViNet depthwise 5x3x3 (184 ch)"),
    ("shapes_3d", "vnet:conv1", "V-Net 2x2x2 stride 2 (32->64)"),
    ("option_set_fwks_key_gpu", "2173f0a52f22c7ec47ef492af7d0b52b*64", "framework 3x3x3 (128->256, 16^3)"),
)
QUICK_LAYERS = DEFAULT_LAYERS[2:3] + DEFAULT_LAYERS[4:5] + DEFAULT_LAYERS[6:7]


def _csv_layer(source: str, key: str, label: str, batch: int | None = 1) -> Workload:
    for row in workload_rows():
        if row["source_file"] == source and key in (row["name"], row["line"]):
            spec = workload_spec(row, batch=batch)
            note = f"batch reduced from {row['mb']} to {batch}" if batch and int(row["mb"]) != batch else ""
            return Workload(label, spec, source.removeprefix("shapes_"), note=note)
    raise ValueError(f"layer {key!r} not found in {source}")


def sweeps(full: bool) -> list[Workload]:
    """Scaling sweeps around a 32->32 3x3x3 "same" layer."""
    def spec(n=12, c=32, k=3, b=1) -> Conv3DSpec:
        return Conv3DSpec(filters=c, kernel_size=k, padding="same", input_shape=(b, n, n, n, c))

    out = [Workload(f"sweep spatial {n}^3", spec(n=n), "sweep", "spatial", n) for n in (8, 12, 16, 24)]
    out += [Workload(f"sweep channels {c}", spec(c=c), "sweep", "channels", c) for c in (16, 32, 64, 128)]
    if full:
        out += [Workload(f"sweep kernel {k}", spec(k=k), "sweep", "kernel", k) for k in (1, 3, 5, 7)]
        out += [Workload(f"sweep batch {b}", spec(b=b), "sweep", "batch", b) for b in (1, 2, 4, 8)]
    return out


WIDE_COUNT = 48
WIDE_FLOPS = (5e6, 2e9)  # per layer at batch 1: above per-call overheads, and the slowest framework
# (depthwise layers run at 0.1 GFLOP/s in TensorFlow and JAX) still times it in seconds
WIDE_MAX_INPUT = 2**24  # elements (64 MiB of float32)


def _stratum(spec: Conv3DSpec) -> tuple[str, str, str, str]:
    """(groups, kernel, stride, channels) class of a layer, the strata the wide set samples."""
    cg = spec.in_channels // spec.groups
    groups = "depthwise" if spec.groups == spec.in_channels > 1 else "grouped" if spec.groups > 1 else "dense"
    kernel = {(1, 1, 1): "1x1x1", (3, 3, 3): "3x3x3"}.get(spec.kernel_size, "other kernel")
    stride = "stride 1" if spec.strides == (1, 1, 1) else "strided"
    channels = ("-" if groups == "depthwise" else "C/g<=32" if cg <= 32 else "C/g<=128" if cg <= 128
                else "C/g>128")
    return groups, kernel, stride, channels


def _shape_label(spec: Conv3DSpec) -> str:
    """E.g. "64->64 16x56x56 k3x3x3 s1 g1 same"."""
    def axes(t):
        return "x".join(map(str, t))
    strides = spec.strides[0] if len(set(spec.strides)) == 1 else axes(spec.strides)
    return (f"{spec.in_channels}->{spec.filters} {axes(spec.in_spatial)} k{axes(spec.kernel_size)} "
            f"s{strides} g{spec.groups} {spec.padding}")


def _spread(items: list) -> list:
    """Items in an order that covers their range early: the middle one, then the middles of the
    halves, and so on."""
    out, spans = [], [(0, len(items))]
    while spans:
        lo, hi = spans.pop(0)
        if lo < hi:
            mid = (lo + hi) // 2
            out.append(items[mid])
            spans += [(lo, mid), (mid + 1, hi)]
    return out


def wide_layers(count: int = WIDE_COUNT) -> list[Workload]:
    """A stratified sample of the CSV's layers at batch 1: distinct layers within WIDE_FLOPS and
    WIDE_MAX_INPUT grouped by `_stratum`, taken one per stratum in turn (each stratum's in
    `_spread` order of FLOPs) until `count`. Deterministic: a speed claim can be checked on the
    same layers."""
    strata: dict[tuple, list[tuple[float, str, Conv3DSpec, str]]] = {}
    seen = set()
    for row in workload_rows():
        spec = workload_spec(row, batch=1)
        if spec is None or spec.descriptor in seen:
            continue
        seen.add(spec.descriptor)
        flops = 2 * spec.taps * spec.filters * math.prod(spec.output_spatial)
        if WIDE_FLOPS[0] <= flops <= WIDE_FLOPS[1] and math.prod(spec.input_shape) <= WIDE_MAX_INPUT:
            strata.setdefault(_stratum(spec), []).append((flops, f"{row['source_file']}:{row['line']}", spec,
                                                          row["name"]))
    queues = [_spread(sorted(layers, key=lambda layer: layer[:2])) for _, layers in sorted(strata.items())]
    picked: list[Workload] = []
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                _, where, spec, name = queue.pop(0)
                picked.append(Workload(f"{_shape_label(spec)} [{where}]", spec, "wide", note=name))
    return picked


def all_csv_layers(path: Path | None = None) -> tuple[list[Workload], list[str]]:
    """Every CSV layer at its own batch; the skipped ones (not expressible in Keras) with why."""
    rows = workload_rows(path)
    workloads, skipped = [], []
    for row in rows:
        label = f"{row['source_file']}:{row['line']} {row['name']}".strip()
        spec = workload_spec(row)
        if spec is None:
            skipped.append(f"{label}: explicit padding {row['pd']},{row['ph']},{row['pw']} is not "
                           "Keras valid/same")
        else:
            workloads.append(Workload(label, spec, row["source_file"]))
    return workloads, skipped


def load(name: str) -> tuple[list[Workload], list[str]]:
    """A named set or a CSV file: (workloads, skipped-with-reason)."""
    if name == "quick":
        return [seed_example(), *[_csv_layer(*layer) for layer in QUICK_LAYERS]], []
    if name == "default":
        return [seed_example(), *[_csv_layer(*layer) for layer in DEFAULT_LAYERS], *sweeps(False)], []
    if name == "wide":
        return wide_layers(), []
    if name == "full":
        layers, skipped = all_csv_layers()
        return [seed_example(), *layers, *sweeps(True)], skipped
    path = Path(name)
    if path.suffix == ".csv" and path.exists():
        return all_csv_layers(path)
    raise ValueError(f"unknown workload set {name!r}: use quick, default, wide, full or a CSV file")
