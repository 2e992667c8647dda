"""Reading, writing and strictly loading Polyp-PVT checkpoints.

Accepted layouts (``source_layout`` in the report):
- ``"published"``: Polyp-PVT / KDAS release files; backbone keys use the original PVTv2 names
  (``backbone.patch_embed1.proj.weight``, ``backbone.block1.0.attn.q.weight``, ``backbone.norm1.*``),
  remapped with ``timm.models.pvt_v2.checkpoint_filter_fn`` after stripping ``backbone.``.
- ``"timm"``: our own key names (``backbone.stages.0.blocks.0...``), e.g. a bare ``state_dict()``.
- ``"kdas_lab"``: files written by :func:`save_checkpoint` (dict with ``"format": "kdas_lab"``).
Wrappers ``{"state_dict": ...}`` / ``{"model": ...}`` and DDP ``module.`` prefixes are unwrapped.
Loading is strict: missing, unexpected or mis-shaped keys raise :class:`CheckpointError`.
Files are always read with ``torch.load(weights_only=True)`` onto the CPU. A file whose unpickling
would call a function (``os.system``, any class) is refused as such, never as "corrupt"; so is a bare
pickle (not torch's zip or protocol-2 legacy format: torch's safe reader cannot parse it) before torch
reads it; weights that are not finite (NaN, Inf) are refused on every load.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import torch
from timm.models.pvt_v2 import checkpoint_filter_fn
from torch import nn

from kdas_lab.atomic import torch_save_atomic
from kdas_lab.models.polyp_pvt import VARIANTS
from kdas_lab.paths import require_files

FORMAT = "kdas_lab"
_RESERVED = ("format", "version", "model_name", "state_dict", "config", "epoch", "metrics")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says why."""


class LoadReport(NamedTuple):
    matched: int  # number of keys loaded (all of the model's keys: loading is strict)
    source_layout: str  # "published" | "timm" | "kdas_lab"


def _describe(keys: list[str], n: int = 10) -> str:
    head = ", ".join(keys[:n])
    return f"{head}{f', ... ({len(keys)} in total)' if len(keys) > n else f' ({len(keys)} in total)'}"


# torch's wording for a global the safe unpickler blocks ("Unsupported global: GLOBAL x.y" for one
# not allow-listed, "unsupported GLOBAL posix.system whose module posix is blocked" for os.system)
_BLOCKED = re.compile(r"unsupported global:? (?:GLOBAL )?([\w.]+)", re.IGNORECASE)
_OS_MODULES = ("posix.", "nt.")  # os.system is posix.system / nt.system in a pickle


def _load_error(path: Path, e: Exception) -> CheckpointError:
    """A refused file (it would run code) or an unreadable one; never torch's advice to load unsafely."""
    text = str(e)
    found = _BLOCKED.search(text)
    if found:
        name = found.group(1)
        shown = next((f"os.{name[len(m):]}" for m in _OS_MODULES if name.startswith(m)), name)
        return CheckpointError(
            f"checkpoint {path} refused: loading it would execute code (global {shown}); kdas_lab reads only "
            f"tensors and plain Python types, so this file cannot be used")
    detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
    first = (detail.group(1) if detail else lines[0] if lines else "empty or cut short").split(". ")[0]
    return CheckpointError(f"could not read checkpoint {path}: the file is truncated, corrupt or not a "
                           f"PyTorch file ({type(e).__name__}: {first[:200]})")


# torch's legacy (non-zip) files open with protocol 2 and its magic number, LONG1 0x1950a86a20f9469cfc6c
_TORCH_LEGACY_HEAD = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def refuse_bare_pickle(path: Path) -> None:
    """A pickle that is not a torch file (e.g. ``pickle.dump``, protocol 4/5) is refused as such."""
    with open(path, "rb") as fh:
        head = fh.read(len(_TORCH_LEGACY_HEAD))
    if head[:1] == b"\x80" and head != _TORCH_LEGACY_HEAD:
        raise CheckpointError(f"checkpoint {path}: legacy pickle checkpoint, refused: loading it could execute "
                              f"code; re-save it with torch.save in a trusted environment")


def check_finite(tensors: Mapping[str, Any], source: str) -> None:
    """Refuse weights holding NaN or Inf (they give plausible-looking but meaningless outputs)."""
    bad = [str(k) for k, v in tensors.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{source} holds non-finite weights (NaN or Inf) in {_describe(bad)}: refusing to "
                              f"use it (take an earlier checkpoint, e.g. best.pt, or retrain)")


def _weights(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), Mapping):
            return obj[key]
    return obj


def read_checkpoint(path: str | os.PathLike, *, meta_only: bool = False) -> dict[str, Any]:
    """``torch.load(path, weights_only=True, map_location="cpu")`` with errors that name the file;
    the weights must be finite. ``meta_only``: memory-map the file and skip the weight check (for
    reading ``config`` / ``epoch`` without reading the tensors)."""
    path = Path(path)
    require_files([path], "checkpoint file")
    refuse_bare_pickle(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=meta_only)
    except Exception as e:  # torch raises many types (RuntimeError, UnpicklingError, KeyError, EOFError)
        raise _load_error(path, e) from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict (state dict)")
    if not meta_only:
        check_finite(_weights(obj), f"checkpoint {path}")
    return obj


def unwrap_state_dict(obj: Mapping[str, Any], source: str = "state dict") -> tuple[dict[str, torch.Tensor], str | None]:
    """Find the tensor mapping inside ``obj``. Returns ``(state_dict, kdas_lab_model_name_or_None)``."""
    model_name = None
    if obj.get("format") == FORMAT:
        model_name = obj.get("model_name")
        obj = obj.get("state_dict")
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{source}: kdas_lab checkpoint without a 'state_dict' dict")
    else:
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source} is not a state dict: values of {_describe([str(k) for k in bad])} "
                              f"are not tensors (top-level keys: {_describe([str(k) for k in obj])})")
    sd = dict(obj)
    if sd and all(k.startswith("module.") for k in sd):  # DistributedDataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd, model_name


def normalize_state_dict(sd: Mapping[str, torch.Tensor],
                         source: str = "state dict") -> tuple[dict[str, torch.Tensor], str]:
    """Map a full-model state dict to our key names. Returns ``(state_dict, layout)``."""
    backbone = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    decoder = {k: v for k, v in sd.items() if not k.startswith("backbone.")}
    if not backbone:
        if "patch_embed1.proj.weight" in sd or "patch_embed.proj.weight" in sd:
            raise CheckpointError(
                f"{source} looks like a bare PVTv2 backbone (ImageNet) checkpoint, not a Polyp-PVT "
                f"model: pass it as pretrained_backbone=<path> instead")
        raise CheckpointError(f"{source} does not look like a Polyp-PVT checkpoint: no 'backbone.' keys "
                              f"(keys: {_describe(list(sd))})")
    if "patch_embed1.proj.weight" in backbone or any(k.startswith("block1.") for k in backbone):
        layout = "published"
        backbone = checkpoint_filter_fn(backbone, None)
    else:
        layout = "timm"
    return {**{f"backbone.{k}": v for k, v in backbone.items()}, **decoder}, layout


def detect_variant(sd: Mapping[str, torch.Tensor]) -> str | None:
    """PVTv2 variant (``"b0"`` ...) of a normalised (timm-layout) state dict, from widths and depths."""
    w = sd.get("backbone.patch_embed.proj.weight")
    if w is None:
        return None
    depths = [0, 0, 0, 0]
    for k in sd:
        parts = k.split(".")
        if len(parts) > 4 and parts[1] == "stages" and parts[3] == "blocks":
            s, b = int(parts[2]), int(parts[4])
            if s < 4:
                depths[s] = max(depths[s], b + 1)
    for name, var in VARIANTS.items():
        if var.widths[0] == w.shape[0] and tuple(depths) == var.depths:
            return name
    return None


def load_checkpoint(model: nn.Module, path_or_state_dict: str | os.PathLike | Mapping[str, Any]) -> LoadReport:
    """Strictly load weights into a :class:`PolypPVT`; see the module docstring for the layouts."""
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        source = f"checkpoint {path_or_state_dict}"
        obj = read_checkpoint(path_or_state_dict)
    elif isinstance(path_or_state_dict, Mapping):
        source, obj = "state dict", path_or_state_dict
        check_finite(_weights(obj), source)
    else:
        raise TypeError(f"load_checkpoint expects a path or a state dict, got {type(path_or_state_dict).__name__}")
    sd, saved_name = unwrap_state_dict(obj, source)
    sd, layout = normalize_state_dict(sd, source)
    if saved_name is not None:
        layout = "kdas_lab"
    model_name = getattr(model, "name", type(model).__name__)
    found = detect_variant(sd)
    found_name = f"polyp_pvt_{found}" if found else saved_name
    if found_name is not None and found_name != model_name:
        raise CheckpointError(f"{source} holds {found_name} weights, but the model is {model_name}: "
                              f"create the model with create_model({found_name!r}, checkpoint=...)")

    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    problems = []
    if missing:
        problems.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_describe(unexpected)}")
    shape_bad = [f"{k} {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
                 for k in own if k in sd and sd[k].shape != own[k].shape]
    if shape_bad:
        problems.append(f"shape mismatches: {_describe(shape_bad)}")
    if problems:
        hint = f" (it looks like {found_name})" if found_name else ""
        raise CheckpointError(f"{source} ({layout} layout){hint} does not fit {model_name}: " + "; ".join(problems))
    model.load_state_dict(sd, strict=True)
    return LoadReport(matched=len(own), source_layout=layout)


def _plain(obj: Any, where: str) -> Any:
    """Check/convert ``obj`` to types ``torch.load(weights_only=True)`` accepts."""
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj.detach().cpu() if isinstance(obj, torch.Tensor) else obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():  # numpy scalar
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        out = [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return out if isinstance(obj, list) else tuple(out)
    raise TypeError(f"save_checkpoint: {where} is a {type(obj).__name__}; only tensors and plain Python "
                    f"types can be stored (the file must load with weights_only=True)")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, *, config: dict | None = None,
                    epoch: int | None = None, metrics: dict | None = None, **extra: Any) -> Path:
    """Write ``{"format": "kdas_lab", "version", "model_name", "state_dict", "config", "epoch",
    "metrics", **extra}`` atomically; tensors are stored on the CPU. Returns the path."""

    clash = [k for k in extra if k in _RESERVED]
    if clash:
        raise ValueError(f"save_checkpoint: extra keys {clash} clash with reserved keys {_RESERVED}")
    payload = {
        "format": FORMAT,
        "version": version("kdas_lab"),
        "model_name": getattr(model, "name", type(model).__name__),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": _plain(config, "config"),
        "epoch": _plain(epoch, "epoch"),
        "metrics": _plain(metrics, "metrics"),
        **{k: _plain(v, k) for k, v in extra.items()},
    }
    return torch_save_atomic(payload, path)
