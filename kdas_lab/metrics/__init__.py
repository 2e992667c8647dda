"""Segmentation metrics of the polyp benchmarks, written for kdas_lab and vectorised.

Two protocols (``matlab``: the PraNet toolbox; ``kdas``: the Python evaluator shipped with KDAS),
see :mod:`kdas_lab.metrics.protocols` and docs/evaluation.md.
"""
from kdas_lab.metrics.evaluator import (
                                        CURVE_KEYS,
                                        METRIC_KEYS,
                                        ImageScores,
                                        dataset_scores,
                                        evaluate_images,
                                        image_scores,
                                        map_scores,
                                        mean_dice,
)
from kdas_lab.metrics.protocols import KDAS, MATLAB, PROTOCOLS, Protocol, get_protocol, prepare_pair
from kdas_lab.metrics.s_measure import s_measure
from kdas_lab.metrics.weighted_f import weighted_f_measure

__all__ = ["CURVE_KEYS", "METRIC_KEYS", "ImageScores", "evaluate_images", "image_scores", "map_scores",
           "mean_dice", "dataset_scores", "KDAS", "MATLAB", "PROTOCOLS", "Protocol", "get_protocol",
           "prepare_pair", "s_measure", "weighted_f_measure"]
