"""OpenVINO's CPU Convolution under the default precision hint (bfloat16 on CPUs with AMX or
AVX512-BF16) turns infinite inputs into NaN in hundreds of outputs whose exact value is +-inf or
finite; the f32 hint propagates them correctly. Needs only numpy and openvino.

    python openvino_bf16_inf_becomes_nan.py
"""

import numpy as np
import openvino as ov
import openvino.opset13 as ops

core = ov.Core()


def conv(x, w, hint):
    p = ops.parameter(list(x.shape), ov.Type.f32)
    c = ops.convolution(p, ops.constant(w), [1, 1, 1], [0, 1, 0], [1, 1, 1], [1, 1, 1])
    return core.compile_model(ov.Model([c.output(0)], [p]), "CPU", {"INFERENCE_PRECISION_HINT": hint})(
        {0: x}
    )[0]


def reference(x, w):  # float64 direct loops over the padded input
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (0, 1), (1, 1), (0, 1)))
    n, c, d, h, ww = xp.shape
    f, _, kd, kh, kw = w.shape
    out = np.zeros((n, f, d - kd + 1, h - kh + 1, ww - kw + 1))
    with np.errstate(invalid="ignore"):
        for i, j, k in np.ndindex(kd, kh, kw):
            out += np.einsum(
                "ncdhw,fc->nfdhw",
                xp[:, :, i : i + out.shape[2], j : j + out.shape[3], k : k + out.shape[4]],
                w[:, :, i, j, k].astype(np.float64),
            )
    return out


rng = np.random.default_rng(0)
for inputs in (1, 2):
    x = rng.standard_normal((2, 3, 5, 6, 8)).astype(np.float32)
    w = rng.standard_normal((6, 3, 2, 3, 2)).astype(np.float32)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 22, replace=False)] = np.inf
    if inputs == 2:
        flat[rng.choice(flat.size, 22, replace=False)] = -np.inf
    ref = reference(x, w)
    for hint in ("f32", "bf16"):
        y = conv(x, w, hint)
        print(
            inputs, hint, "NaN where the exact result is not NaN:", int(np.sum(np.isnan(y) & ~np.isnan(ref)))
        )
