"""torch's bfloat16 conv3d on the CPU (oneDNN; AMX on this machine) treats subnormal inputs as zero,
turns infinite inputs into NaN in outputs whose exact value is finite or infinite, and gets a
grouped convolution wrong when the padded kernel is longer than the input; the same values in
float32 are right. Needs only numpy and torch.

    python torch_bf16_conv_cpu.py
"""

import numpy as np
import torch

F = torch.nn.functional
rng = np.random.default_rng(0)
w = torch.from_numpy(rng.standard_normal((4, 5, 3, 3, 3)).astype(np.float32))

# subnormal inputs (bfloat16 shares float32's exponent range: subnormal below 1.18e-38)
x = torch.from_numpy((rng.standard_normal((1, 5, 6, 6, 6)) * 1.2e-38).astype(np.float32))
x16 = x.to(torch.bfloat16)
exact = F.conv3d(x16.double(), w.to(torch.bfloat16).double())
got = F.conv3d(x16, w.to(torch.bfloat16)).double()
print("subnormal inputs: largest relative error", float(((got - exact).abs() / exact.abs().max()).max()))

# infinite inputs
x = torch.from_numpy(rng.standard_normal((2, 3, 5, 6, 8)).astype(np.float32))
x.view(-1)[torch.from_numpy(rng.choice(x.numel(), 22, replace=False))] = float("inf")
w3 = torch.from_numpy(rng.standard_normal((6, 3, 2, 3, 2)).astype(np.float32)).to(torch.bfloat16)
exact = F.conv3d(x.to(torch.bfloat16).double(), w3.double())
got = F.conv3d(x.to(torch.bfloat16), w3).double()
print("infinite inputs: NaN where the exact result is not NaN:", int((got.isnan() & ~exact.isnan()).sum()))

# a grouped kernel longer than the input (D = 1 under a 5-tap kernel with padding 2), channels_last
x = torch.from_numpy(rng.integers(-2, 3, (2, 3, 1, 2, 3)).astype(np.float32)).to(torch.bfloat16)
x = x.contiguous(memory_format=torch.channels_last_3d)
w5 = torch.from_numpy(rng.integers(-2, 3, (6, 1, 5, 1, 3)).astype(np.float32)).to(torch.bfloat16)
exact = F.conv3d(x.double(), w5.double(), stride=(3, 4, 1), padding=(2, 0, 1), groups=3)
got = F.conv3d(x, w5, stride=(3, 4, 1), padding=(2, 0, 1), groups=3).double()
print("grouped kernel past the input: largest error", float((got - exact).abs().max()), "(integers: exact)")
