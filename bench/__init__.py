"""Benchmark harness: workloads, timing, correctness gate, reports."""
