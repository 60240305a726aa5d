import math

import torch

from dfn4core.config import DspConfig
from dfn4core.dsp.features import Features, ema, power
from dfn4core.dsp.stft import Stft


def _spec(x: torch.Tensor) -> torch.Tensor:
    stft = Stft()
    spec, _, _ = stft.analysis(x, torch.zeros(x.shape[0], 480))
    return spec


def test_ema_matches_recursion_across_blocks():
    x, state, alpha = torch.randn(2, 300, 5), torch.randn(2, 5), 0.97
    out, last = ema(x, state, alpha)
    m, ref = state, []
    for t in range(300):
        m = alpha * m + (1 - alpha) * x[:, t]
        ref.append(m)
    torch.testing.assert_close(out, torch.stack(ref, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(last, ref[-1], atol=1e-5, rtol=0)


def test_power_is_the_squared_magnitude_eager_and_traced():
    z = torch.randn(3, 7, 2)
    expected = torch.view_as_complex(z).abs().square()
    torch.testing.assert_close(power(z), expected)
    traced = torch.jit.trace(power, z)
    assert any(node.kind() == "aten::sum" for node in traced.graph.nodes())  # the traced form
    torch.testing.assert_close(traced(z), expected)


def test_frame_by_frame_equals_whole():
    feats = Features(DspConfig())
    spec = _spec(0.1 * torch.randn(2, 480 * 150))
    whole = feats(spec, feats.init_state(2))
    state, parts = feats.init_state(2), []
    for t in range(spec.shape[1]):
        *out, state = feats(spec[:, t : t + 1], state)
        parts.append(out)
    for i in range(3):
        torch.testing.assert_close(torch.cat([p[i] for p in parts], dim=2), whole[i], atol=1e-5, rtol=0)
    for name in state:
        torch.testing.assert_close(state[name], whole[3][name], atol=1e-4, rtol=1e-5)


def test_without_phase_the_other_features_and_their_state_are_the_same():
    """A model without the phase view (`views = False`) neither computes nor carries the phase."""
    with_phase, without = Features(DspConfig()), Features(DspConfig(), phase=False)
    spec = _spec(0.1 * torch.randn(2, 480 * 12))
    erb, df, phase, state = with_phase(spec, with_phase.init_state(2))
    erb_only, df_only, none, state_only = without(spec, without.init_state(2))
    assert none is None and phase is not None
    assert set(without.init_state(2)) == set(state_only) == set(state) - {"prev_df"}
    torch.testing.assert_close(erb_only, erb, atol=0, rtol=0)
    torch.testing.assert_close(df_only, df, atol=0, rtol=0)
    for name in state_only:
        torch.testing.assert_close(state_only[name], state[name], atol=0, rtol=0)


def test_shapes_and_ranges():
    feats = Features(DspConfig())
    erb, df, phase, _ = feats(_spec(0.1 * torch.randn(1, 480 * 20)), feats.init_state(1))
    assert erb.shape == (1, 1, 20, 32) and df.shape == (1, 2, 20, 96) and phase.shape == (1, 4, 20, 96)
    # Each phase feature is a unit phasor (cos, sin) wherever the signal has energy.
    norms = torch.stack((phase[:, 0] ** 2 + phase[:, 1] ** 2, phase[:, 2] ** 2 + phase[:, 3] ** 2))[:, :, 1:]
    assert norms.max() <= 1 + 1e-5
    assert ((norms - 1).abs() < 1e-3).float().mean() > 0.99


def test_erb_feature_is_level_invariant_after_the_mean_settles():
    feats = Features(DspConfig())
    x = 0.1 * torch.randn(1, 480 * 1500)
    quiet, *_ = feats(_spec(x), feats.init_state(1))
    loud, *_ = feats(_spec(10 * x), feats.init_state(1))
    # 20 dB louder shifts the dB power by 20 dB; the running mean removes it with tau = 1 s.
    torch.testing.assert_close(loud[..., -50:, :], quiet[..., -50:, :], atol=1e-3, rtol=0)


def test_instantaneous_frequency_of_a_bin_centred_sine_is_zero_phase():
    feats = Features(DspConfig())
    k = 20
    x = torch.sin(2 * math.pi * k * 50 * torch.arange(480 * 10) / 48_000)[None]
    _, _, phase, _ = feats(_spec(x), feats.init_state(1))
    # After demodulation a sine on bin k advances by exactly the bin's own phase step: IF = (1, 0).
    torch.testing.assert_close(phase[0, :2, 3:, k], torch.tensor([[1.0], [0.0]]).expand(2, 7), atol=1e-4, rtol=0)


def test_silence_gives_finite_features():
    feats = Features(DspConfig())
    out = feats(_spec(torch.zeros(1, 480 * 5)), feats.init_state(1))
    assert all(torch.isfinite(t).all() for t in out[:3])


def test_long_digital_silence_never_turns_into_nan():
    """The running magnitude mean underflows after ~94 s of zeros; features must stay finite after."""
    feats = Features(DspConfig())
    silence = torch.zeros(1, 10_000, 481, 2)
    _, _, _, state = feats(silence, feats.init_state(1))
    assert (state["df_mean"] == 0).any()  # the underflow really happened
    erb, df, phase, _ = feats(_spec(0.1 * torch.randn(1, 480 * 20)), state)
    assert all(torch.isfinite(t).all() for t in (erb, df, phase))


def test_traced_frame_equals_eager():
    """The one-frame graph a streaming export traces gives the eager features and state."""
    feats = Features(DspConfig())
    spec = _spec(0.1 * torch.randn(1, 480 * 3))[:, -1:]
    state = feats.init_state(1)
    state["prev_df"] = torch.randn(1, 96, 2)
    names = list(state)

    def one_frame(spec, *values):
        erb, df, phase, new = feats(spec, dict(zip(names, values)))
        return erb, df, phase, *new.values()

    expected = one_frame(spec, *state.values())
    traced = torch.jit.trace(one_frame, (spec, *state.values()))
    for got, want in zip(traced(spec, *state.values()), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
