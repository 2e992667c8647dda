"""Evaluation with file and model I/O: prediction as the published scripts do it (``inference``), scoring
models or saved maps over the PraNet test sets (``evaluate``), the published reference numbers
(``reference``) and ONNX export (``export``). The arithmetic of the metrics is in :mod:`kdas_lab.metrics`.
"""
from kdas_lab.evaluation.evaluate import evaluate_maps, evaluate_model, match_maps

__all__ = ["evaluate_maps", "evaluate_model", "match_maps"]
