import pytest
import torch
from stepping import step_through

from dfn4core import DFN4, ModelConfig


@pytest.mark.parametrize("variant", ["tiny", "lite", "full"])
def test_forward_equalsstep_through(variant):
    model = DFN4(getattr(ModelConfig, variant)()).eval()
    wave = 0.1 * torch.randn(2, 480 * 12)
    with torch.no_grad():
        offline = model(wave).wave
        streamed = step_through(model, wave)
    torch.testing.assert_close(streamed, offline, atol=1e-5, rtol=0)


def test_gru_variant_forward_equalsstep_through():
    model = DFN4(ModelConfig(**{**ModelConfig.tiny().to_dict(), "temporal": "gru"})).eval()
    wave = 0.1 * torch.randn(1, 480 * 8)
    with torch.no_grad():
        torch.testing.assert_close(step_through(model, wave), model(wave).wave, atol=1e-5, rtol=0)
    assert not any("A_log" in n for n, _ in model.named_parameters())


def test_chunks_carry_state_exactly(tiny_model):
    wave = 0.1 * torch.randn(1, 480 * 20)
    with torch.no_grad():
        whole, _ = tiny_model.process(wave, tiny_model.init_state(1))
        first, state = tiny_model.process(wave[:, : 480 * 7], tiny_model.init_state(1))
        second, _ = tiny_model.process(wave[:, 480 * 7 :], state)
    torch.testing.assert_close(torch.cat((first.wave, second.wave), 1), whole.wave, atol=1e-5, rtol=0)


def test_output_shapes(tiny_model):
    cfg = tiny_model.cfg
    out = tiny_model(0.1 * torch.randn(3, 480 * 5))
    assert out.wave.shape == (3, 480 * 5)
    assert out.spec.shape == (3, 5, cfg.dsp.n_freqs, 2)
    assert out.erb_gains.shape == (3, 5, cfg.dsp.nb_erb)
    assert out.lsnr_db.shape == (3, 5) and out.emb.shape == (3, 5, cfg.emb_width)
    assert out.df_weights.shape == (3, 5, len(cfg.df_orders))
    torch.testing.assert_close(out.df_weights.sum(-1), torch.ones(3, 5))
    assert ((out.erb_gains >= 0) & (out.erb_gains <= 1)).all()
    assert (out.lsnr_db >= cfg.lsnr_min_db).all() and (out.lsnr_db <= cfg.lsnr_max_db).all()


def test_unit_gains_and_identity_filter_pass_the_input_through_delayed():
    """With all gains 1 and the DF reduced to the tap of frame t, the model is STFT -> ISTFT."""
    model = DFN4(ModelConfig.tiny()).eval()
    with torch.no_grad():
        model.erb_decoder.out.weight.zero_()
        model.erb_decoder.out.bias.fill_(30.0)  # sigmoid -> 1
        model.df_decoder.out.weight.zero_()
        bias = torch.zeros(2 * sum(model.cfg.df_orders))
        lookahead, offset = model.cfg.dsp.lookahead, 0
        for order in model.cfg.df_orders:
            bias[2 * (offset + order - 1 - lookahead)] = 30.0  # real part of tap t: tanh -> 1
            offset += order
        model.df_decoder.out.bias.copy_(bias.repeat(model.cfg.dsp.nb_df))
        model.df_decoder.pathway.norm.weight.zero_()  # the conv pathway adds ReLU(0) = 0
        model.df_decoder.pathway.norm.bias.zero_()
        wave = 0.1 * torch.randn(1, 480 * 20)
        out = model(wave).wave
    delay = model.cfg.dsp.delay_size
    torch.testing.assert_close(out[:, delay:], wave[:, :-delay], atol=1e-5, rtol=0)


def test_gradients_reach_every_parameter(tiny_model):
    tiny_model.train()
    out = tiny_model(0.1 * torch.randn(2, 480 * 6))
    (out.spec.pow(2).mean() + out.lsnr_db.mean()).backward()
    missing = [n for n, p in tiny_model.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in tiny_model.parameters())


def test_silence_stays_silent_and_finite(tiny_model):
    with torch.no_grad():
        out = tiny_model(torch.zeros(1, 480 * 10))
    assert torch.isfinite(out.wave).all() and out.wave.abs().max() < 1e-6


def test_budgets():
    full = sum(p.numel() for p in DFN4(ModelConfig.full()).parameters())
    lite = sum(p.numel() for p in DFN4(ModelConfig.lite()).parameters())
    assert full <= 3_000_000
    assert lite <= 0.5 * full


def test_state_names_are_stable_and_flat(tiny_model):
    state = tiny_model.init_state(2)
    names = state.names()
    assert names == tiny_model.init_state(1).names()
    assert "stft.analysis" in names and "spec_history" in names
    assert any(n.endswith(".ssm") for n in names) and any(n.endswith(".conv") for n in names)
    assert all(t.shape[0] == 2 for t in state.flatten()) and state.batch_size == 2


def test_rejects_partial_hops(tiny_model):
    with pytest.raises(ValueError, match="480"):
        tiny_model(torch.zeros(1, 500))
