"""Per-term gradient norms: how hard each addend of a loss pulls on the student.

A loss's magnitude says little about its influence; its gradient does. For a distillation loss
``total = (1-a) seg + a * sum_k w_k part_k`` (see ``DistillationLoss.weighted_terms``) this gives
``||d term / d theta||_2`` over the student's parameters for each weighted addend. The trainer logs
it every ``cfg.log_term_grads_every`` steps (``gradnorm_<term>`` columns of ``steps.csv``).
"""
from __future__ import annotations

import torch


def term_gradient_norms(terms: dict[str, torch.Tensor], params: list[torch.Tensor]) -> dict[str, float]:
    """``{name: L2 norm of d terms[name] / d params}``; the autograd graph is kept for the real backward."""
    out: dict[str, float] = {}
    for name, term in terms.items():
        if not term.requires_grad:
            out[name] = 0.0
            continue
        grads = [g for g in torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
                 if g is not None]
        out[name] = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))) if grads else 0.0
    return out
