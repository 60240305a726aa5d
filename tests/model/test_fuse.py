import dataclasses

import pytest
import torch
from stepping import step_through
from torch import nn

from dfn4core import DFN4, ModelConfig
from dfn4core.model.fuse import FusedConvBlock, fuse_conv_block, fuse_for_inference
from dfn4core.model.hybrid import WaveformEncoder
from dfn4core.model.layers import ConvBlock, ConvTransposeBlock


def _trained_looking(model: DFN4) -> DFN4:
    """Random norm statistics and affine values, and a live attention output (zero at init), so
    that folding the norms and every encoder view change the output."""
    torch.manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
        if model.cfg.views:
            model.encoder.attention.out.weight.normal_(0, 0.05)
    return model.eval()


@pytest.mark.parametrize("variant, temporal", [("tiny", "mamba"), ("tiny", "gru"), ("lite", "mamba")])
def test_fused_model_gives_the_same_output_offline_and_streaming(variant, temporal):
    model = _trained_looking(DFN4(dataclasses.replace(ModelConfig.variant(variant), temporal=temporal)))
    fused = fuse_for_inference(model)
    wave = 0.1 * torch.randn(2, 480 * 40)  # long enough for the convs' long-input path (CausalConv2d)
    with torch.no_grad():
        expected = model(wave).wave
        torch.testing.assert_close(fused(wave).wave, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(step_through(fused, wave), expected, atol=1e-5, rtol=0)
    assert not any(isinstance(m, (ConvBlock, ConvTransposeBlock, nn.BatchNorm2d)) for m in fused.modules())
    assert any(isinstance(m, ConvBlock) for m in model.modules())  # the original is left as it was


def test_fused_model_keeps_the_state_layout():
    model = _trained_looking(DFN4(ModelConfig.tiny()))
    fused = fuse_for_inference(model)
    original, new = model.init_state(1).tensors, fused.init_state(1).tensors
    assert {k: v.shape for k, v in new.items()} == {k: v.shape for k, v in original.items()}


def test_grouped_convs_merge_with_their_1x1_conv_and_depthwise_ones_do_not():
    model = _trained_looking(DFN4(ModelConfig.lite()))
    fused = fuse_for_inference(model)
    df_conv0 = fused.encoder.spectral.df_conv0  # 2 -> 64 in 2 groups: fewer multiply-adds merged
    assert df_conv0.point is None and df_conv0.conv.conv.groups == 1
    pathway = fused.df_decoder.pathway  # 64 -> 16 in 2 groups of 32 channels: a slow grouped kernel
    assert pathway.point is None and pathway.conv.conv.groups == 1
    depthwise = fused.encoder.spectral.df_conv1  # depthwise, then 64 x 64: kept apart
    assert depthwise.point is not None and depthwise.conv.conv.groups == model.cfg.conv_ch


@pytest.mark.parametrize("steps", [7, 40])  # a streaming hop, a long input (CausalConv2d)
@pytest.mark.parametrize("kernel, groups", [((3, 3), None), ((5, 1), 2), ((1, 3), None), ((1, 1), None)])
def test_each_fused_block_equals_the_block(kernel, groups, steps):
    torch.manual_seed(0)
    in_ch, out_ch = (2, 16) if kernel == (3, 3) else (16, 6 if groups else 16)
    block = ConvBlock(in_ch, out_ch, kernel, groups=groups)
    with torch.no_grad():
        block.norm.running_mean.normal_()
        block.norm.running_var.uniform_(0.5, 2)
        block.norm.weight.uniform_(0.5, 1.5)
    block.eval()
    x = torch.randn(1, in_ch, steps, 12)
    state = block.init_state(1, 12)
    fused = fuse_conv_block(block)
    with torch.no_grad():
        torch.testing.assert_close(fused(x, fused.init_state(1, 12))[0], block(x, state)[0], atol=1e-5, rtol=1e-5)


def test_a_fused_model_cannot_be_trained_and_is_not_fused_twice():
    fused = fuse_for_inference(DFN4(ModelConfig.tiny()))
    with pytest.raises(RuntimeError, match="inference only"):
        fused.train()
    fused.eval()  # eval mode stays possible (exporters and Enhancer call it)
    assert fuse_for_inference(fused) is fused
    assert isinstance(fused.encoder.spectral.erb_conv0, FusedConvBlock)


def test_waveform_encoder_over_many_frames_equals_frame_by_frame():
    """The shared-position path (convs over the signal) against one conv per frame."""
    torch.manual_seed(0)
    cfg = ModelConfig.tiny()
    encoder = WaveformEncoder(cfg).eval()
    assert encoder.hop_positions is not None  # 480 / 16 = 30 positions per hop: the shared path runs
    hop, n = cfg.dsp.hop_size, cfg.dsp.fft_size
    signal = torch.randn(2, hop * 9 + n - hop)
    frames = signal.unfold(1, n, hop)  # 2, 9, N: consecutive frames, as the STFT cuts them
    with torch.no_grad():
        together = encoder(frames)
        one_by_one = torch.cat([encoder(frames[:, t : t + 1]) for t in range(frames.shape[1])], dim=1)
    torch.testing.assert_close(together, one_by_one, atol=1e-5, rtol=1e-5)


def test_fused_grus_hold_their_weights_transposed_in_memory():
    model = _trained_looking(DFN4(dataclasses.replace(ModelConfig.tiny(), temporal="gru")))
    fused = fuse_for_inference(model)
    originals = dict(model.named_modules())
    grus = [(originals[name], m) for name, m in fused.named_modules() if isinstance(m, nn.GRU)]
    assert grus
    for original, relaid in grus:
        assert original.weight_hh_l0.is_contiguous()  # the original is left as it was
        assert relaid.weight_hh_l0.t().is_contiguous() and relaid.weight_ih_l0.t().is_contiguous()
        torch.testing.assert_close(relaid.weight_hh_l0, original.weight_hh_l0, atol=0, rtol=0)
    # that the relaid GRUs compute the same output: test_fused_model_gives_the_same_output_offline_and_streaming
