"""Random-number-generator state for exact resume.

Every state is converted to plain types and tensors so that checkpoints load with
``torch.load(weights_only=True)``: Python's ``random`` state (tuple -> lists), NumPy's legacy
global state (array -> tensor), torch's CPU and CUDA generators, and the data loader's generator.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_rng(loader_generator: torch.Generator | None = None) -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def restore_rng(state: dict[str, Any], loader_generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng`; a missing part is an error (resume would not be exact)."""
    missing = {"python", "numpy", "torch"} - set(state)
    if loader_generator is not None and "loader" not in state:
        missing.add("loader")
    if missing:
        raise KeyError(f"checkpoint RNG state lacks {sorted(missing)}; cannot resume exactly")
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    keys = npst["keys"].numpy().astype(np.uint32)
    np.random.set_state((npst["kind"], keys, npst["pos"], npst["has_gauss"], npst["cached"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None:
        loader_generator.set_state(state["loader"])
