"""Backends that misbehave at the process level, for the isolation tests (loaded by module:attr)."""

import os
import time

import numpy as np

from reference import conv3d as reference_conv3d


def aborts(x, kernel, bias=None, **args):
    """Kills its own process, like a segfault in native code."""
    os.abort()


def hangs(x, kernel, bias=None, **args):
    time.sleep(3600)


def raises_runtime_error(x, kernel, bias=None, **args):
    raise RuntimeError("internal error in a native kernel")


def exact_float32(x, kernel, bias=None, **args):
    """A user's function with the reference signature: the reference rounded to x's dtype."""
    return reference_conv3d(x, kernel, bias, **args).astype(np.asarray(x).dtype)
