"""MultiPeriodDiscriminator shapes and gradients; least-squares and feature-matching loss values."""

import pytest
import torch
from torch.nn.utils import parametrize

from dfn4core.losses import (
    LossConfig,
    MultiPeriodDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adv_loss,
)


@pytest.fixture
def mpd() -> MultiPeriodDiscriminator:
    return MultiPeriodDiscriminator(LossConfig(mpd_channels=(4, 8)))


@pytest.mark.parametrize("length", [3_000, 3_001])
def test_mpd_shapes_per_period(mpd, length):
    scores, features = mpd(torch.randn(2, length))
    assert len(scores) == len(features) == 5
    for period, score, feats in zip((2, 3, 5, 7, 11), scores, features, strict=True):
        folded = -(-length // period)  # ceil: the wave is padded to whole periods
        assert [f.shape[1] for f in feats] == [4, 8, 8, 1]
        assert all(f.shape[0] == 2 and f.shape[-1] == period for f in feats)
        assert feats[0].shape[2] == (folded - 1) // 3 + 1
        assert score.shape == (2, feats[-1].shape[2] * period)


def test_mpd_uses_weight_norm_and_pads_very_short_input(mpd):
    assert MultiPeriodDiscriminator().periods == (2, 3, 5, 7, 11)
    assert all(parametrize.is_parametrized(c, "weight") for d in mpd.discriminators for c in (*d.convs, d.post))
    scores, _ = mpd(torch.randn(1, 4))  # shorter than the period 11: zero padding
    assert all(torch.isfinite(s).all() for s in scores)
    with pytest.raises(ValueError):
        mpd(torch.randn(4))


def test_gradients_are_finite(mpd):
    wave = torch.randn(2, 2_000, requires_grad=True)
    scores, feats = mpd(wave)
    (generator_adv_loss(scores) + feature_matching_loss(feats, [[f * 0.5 for f in fs] for fs in feats])).backward()
    assert torch.isfinite(wave.grad).all() and wave.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in mpd.parameters() if p.grad is not None)


def test_least_squares_losses_for_known_scores():
    ones, zeros, halves = [torch.ones(2, 3)] * 2, [torch.zeros(2, 3)] * 2, [torch.full((2, 3), 0.5)] * 2
    assert discriminator_loss(ones, zeros) == 0
    assert discriminator_loss(zeros, ones) == 2
    assert discriminator_loss(halves, halves) == 0.5
    assert generator_adv_loss(ones) == 0 and generator_adv_loss(zeros) == 1
    assert generator_adv_loss([torch.zeros(1, 4), torch.ones(1, 2)]) == 0.5  # mean over discriminators
    with pytest.raises(ValueError):
        discriminator_loss(ones, zeros[:1])
    with pytest.raises(ValueError):
        generator_adv_loss([])


def test_feature_matching_is_zero_for_identical_features_and_l1_otherwise():
    feats = [[torch.randn(2, 4, 5, 3), torch.randn(2, 1, 5, 3)], [torch.randn(2, 4, 7, 2)]]
    assert feature_matching_loss(feats, feats) == 0
    shifted = [[f + 0.5 for f in fs] for fs in feats]
    torch.testing.assert_close(feature_matching_loss(feats, shifted), torch.tensor(0.5))
    fake = [[f.clone().requires_grad_() for f in fs] for fs in feats]
    real = [[f.clone().requires_grad_() for f in fs] for fs in shifted]
    feature_matching_loss(real, fake).backward()
    assert all(f.grad is not None for fs in fake for f in fs) and all(r.grad is None for rs in real for r in rs)
    with pytest.raises(ValueError):
        feature_matching_loss([[]], [[]])
