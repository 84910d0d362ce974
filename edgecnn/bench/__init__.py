"""Benchmarks: latency, accuracy, reports and plots. Torch-free."""
