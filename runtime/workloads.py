"""The real 3-D network layers (runtime/shapes/conv3d_shapes.csv, benchdnn's conv3d problem
lists with Keras padding), read as Keras specs by conformance and bench alike."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from reference.spec import Conv3DSpec

WORKLOADS_CSV = "conv3d_shapes.csv"


def workload_rows(path: Path | None = None) -> list[dict]:
    """The CSV's rows (the packaged file, or a user's CSV of the same form)."""
    if path is not None:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    with resources.files("runtime.shapes").joinpath(WORKLOADS_CSV).open(newline="") as handle:
        return list(csv.DictReader(handle))


def workload_spec(row: dict, batch: int | None = None) -> Conv3DSpec | None:
    """The Keras spec of a CSV layer, or None when Keras padding cannot express it."""
    if row["keras_padding"] not in ("valid", "same"):
        return None
    i = {k: int(row[k]) for k in ("mb", "g", "ic", "oc", "id", "ih", "iw", "kd", "kh", "kw",
                                  "sd", "sh", "sw", "dd", "dh", "dw")}
    kernel, strides = (i["kd"], i["kh"], i["kw"]), (i["sd"], i["sh"], i["sw"])
    dilation = (i["dd"] + 1, i["dh"] + 1, i["dw"] + 1)  # benchdnn counts dilation from 0
    return Conv3DSpec(filters=i["oc"], kernel_size=kernel, strides=strides,
                      padding=row["keras_padding"], dilation_rate=dilation, groups=i["g"],
                      input_shape=(batch or i["mb"], i["id"], i["ih"], i["iw"], i["ic"]))
