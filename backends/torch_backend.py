"""PyTorch backends: torch.nn.functional.conv3d on CPU and CUDA (TF32 off, or declared TF32).

Layout: a channels-last input is viewed as NCDHW with channels_last_3d strides (a permute, no
copy), which is also PyTorch's fastest CPU path for 3-D convolution. Keras "same" padding is
applied with an explicit asymmetric F.pad when before != after (torch's own padding="same" is
symmetric and refuses stride > 1).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from backends.base import Availability, Backend, Capabilities, Prepared


def torch_activation(name: str | None, torch):
    """Keras activation `name` in torch ops (torch built-ins where they match Keras' definition)."""
    F = torch.nn.functional
    if name is None or name == "linear":
        return lambda x: x

    def sparsemax(x):
        z = torch.sort(x, dim=-1, descending=True).values
        k = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
        cumsum = torch.cumsum(z, dim=-1)
        k_z = torch.clamp(torch.sum(1 + k * z > cumsum, dim=-1, keepdim=True), min=1)
        tau = (torch.gather(cumsum, -1, k_z - 1) - 1) / k_z.to(x.dtype)
        return torch.clamp(x - tau, min=0)

    table = {
        "relu": F.relu, "relu6": F.relu6, "elu": F.elu, "celu": F.celu, "selu": F.selu,
        "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "softsign": F.softsign,
        "softplus": lambda x: torch.logaddexp(x, torch.zeros_like(x)),
        "squareplus": lambda x: (x + torch.sqrt(x * x + 4)) / 2,
        "soft_shrink": lambda x: F.softshrink(x, 0.5), "hard_shrink": lambda x: F.hardshrink(x, 0.5),
        "sparse_plus": lambda x: torch.where(x <= -1, 0.0, torch.where(x >= 1, x, (x + 1) ** 2 / 4)),
        "silu": F.silu, "swish": F.silu, "gelu": F.gelu, "tanh": torch.tanh,
        "tanh_shrink": F.tanhshrink, "sigmoid": torch.sigmoid,
        "sparse_sigmoid": lambda x: torch.clamp((x + 1) / 2, 0, 1), "exponential": torch.exp,
        "hard_sigmoid": F.hardsigmoid, "hard_silu": F.hardswish, "hard_swish": F.hardswish,
        "hard_tanh": F.hardtanh, "mish": F.mish, "log_sigmoid": F.logsigmoid,
        "softmax": lambda x: torch.softmax(x, dim=-1),
        "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
        "glu": lambda x: F.glu(x, dim=-1), "sparsemax": sparsemax,
    }
    return table[name]


def as_tensor(torch, array: np.ndarray | None, device: str = "cpu"):
    """A NumPy array (bfloat16 from ml_dtypes included, through its bits) as a torch tensor."""
    if array is None:
        return None
    array = np.ascontiguousarray(array)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16).to(device)
    return torch.from_numpy(array).to(device)


def as_numpy(tensor) -> np.ndarray:
    """A torch tensor as a contiguous NumPy array (bfloat16 as ml_dtypes' bfloat16)."""
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        from reference.formats import numpy_dtype

        return np.ascontiguousarray(tensor.view(torch.int16).numpy()).view(numpy_dtype("bfloat16"))
    return np.ascontiguousarray(tensor.numpy())


class TorchBackend(Backend):
    """torch.nn.functional.conv3d on the CPU."""

    name = "torch"
    libraries = ("torch",)
    device = "cpu"
    allow_tf32 = False
    capabilities = Capabilities(
        dtypes=("float32", "float64", "bfloat16", "float16"), devices=("cpu",),
        directions=("forward", "backward"),
        compute_precision={"bfloat16": "float32", "float16": "float32"},
        backward_precision={"bfloat16": "float32-per-op", "float16": "float32-per-op"},
        notes=("channels_last input runs in channels_last_3d memory format",
               "asymmetric 'same' padding by F.pad",
               "bfloat16 and float16: oneDNN sums in float32 and rounds the result",
               "bfloat16/float16 gradients: autograd rounds dz = dy * act'(z) to the dtype, then "
               "float32 sums (float32-per-op)"))

    def availability(self) -> Availability:
        if importlib.util.find_spec("torch") is None:
            return Availability(False, "torch is not installed")
        return Availability(True)

    def set_threads(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        super().set_threads(threads)

    def _configure(self, torch) -> None:
        """Device-specific switches (TF32) before each run."""

    def _forward(self, torch, spec):
        """y(x, kernel, bias) on tensors in the API layouts, for both directions."""
        F = torch.nn.functional
        symmetric = all(before == after for before, after in spec.pads)
        padding = tuple(before for before, _ in spec.pads) if symmetric else 0
        flat_pads = [p for before_after in reversed(spec.pads) for p in before_after]
        act = torch_activation(spec.activation, torch)

        def forward(xt, kernel_t, bt):
            if spec.channels_last:
                xt = xt.permute(0, 4, 1, 2, 3)  # NCDHW view with channels_last_3d strides
            inp = xt if symmetric else F.pad(xt, flat_pads)
            y = F.conv3d(inp, kernel_t.permute(4, 3, 0, 1, 2), bt, stride=spec.strides,
                         padding=padding, dilation=spec.dilation_rate, groups=spec.groups)
            if spec.channels_last:
                y = y.permute(0, 2, 3, 4, 1)
            return act(y)

        return forward

    def _tensor(self, torch, array):
        return as_tensor(torch, array, self.device)

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        import torch

        self._configure(torch)
        forward = self._forward(torch, spec)
        xt, bt = self._tensor(torch, x), self._tensor(torch, bias)
        # the kernel as (kd, kh, kw, Cg, F) over an OIDHW-contiguous copy: conv3d's permute is free
        kt = self._tensor(torch, kernel).permute(4, 3, 0, 1, 2).contiguous().permute(2, 3, 4, 1, 0)

        def run():
            with torch.no_grad():
                return forward(xt, kt, bt)

        return Prepared(run=run, to_numpy=as_numpy, synchronize=self._synchronize)

    def _prepare_grad(self, spec, x, kernel, bias, dy) -> Prepared:
        import torch

        self._configure(torch)
        forward = self._forward(torch, spec)
        inputs = [self._tensor(torch, a) for a in (x, kernel, bias) if a is not None]
        dyt = self._tensor(torch, dy)

        def run():
            leaves = [t.detach().requires_grad_(True) for t in inputs]
            y = forward(leaves[0], leaves[1], leaves[2] if bias is not None else None)
            grads = torch.autograd.grad(y, leaves, grad_outputs=dyt)
            return (*grads[:2], grads[2] if bias is not None else None)

        return Prepared(run=run, synchronize=self._synchronize,
                        to_numpy=lambda g: tuple(None if t is None else as_numpy(t) for t in g))

    def _synchronize(self) -> None:
        """Nothing to wait for on the CPU."""


class TorchCudaBackend(TorchBackend):
    """conv3d on CUDA with TF32 switched off, so float32 really is float32 (cuDNN)."""

    name = "torch-cuda"
    device = "cuda"
    capabilities = Capabilities(dtypes=("float32", "float64"), devices=("cuda",),
                                directions=("forward", "backward"), notes=("cuDNN with TF32 off",))

    def availability(self) -> Availability:
        base = super().availability()
        if not base.ok:
            return base
        import torch

        if not torch.cuda.is_available():
            return Availability(False, "no CUDA device (or torch is a CPU build)")
        return Availability(True)

    def _configure(self, torch) -> None:
        torch.backends.cudnn.allow_tf32 = self.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = self.allow_tf32

    def _synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()


class TorchCudaTF32Backend(TorchCudaBackend):
    """conv3d on CUDA with TF32 on, declared as TF32 so the judge applies the TF32 bound."""

    name = "torch-cuda-tf32"
    allow_tf32 = True
    capabilities = Capabilities(dtypes=("float32",), devices=("cuda",),
                                compute_precision={"float32": "tf32"}, directions=("forward", "backward"),
                                notes=("cuDNN with TF32 on (PyTorch's default for convolutions)",))
