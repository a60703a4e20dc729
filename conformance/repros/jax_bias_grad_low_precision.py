"""JAX on the CPU adds up the gradient of a broadcast bias add in bfloat16 (float16) itself, every
partial sum rounded to the dtype, where its forward sums (jnp.sum, the convolution) accumulate in
float32 and round once: the bias gradient comes out ulps away from the correctly rounded sum (and
1 ulp off with only 3 terms). Needs only numpy and jax.

    python jax_bias_grad_low_precision.py
"""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

rng = np.random.default_rng(0)
for dtype in (ml_dtypes.bfloat16, np.float16):
    for positions in (3, 4096):
        worst, differ = 0.0, 0
        for _ in range(50):
            dy = rng.standard_normal(positions).astype(dtype)
            x = jnp.asarray(rng.standard_normal(positions).astype(dtype))
            _, vjp = jax.vjp(lambda b, x=x: x + b, jnp.asarray(np.array(0.5, dtype)))
            dbias = float(vjp(jnp.asarray(dy))[0])
            rounded = np.float32(np.sum(dy.astype(np.float64))).astype(dtype)  # the float32 sum's result
            bits = 8 if dtype == ml_dtypes.bfloat16 else 11  # significand bits
            ulp = 2.0 ** (np.floor(np.log2(abs(float(rounded)))) - (bits - 1))
            worst, differ = max(worst, abs(dbias - float(rounded)) / ulp), differ + (dbias != float(rounded))
        print(f"{np.dtype(dtype).name:8s} {positions:5d} positions: dbias differs from the correctly "
              f"rounded sum in {differ} of 50 trials, by up to {worst:.0f} ulps")
