"""Conformance engine: generate, run, judge and report Conv3D cases against the reference."""
