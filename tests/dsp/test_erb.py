import pytest
import torch

from dfn4core.dsp.erb import erb_matrices, erb_rate_to_hz, erb_widths, hz_to_erb_rate


def test_default_bands_cover_every_bin_once():
    widths = erb_widths(48_000, 960, 32, 2)
    assert len(widths) == 32 and sum(widths) == 481 and min(widths) >= 2
    average, expand = erb_matrices(widths)
    torch.testing.assert_close(expand.sum(0), torch.ones(481))  # each bin in exactly one band
    torch.testing.assert_close(average.sum(0), torch.ones(32))  # band average of ones is one


def test_bands_widen_with_frequency():
    widths = erb_widths(48_000, 960, 32, 2)
    assert widths == sorted(widths)
    assert widths[-1] > 10 * widths[0]


@pytest.mark.parametrize("sr,fft,bands,min_bins", [(16_000, 320, 32, 2), (48_000, 960, 16, 4), (48_000, 960, 64, 3)])
def test_other_layouts_are_valid(sr, fft, bands, min_bins):
    widths = erb_widths(sr, fft, bands, min_bins)
    assert len(widths) == bands and sum(widths) == fft // 2 + 1 and min(widths) >= min_bins


def test_erb_scale_round_trip():
    for f in (0.0, 100.0, 1000.0, 24_000.0):
        assert abs(erb_rate_to_hz(hz_to_erb_rate(f)) - f) < 1e-6


def test_impossible_layout_is_refused():
    with pytest.raises(ValueError, match="do not fit"):
        erb_widths(48_000, 960, 250, 2)
