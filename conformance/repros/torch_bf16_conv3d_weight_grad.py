"""torch's bfloat16 conv3d weight gradient on the CPU is wrong on a channels_last_3d input whose
padded kernel is longer than the input. Grouped (groups 2, a 3-tap kernel over 2 depths, 'same'
padding 1): dkernel is off by about 0.9 where float64 on the same bfloat16 values differs by
rounding only; contiguous (NCDHW) input or groups 1 give the right values. Ungrouped with a stride
along that axis (a 3-tap kernel over a width of 1, padding 1, stride 2): the taps that read only
padding, 0 in float64, hold garbage such as 1e-28, -1e19 or NaN. Needs only numpy and torch.

    python torch_bf16_conv3d_weight_grad.py
"""

import numpy as np
import torch

rng = np.random.default_rng(0)
for groups, channels_last in ((1, True), (2, False), (2, True)):
    x = torch.from_numpy(rng.standard_normal((1, 2, 2, 1, 1)).astype(np.float32))  # N C D H W
    w = torch.from_numpy(rng.standard_normal((2, 2 // groups, 3, 1, 1)).astype(np.float32))
    dy = torch.from_numpy(rng.standard_normal((1, 2, 2, 1, 1)).astype(np.float32))
    grads = []
    for dtype in (torch.float64, torch.bfloat16):
        xt = x.to(torch.bfloat16).to(dtype)  # the same values in both dtypes
        if channels_last:
            xt = xt.contiguous(memory_format=torch.channels_last_3d)
        wt = w.to(torch.bfloat16).to(dtype).requires_grad_(True)
        y = torch.nn.functional.conv3d(xt, wt, padding=(1, 0, 0), groups=groups)
        (dkernel,) = torch.autograd.grad(y, wt, dy.to(torch.bfloat16).to(dtype))
        grads.append(dkernel.double().numpy().ravel())
    print(
        f"groups {groups}, channels_last {channels_last!s:5s}: largest |bfloat16 - float64| in dkernel",
        f"{np.max(np.abs(grads[0] - grads[1])):.4f}",
    )

for trial in range(2):  # groups 1, stride 2 along W: the padding-only taps are garbage
    x = torch.from_numpy(rng.standard_normal((1, 2, 1, 2, 1)).astype(np.float32))  # W = 1
    w = torch.from_numpy(rng.standard_normal((1, 2, 1, 1, 3)).astype(np.float32))
    dy = torch.from_numpy(rng.standard_normal((1, 1, 1, 2, 1)).astype(np.float32))
    grads = []
    for dtype in (torch.float64, torch.bfloat16):
        xt = x.to(torch.bfloat16).to(dtype).contiguous(memory_format=torch.channels_last_3d)
        wt = w.to(torch.bfloat16).to(dtype).requires_grad_(True)
        y = torch.nn.functional.conv3d(xt, wt, padding=(0, 0, 1), stride=(1, 1, 2))
        (dkernel,) = torch.autograd.grad(y, wt, dy.to(torch.bfloat16).to(dtype))
        grads.append(dkernel.double().numpy().ravel())
    print(f"groups 1, W stride 2, trial {trial}: float64 {np.round(grads[0], 3)}, bfloat16 {grads[1]}")
