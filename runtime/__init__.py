"""The run-time layer shared by conformance and bench: isolated backend workers, input data,
statuses and records, timing, result files and tables, the environment, the workloads CSV."""
