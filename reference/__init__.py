"""The Conv3D specification as code: the problem object and the exact naive-loop reference."""

from reference.activations import ACTIVATIONS, apply_activation
from reference.conv import Evaluation, conv3d, evaluate
from reference.loops import engine
from reference.spec import Conv3DSpec, spec_for_arrays

__all__ = ["ACTIVATIONS", "Conv3DSpec", "Evaluation", "apply_activation", "conv3d", "engine",
           "evaluate", "spec_for_arrays"]
