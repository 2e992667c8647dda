"""Similarity Aggregation Module (SAM): a small graph convolution over 16 anchor nodes.

Spec section 3 (a non-local / GloRe-style module). The CFM feature ``x`` is projected onto
``mids*mids`` nodes whose anchors come from the CIM edge cue; a GCN mixes the node states, which
are projected back and added to ``x`` as a residual.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GCN(nn.Module):
    """``h = conv1(n^T)^T - n`` (mix across nodes, with bias); ``out = relu(conv2(h))`` (mix across
    states, no bias). Input / output ``n``: ``(B, num_state, num_node)``.
    """

    def __init__(self, num_state: int, num_node: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(num_node, num_node, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv1d(num_state, num_state, kernel_size=1, bias=False)

    def forward(self, n: torch.Tensor) -> torch.Tensor:
        h = self.conv1(n.transpose(1, 2)).transpose(1, 2) - n  # (B, S, N)
        return self.relu(self.conv2(h))  # (B, S, N)


def edge_weight(edge: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest resize of the edge feature to ``size``, softmax over channels, keep channel 1.

    ``(B, C, h, w) -> (B, 1, H, W)``.
    """
    edge = F.interpolate(edge, size=size, mode="nearest")
    return torch.softmax(edge, dim=1)[:, 1:2]


class SAM(nn.Module):
    """``out = x + conv_extend(back_project(GCN(project(x))))``.

    Shapes: ``x (B, num_in, H, W)``, ``edge (B, C, h, w)`` -> ``(B, num_in, H, W)``.
    """

    def __init__(self, num_in: int = 32, plane_mid: int = 16, mids: int = 4) -> None:
        super().__init__()
        self.num_s = plane_mid
        self.num_n = mids * mids
        self.mids = mids
        self.priors = nn.AdaptiveAvgPool2d((mids + 2, mids + 2))
        self.conv_state = nn.Conv2d(num_in, self.num_s, kernel_size=1)
        self.conv_proj = nn.Conv2d(num_in, self.num_s, kernel_size=1)
        self.gcn = GCN(num_state=self.num_s, num_node=self.num_n)
        self.conv_extend = nn.Conv2d(self.num_s, num_in, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        edge = edge_weight(edge, (h, w))  # (B, 1, H, W)
        state = self.conv_state(x).reshape(b, self.num_s, h * w)  # (B, S, HW)
        proj = self.conv_proj(x)  # (B, S, H, W)
        # anchors: average-pool the edge-masked projection to (m+2)^2 cells, keep the inner m x m
        anchors = self.priors(proj * edge)[:, :, 1:-1, 1:-1].reshape(b, self.num_s, self.num_n)  # (B, S, N)
        affinity = anchors.transpose(1, 2) @ proj.reshape(b, self.num_s, h * w)  # (B, N, HW)
        assign = torch.softmax(affinity, dim=1)  # (B, N, HW), each pixel distributes over nodes
        nodes = state @ assign.transpose(1, 2)  # (B, S, N)
        nodes = self.gcn(nodes)  # (B, S, N)
        back = (nodes @ assign).reshape(b, self.num_s, h, w)  # (B, S, H, W)
        return x + self.conv_extend(back)  # (B, num_in, H, W)
