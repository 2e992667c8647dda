"""``create_model`` / ``load_model`` and ImageNet-pretrained backbones.

Building a model does no I/O; weights come from an explicit ``checkpoint`` (a full Polyp-PVT model,
any layout of :mod:`kdas_lab.models.checkpoint`) or ``pretrained_backbone`` (PVTv2 ImageNet weights:
``"imagenet"`` for the timm hub, or a path to an original ``pvt_v2_bX.pth`` / timm file).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from timm.models.pvt_v2 import checkpoint_filter_fn

from kdas_lab.models.checkpoint import (
    CheckpointError,
    LoadReport,
    detect_variant,
    load_checkpoint,
    normalize_state_dict,
    read_checkpoint,
    unwrap_state_dict,
)
from kdas_lab.models.polyp_pvt import MODEL_NAMES, PolypPVT, create_backbone
from kdas_lab.runtime import resolve_device

PVT_RELEASE_URL = "https://github.com/whai362/PVT/releases/download/v2/{variant}.pth"


def _variant_of(name: str) -> str:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model name {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    return name.rsplit("_", 1)[-1]


def checkpoint_model_name(path: str | os.PathLike) -> str:
    """Model name stored in (kdas_lab) or inferred from the shapes of (other layouts) a checkpoint."""
    obj = read_checkpoint(path)
    sd, saved = unwrap_state_dict(obj, f"checkpoint {path}")
    if saved is not None:
        return saved
    sd, _ = normalize_state_dict(sd, f"checkpoint {path}")
    variant = detect_variant(sd)
    if variant is None:
        raise CheckpointError(f"checkpoint {path}: cannot tell which PVTv2 variant it holds "
                              f"(no known width/depth combination); pass the model name explicitly")
    return f"polyp_pvt_{variant}"


def load_pretrained_backbone(model: PolypPVT, source: str | os.PathLike) -> int:
    """Load PVTv2 ImageNet weights into ``model.backbone``; returns the number of matched keys.

    ``source="imagenet"`` uses timm's hub weights (needs internet); a path loads an original
    ``pvt_v2_bX.pth`` (original key names, ``head.*`` dropped) or a timm-layout file. Every backbone
    key must be matched (176 for B0, 332 for B2), otherwise this fails loudly.
    """
    variant = model.variant
    expected = model.backbone.state_dict()
    if isinstance(source, str) and source == "imagenet":
        try:
            hub = create_backbone(variant, pretrained=True)
        except Exception as e:  # offline, hub down, no cache
            url = PVT_RELEASE_URL.format(variant=f"pvt_v2_{variant}")
            raise RuntimeError(
                f"could not fetch ImageNet weights 'timm/pvt_v2_{variant}.in1k' from the Hugging Face hub "
                f"({type(e).__name__}: {e}). Offline? Download {url} on a connected machine and pass "
                f"its path as pretrained_backbone=<path> (or --set pretrained_backbone=<path>).") from e
        sd = hub.state_dict()
        where = f"timm hub pvt_v2_{variant}.in1k"
    else:
        path = Path(source)
        where = f"pretrained backbone file {path}"
        sd, saved = unwrap_state_dict(read_checkpoint(path), where)
        if saved is not None or any(k.startswith("backbone.") for k in sd):
            raise CheckpointError(f"{where} is a full Polyp-PVT checkpoint, not a PVTv2 backbone: "
                                  f"pass it as checkpoint=<path> instead")
        sd = {k: v for k, v in sd.items() if not k.startswith("head.")}  # ImageNet classifier
        sd = checkpoint_filter_fn(sd, None)  # original PVT names -> timm names (no-op for timm files)
    matched = [k for k in expected if k in sd and sd[k].shape == expected[k].shape]
    unmatched_file = [k for k in sd if k not in expected or sd[k].shape != expected[k].shape]
    if len(matched) != len(expected) or unmatched_file:
        missing = [k for k in expected if k not in matched]
        found = detect_variant({f"backbone.{k}": v for k, v in sd.items()})
        hint = f" (it looks like pvt_v2_{found})" if found else ""
        raise CheckpointError(
            f"{where}{hint} matched only {len(matched)} of the {len(expected)} pvt_v2_{variant} backbone keys; "
            f"missing or mis-shaped: {missing[:10]}{' ...' if len(missing) > 10 else ''}; "
            f"unused in file: {unmatched_file[:10]}{' ...' if len(unmatched_file) > 10 else ''}")
    model.backbone.load_state_dict({k: sd[k] for k in expected}, strict=True)
    return len(matched)


def create_model(name: str | None = None, checkpoint: str | os.PathLike | dict | None = None,
                 pretrained_backbone: str | os.PathLike | None = None, drop_path_rate: float = 0.1) -> PolypPVT:
    """Build ``polyp_pvt_b0`` .. ``polyp_pvt_b5`` (``MODEL_NAMES``); b2 = teacher, b0 = student.

    ``checkpoint``: full-model weights (path or state dict; strict). ``name=None`` takes the variant
    from the checkpoint. ``pretrained_backbone``: ``"imagenet"`` or a ``pvt_v2_bX.pth`` path (ignored
    when a checkpoint is given, which overwrites every weight). The model is on the CPU in train mode.
    """
    if name is None:
        if checkpoint is None:
            raise ValueError(f"create_model needs a name ({', '.join(MODEL_NAMES)}) or a checkpoint")
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise ValueError("create_model(name=None) needs a checkpoint *path* to read the model name from")
        name = checkpoint_model_name(checkpoint)
    variant = _variant_of(name)
    if checkpoint is not None:
        # every parameter and buffer is overwritten by the strict load, so skip the (slow, ~2 s for
        # B2) random initialisation: build on the meta device and allocate uninitialised CPU memory
        with torch.device("meta"):
            model = PolypPVT(variant, drop_path_rate=drop_path_rate)
        model = model.to_empty(device="cpu")
        load_checkpoint(model, checkpoint)
        return model
    model = PolypPVT(variant, drop_path_rate=drop_path_rate)
    if pretrained_backbone is not None:
        load_pretrained_backbone(model, pretrained_backbone)
    return model


def load_model(path: str | os.PathLike, device: str | torch.device | None = None) -> PolypPVT:
    """Build the right variant for a checkpoint file, load it, move it to ``device``, ``eval()`` it."""
    model = create_model(None, checkpoint=path)
    if device is not None:
        model = model.to(resolve_device(device))
    return model.eval()


__all__ = ["create_model", "load_model", "load_pretrained_backbone", "checkpoint_model_name", "LoadReport"]
