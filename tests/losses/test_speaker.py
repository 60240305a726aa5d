"""Speaker encoder (resemblyzer's weights, torch mel front end) and the contrastive loss."""

import math

import numpy as np
import pytest
import torch

from dfn4core.config import ModelConfig
from dfn4core.errors import ConfigError
from dfn4core.losses import GeneratorLoss, LossConfig, LossWeights, SpeakerContrastiveLoss, SpeakerEncoder
from dfn4core.losses.pretrained_input import package_file
from dfn4core.losses.speaker import hz_to_mel, mel_filterbank, mel_to_hz, resemblyzer_weights


def _weights_or_skip():
    try:
        return resemblyzer_weights()
    except ConfigError:
        pytest.skip("resemblyzer weights absent: pip install --no-deps resemblyzer")


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    _weights_or_skip()
    return SpeakerEncoder()


def test_mel_filterbank_equals_librosa():
    # Golden values from librosa 0.11: librosa.filters.mel(sr=16000, n_fft=400, n_mels=40).
    fb = mel_filterbank(16_000, 400, 40)
    assert fb.shape == (40, 201)
    first = torch.tensor([0.0, 0.0073902095, 0.012404521, 0.0050143115], dtype=torch.float64)
    torch.testing.assert_close(fb[0, :4], first)
    assert (fb[0].argmax(), fb[20].argmax(), fb[39].argmax()) == (2, 44, 185)
    assert fb[20].max().item() == pytest.approx(0.0071919174, rel=1e-6)
    assert fb.sum().item() == pytest.approx(0.9994972, rel=1e-6)
    mels = hz_to_mel(torch.tensor([500.0, 1000.0, 4000.0]))
    torch.testing.assert_close(mels, torch.tensor([7.5, 15.0, 35.1637603146]))
    torch.testing.assert_close(mel_to_hz(torch.tensor([10.0, 25.0])), torch.tensor([666.6666666667, 1988.7728181328]))


def _reference_embedding(path, mels: torch.Tensor) -> torch.Tensor:
    """resemblyzer's VoiceEncoder forward written out: LSTM cell equations, last hidden state."""
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    x = mels
    for layer in range(3):
        w_ih, w_hh = state[f"lstm.weight_ih_l{layer}"], state[f"lstm.weight_hh_l{layer}"]
        bias = state[f"lstm.bias_ih_l{layer}"] + state[f"lstm.bias_hh_l{layer}"]
        h = c = torch.zeros(x.shape[0], 256)
        outputs = []
        for t in range(x.shape[1]):
            i, f, g, o = (x[:, t] @ w_ih.T + h @ w_hh.T + bias).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        x = torch.stack(outputs, dim=1)
    embed = torch.relu(h @ state["linear.weight"].T + state["linear.bias"])
    return embed / embed.norm(dim=1, keepdim=True)


def test_embedding_equals_a_reference_forward_of_the_weights(encoder):
    mels = torch.rand(2, 50, 40) * 0.1
    expected = _reference_embedding(_weights_or_skip(), mels)
    torch.testing.assert_close(encoder.embed_mels(mels), expected, atol=1e-5, rtol=1e-4)
    wave = torch.randn(2, 16_000) * 0.05
    assert encoder.mel(wave).shape == (2, 101, 40)
    embeds = encoder(wave)
    assert embeds.shape == (2, 256) and torch.allclose(embeds.norm(dim=1), torch.ones(2))


def test_same_speaker_is_closer_than_another_signal(encoder, real_dir):
    soundfile = pytest.importorskip("soundfile")
    audio, sr = soundfile.read(real_dir / "clean_freesound_33711.wav", dtype="float32")
    noise, _ = soundfile.read(real_dir / "noise_freesound_573577.flac", dtype="float32")
    down = SpeakerContrastiveLoss(input_sr=48_000).resample
    clips = torch.from_numpy(np.stack([audio[: 4 * sr], audio[5 * sr : 9 * sr], noise[: 4 * sr]]))
    with torch.no_grad():
        a, b, other = encoder(down(clips))
    assert (a @ b).item() > (a @ other).item() + 0.15  # measured 0.86 vs 0.58


def test_contrastive_loss_prefers_the_matching_pair_and_has_gradients():
    _weights_or_skip()
    loss = SpeakerContrastiveLoss(input_sr=16_000, temperature=0.1)
    t = torch.arange(16_000) / 16_000
    voice_a = sum(torch.sin(2 * math.pi * 110 * k * t) / k for k in range(1, 10))[None] * 0.1
    voice_b = sum(torch.sin(2 * math.pi * 230 * k * t) / k**2 for k in range(1, 4))[None] * 0.1
    clean = torch.cat((voice_a, voice_b))
    matched, swapped = loss(clean, clean), loss(clean.flip(0), clean)
    assert matched < swapped
    enhanced = (clean + 0.01 * torch.randn_like(clean)).requires_grad_()
    loss(enhanced, clean).backward()
    assert torch.isfinite(enhanced.grad).all() and enhanced.grad.abs().sum() > 0
    single = loss(clean[:1], clean[:1])
    assert single.abs() < 1e-5  # a batch of one: 1 - cos
    with pytest.raises(ValueError):
        loss(clean, clean[:1])


def test_missing_weights_is_a_config_error_with_the_pip_command(monkeypatch):
    absent = lambda package, relative, hint: package_file("dfn4_absent_" + package, relative, hint)  # noqa: E731
    monkeypatch.setattr("dfn4core.losses.speaker.package_file", absent)
    cfg = LossConfig(weights=LossWeights(speaker=1.0))
    with pytest.raises(ConfigError, match="pip install --no-deps resemblyzer"):
        GeneratorLoss(cfg, ModelConfig())
    with pytest.raises(ConfigError, match="not found"):
        SpeakerEncoder(weights_path="/no/such/pretrained.pt")
