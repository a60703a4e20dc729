"""Benchmark workloads: real network layers from runtime/shapes/conv3d_shapes.csv, the seed example,
and scaling sweeps, in named sets (quick, default, full) or from a user's CSV of the same form."""

from __future__ import annotations

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
    if name == "full":
        layers, skipped = all_csv_layers()
        return [seed_example(), *layers, *sweeps(True)], skipped
    path = Path(name)
    if path.suffix == ".csv" and path.exists():
        return all_csv_layers(path)
    raise ValueError(f"unknown workload set {name!r}: use quick, default, full or a CSV file")
