"""Cascaded Fusion Module (CFM): fuses the three deepest backbone stages top-down.

Spec section 3. All inputs have 32 channels; ``x_high`` is stage 4 (stride 32), ``x_mid`` stage 3
(stride 16), ``x_low`` stage 2 (stride 8). The output has 32 channels at stride 8.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdas_lab.models.blocks import BasicConv2d


def up2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling with ``align_corners=True`` (as the published decoder)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class CFM(nn.Module):
    """``x2_1 = cu1(up(h)) * m``; ``x3_1 = cu2(up(up(h))) * cu3(up(m)) * l``;
    ``x2_2 = concat2([x2_1, cu4(up(h))])``; ``x3_2 = concat3([x3_1, cu5(up(x2_2))])``;
    ``out = conv4(x3_2)`` with h, m, l = high, mid, low features.
    """

    def __init__(self, channel: int = 32) -> None:
        super().__init__()
        c = channel
        self.conv_upsample1 = BasicConv2d(c, c, 3, padding=1)
        self.conv_upsample2 = BasicConv2d(c, c, 3, padding=1)
        self.conv_upsample3 = BasicConv2d(c, c, 3, padding=1)
        self.conv_upsample4 = BasicConv2d(c, c, 3, padding=1)
        self.conv_upsample5 = BasicConv2d(2 * c, 2 * c, 3, padding=1)
        self.conv_concat2 = BasicConv2d(2 * c, 2 * c, 3, padding=1)
        self.conv_concat3 = BasicConv2d(3 * c, 3 * c, 3, padding=1)
        self.conv4 = BasicConv2d(3 * c, c, 3, padding=1)

    def forward(self, x_high: torch.Tensor, x_mid: torch.Tensor, x_low: torch.Tensor) -> torch.Tensor:
        # x_high (B, c, H/32, W/32), x_mid (B, c, H/16, W/16), x_low (B, c, H/8, W/8)
        x2_1 = self.conv_upsample1(up2(x_high)) * x_mid  # (B, c, H/16, W/16)
        x3_1 = (self.conv_upsample2(up2(up2(x_high)))
                * self.conv_upsample3(up2(x_mid)) * x_low)  # (B, c, H/8, W/8)
        x2_2 = self.conv_concat2(torch.cat([x2_1, self.conv_upsample4(up2(x_high))], dim=1))  # (B, 2c, H/16, W/16)
        x3_2 = self.conv_concat3(torch.cat([x3_1, self.conv_upsample5(up2(x2_2))], dim=1))  # (B, 3c, H/8, W/8)
        return self.conv4(x3_2)  # (B, c, H/8, W/8)
