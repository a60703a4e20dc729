"""The Conv3D specification as code: the problem object and the exact naive-loop reference."""

from reference.activations import ACTIVATIONS, apply_activation
from reference.conv import Evaluation, conv3d, evaluate
from reference.grad import GradEvaluation, conv3d_grad, evaluate_grad
from reference.loops import engine
from reference.spec import Conv3DSpec, spec_for_arrays

__all__ = ["ACTIVATIONS", "Conv3DSpec", "Evaluation", "GradEvaluation", "apply_activation", "conv3d",
           "conv3d_grad", "engine", "evaluate", "evaluate_grad", "spec_for_arrays"]
