"""Small building blocks of the Polyp-PVT decoder: ``BasicConv2d`` and the CIM attentions.

Submodule names (``conv``, ``bn``, ``fc1``, ``fc2``, ``conv1``) are chosen so that state-dict keys
equal those of the published Polyp-PVT / KDAS checkpoints (Dong et al., 2023; Trinh et al., ICME 2024).
"""
from __future__ import annotations

import torch
from torch import nn


class BasicConv2d(nn.Module):
    """Conv2d (no bias) followed by BatchNorm2d.

    Faithful quirk of the published code: the block *owns* a ``ReLU`` (``self.relu``) but its
    forward never applies it, so the block is linear up to BatchNorm. We keep the unused module
    (it has no parameters, so state dicts are unaffected) to make the quirk visible to readers.

    Shapes: ``(B, in_ch, H, W) -> (B, out_ch, H', W')``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                              dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)  # never applied, as in the published code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class ChannelAttention(nn.Module):
    """CIM channel attention: ``sigmoid(fc(avgpool(x)) + fc(maxpool(x)))`` with a shared 2-layer
    bottleneck ``fc = fc2 . relu . fc1`` (1x1 convs, no bias, ratio 16).

    Returns the *weights* ``(B, C, 1, 1)``; the caller multiplies them onto ``x``.
    """

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = channels // ratio
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def _bottleneck(self, v: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu1(self.fc1(v)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        mx = x.amax(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        return torch.sigmoid(self._bottleneck(avg) + self._bottleneck(mx))  # (B, C, 1, 1)


class SpatialAttention(nn.Module):
    """CIM spatial attention: ``sigmoid(conv7x7([mean_c(x), max_c(x)]))``.

    Returns the *weights* ``(B, 1, H, W)``; the caller multiplies them onto ``x``.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stacked = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return torch.sigmoid(self.conv1(stacked))  # (B, 1, H, W)
