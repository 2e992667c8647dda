"""Polyp-PVT models on timm PVTv2 backbones, checkpoints and attention capture."""
from kdas_lab.models.attention_capture import AttentionCapture, AttentionMap, attention_fusion, stage_attention
from kdas_lab.models.checkpoint import (
    CheckpointError,
    LoadReport,
    detect_variant,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from kdas_lab.models.factory import create_model, load_model, load_pretrained_backbone
from kdas_lab.models.polyp_pvt import MODEL_NAMES, VARIANTS, PolypFeatures, PolypOutput, PolypPVT

__all__ = [
    "MODEL_NAMES", "VARIANTS", "PolypPVT", "PolypOutput", "PolypFeatures",
    "create_model", "load_model", "load_pretrained_backbone",
    "load_checkpoint", "save_checkpoint", "read_checkpoint", "detect_variant", "LoadReport", "CheckpointError",
    "AttentionCapture", "AttentionMap", "attention_fusion", "stage_attention",
]
