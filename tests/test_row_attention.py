"""The attention term, written once (kdas_lab.losses.row_attention.at_term), against hand-computed values."""
import math

import pytest
import torch

from kdas_lab.course import term_fit
from kdas_lab.losses import KDASLoss
from kdas_lab.losses.row_attention import at_term, attention_kl, row_attention, row_kl
from kdas_lab.models import PolypOutput


def test_one_row_map_hand_value():
    # one row: softmax over a single score is 1, so A(P) = P; rows = 1
    p_s = torch.tensor([[[[0.0, 0.0]]]])  # (1, 1, 1, 2): q_s = (1/2, 1/2)
    p_t = torch.tensor([[[[2 * math.log(3.0), 0.0]]]])  # at T = 2: q_t = softmax(ln 3, 0) = (3/4, 1/4)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # 0.1308...
    assert float(row_kl(row_attention(p_s), row_attention(p_t), 2.0)) == pytest.approx(kl, rel=1e-6)
    assert float(at_term(p_s, p_t, 2.0)) == pytest.approx(4 * kl, rel=1e-6)  # times T^2
    assert float(attention_kl(p_s, p_t, 2.0)) == pytest.approx(4 * kl, rel=1e-6)


def test_two_row_attention_hand_value_and_identity():
    p = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # P P^T / sqrt(2) = I / sqrt(2)
    w = math.exp(1 / math.sqrt(2)) / (math.exp(1 / math.sqrt(2)) + 1)  # 0.6698...
    expected = torch.tensor([[[[w, 1 - w], [1 - w, w]]]])
    torch.testing.assert_close(row_attention(p), expected, atol=1e-6, rtol=0)
    assert float(at_term(p, p, 2.0)) == 0.0
    assert float(at_term(p, p + 5.0, 2.0, teacher_att=row_attention(p))) == 0.0  # the given A(P_t) is used


def test_kdas_loss_and_term_fit_use_the_same_term_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    s1, s2, t1, t2 = (torch.randn(2, 1, 8, 8, generator=g) for _ in range(4))
    loss = KDASLoss(temperature=2.0)
    _, parts = loss.distill_term(PolypOutput(s1, s2, None), PolypOutput(t1, t2, None))
    assert torch.equal(parts["at"], torch.zeros(()) + at_term(s1, t1, 2.0) + at_term(s2, t2, 2.0))
    assert torch.equal(term_fit.at_term(s1[0, 0], t1[0, 0], 2.0), at_term(s1[:1], t1[:1], 2.0))
