"""Pluggable Conv3D implementations behind one interface (see backends.base.Backend)."""

from backends.base import Availability, Backend, Capabilities, FunctionBackend, Prepared, Unsupported, declare
from backends.registry import available_backends, get_backend, registered_names

__all__ = ["Availability", "Backend", "Capabilities", "FunctionBackend", "Prepared", "Unsupported",
           "available_backends", "declare", "get_backend", "registered_names"]
