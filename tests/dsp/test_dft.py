"""FactoredRealDft (the DFT of the ONNX graph) against torch.fft, for even, odd and prime sizes."""

import pytest
import torch

from dfn4core.dsp.dft import FactoredRealDft, split_size


@pytest.mark.parametrize("size", [960, 480, 96, 63, 17, 2])
def test_forward_is_rfft_and_inverse_is_irfft(size):
    dft = FactoredRealDft(size).double()
    x = torch.randn(2, 3, size, dtype=torch.float64)
    spec = torch.randn(2, 3, size // 2 + 1, 2, dtype=torch.float64)
    scale = size**0.5  # the float32 matrices' rounding grows with the transform's gain
    assert torch.allclose(dft(x), torch.view_as_real(torch.fft.rfft(x)), atol=1e-6 * scale)
    assert torch.allclose(dft.inverse(spec), torch.fft.irfft(torch.view_as_complex(spec), n=size), atol=1e-6)
    assert torch.allclose(dft.inverse(dft(x)), x, atol=1e-6)


def test_split_is_balanced_and_exact():
    assert split_size(960) == (32, 30)
    assert split_size(17) == (17, 1)  # a prime: one stage, a plain DFT
    for n in range(1, 200):
        n1, n2 = split_size(n)
        assert n1 * n2 == n


def test_960_needs_far_fewer_weights_than_a_dense_dft():
    dft = FactoredRealDft(960)
    weights = sum(b.numel() for b in dft.buffers())
    assert weights < 960 * 962 / 5
