"""Polyp-PVT: a timm PVTv2 backbone with the CIM / CFM / SAM decoder and two prediction heads.

Spec section 3. Attribute names make ``state_dict()`` keys equal the published decoder keys
(``Translayer2_0.conv.weight``, ``CFM.conv_upsample1.bn.weight``, ``ca.fc1.weight``,
``sa.conv1.weight``, ``SAM.gcn.conv1.bias``, ``out_CFM.weight`` ...); the backbone lives under
``backbone.`` with timm's own names (``backbone.stages.0.blocks.0.attn.q.weight``).
"""
from __future__ import annotations

from typing import NamedTuple

import timm
import torch
import torch.nn.functional as F
from torch import nn

from kdas_lab.models.blocks import BasicConv2d, ChannelAttention, SpatialAttention
from kdas_lab.models.cfm import CFM
from kdas_lab.models.sam import SAM


class Variant(NamedTuple):
    widths: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]


# PVTv2 variants (timm ``pvt_v2_bX``). b2 = teacher, b0 = student.
VARIANTS: dict[str, Variant] = {
    "b0": Variant((32, 64, 160, 256), (2, 2, 2, 2)),
    "b1": Variant((64, 128, 320, 512), (2, 2, 2, 2)),
    "b2": Variant((64, 128, 320, 512), (3, 4, 6, 3)),
    "b3": Variant((64, 128, 320, 512), (3, 4, 18, 3)),
    "b4": Variant((64, 128, 320, 512), (3, 8, 27, 3)),
    "b5": Variant((64, 128, 320, 512), (3, 6, 40, 3)),
}
MODEL_NAMES: tuple[str, ...] = tuple(f"polyp_pvt_{v}" for v in VARIANTS)
DECODER_CHANNELS = 32


class PolypFeatures(NamedTuple):
    stages: tuple[torch.Tensor, ...]  # 4 maps (B, C_i, H/s, W/s), s = 4, 8, 16, 32
    cim: torch.Tensor  # (B, C1, H/4, W/4) stage 1 after channel + spatial attention
    cfm: torch.Tensor  # (B, 32, H/8, W/8)
    sam: torch.Tensor  # (B, 32, H/8, W/8)


class PolypOutput(NamedTuple):
    p1: torch.Tensor  # (B, 1, H, W) logits of the CFM head
    p2: torch.Tensor  # (B, 1, H, W) logits of the SAM head
    features: PolypFeatures


def create_backbone(variant: str, drop_path_rate: float = 0.1, pretrained: bool = False) -> nn.Module:
    """timm PVTv2 without classifier (``num_classes=0``: ``head`` is an Identity, no parameters).

    ``pretrained=True`` downloads ImageNet weights from the Hugging Face hub (I/O!).
    """
    return timm.create_model(f"pvt_v2_{variant}", pretrained=pretrained,
                             drop_path_rate=drop_path_rate, num_classes=0)


class PolypPVT(nn.Module):
    """Polyp-PVT segmentation network (Dong et al. 2023) on a PVTv2 backbone.

    ``forward(x)`` with ``x (B, 3, H, W)``, H and W multiples of 32, returns
    ``PolypOutput(p1, p2, features)``; inference map = ``sigmoid(p1 + p2)``.
    The constructor does no I/O: weights are random until loaded (see ``kdas_lab.models.factory``).
    """

    def __init__(self, variant: str = "b2", drop_path_rate: float = 0.1, channel: int = DECODER_CHANNELS,
                 backbone: nn.Module | None = None) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown PVTv2 variant {variant!r}; valid: {', '.join(VARIANTS)}")
        self.variant = variant
        self.name = f"polyp_pvt_{variant}"
        self.stage_channels = VARIANTS[variant].widths
        c1, c2, c3, c4 = self.stage_channels
        self.backbone = backbone if backbone is not None else create_backbone(variant, drop_path_rate)

        self.Translayer2_0 = BasicConv2d(c1, channel, 1)
        self.Translayer2_1 = BasicConv2d(c2, channel, 1)
        self.Translayer3_1 = BasicConv2d(c3, channel, 1)
        self.Translayer4_1 = BasicConv2d(c4, channel, 1)
        self.CFM = CFM(channel)
        self.ca = ChannelAttention(c1)
        self.sa = SpatialAttention()
        self.SAM = SAM(num_in=channel)
        self.out_SAM = nn.Conv2d(channel, 1, 1)
        self.out_CFM = nn.Conv2d(channel, 1, 1)

    @staticmethod
    def check_input(x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"PolypPVT expects a (B, 3, H, W) tensor, got {shape}")
        h, w = x.shape[-2:]
        if h % 32 or w % 32 or h == 0 or w == 0:
            raise ValueError(f"PolypPVT input height and width must be positive multiples of 32 "
                             f"(the decoder's x2 upsamplings must line up), got {h}x{w}; "
                             f"resize to e.g. {max(32, round(h / 32) * 32)}x{max(32, round(w / 32) * 32)}")

    def forward_backbone(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Four NCHW stage maps at strides 4, 8, 16, 32."""
        return tuple(self.backbone.forward_intermediates(x, intermediates_only=True))

    def forward(self, x: torch.Tensor) -> PolypOutput:
        self.check_input(x)
        stages = self.forward_backbone(x)
        x1, x2, x3, x4 = stages  # (B, C_i, H/4..H/32, W/4..W/32)

        # CIM: channel then spatial attention on the shallow stage
        x1 = self.ca(x1) * x1
        cim = self.sa(x1) * x1  # (B, C1, H/4, W/4)

        # CFM on the three deep stages, each reduced to 32 channels
        cfm = self.CFM(self.Translayer4_1(x4), self.Translayer3_1(x3), self.Translayer2_1(x2))  # (B, 32, H/8, W/8)

        # SAM, guided by the CIM feature brought to stride 8
        t2 = F.interpolate(self.Translayer2_0(cim), scale_factor=0.5, mode="bilinear",
                           align_corners=True)  # (B, 32, H/8, W/8)
        sam = self.SAM(cfm, t2)  # (B, 32, H/8, W/8)

        p1 = F.interpolate(self.out_CFM(cfm), scale_factor=8, mode="bilinear", align_corners=False)  # (B, 1, H, W)
        p2 = F.interpolate(self.out_SAM(sam), scale_factor=8, mode="bilinear", align_corners=False)  # (B, 1, H, W)
        return PolypOutput(p1, p2, PolypFeatures(stages, cim, cfm, sam))

    def extra_repr(self) -> str:
        return f"name={self.name!r}"
