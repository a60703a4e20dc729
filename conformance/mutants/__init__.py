"""Deliberately broken backends that prove the conformance suite catches real bug classes."""
