"""Benchmarks of linkis-magic: push latency, event throughput, result transfer, per-cell overhead
and concurrency, each as ratios against a named baseline measured in the same run.

``python -m bench`` (``make bench``) runs them all; see BENCHMARKS.md.
"""
