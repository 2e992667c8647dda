"""Benchmarks: model efficiency (parameters, MACs, latency, memory) and evaluator speed."""
