"""The 48 -> 16 kHz decimator (pass band, stop band, alignment) and the package-file lookup."""

import math

import pytest
import torch

from dfn4core.errors import ConfigError
from dfn4core.losses.pretrained_input import Downsample, package_file, to_pretrained_sr


def _tone(hz: float, n: int = 48_000) -> torch.Tensor:
    return torch.sin(2 * math.pi * hz * torch.arange(n, dtype=torch.float64) / 48_000)[None].float()


def _level_db(x: torch.Tensor) -> float:
    core = x[:, 1_000:-1_000]  # away from the zero-padded edges
    return 10 * math.log10(core.double().pow(2).mean().item() / 0.5)


def test_pass_band_is_kept_and_time_aligned():
    down = Downsample(3)
    x = _tone(1_000)
    y = down(x)
    assert y.shape == (1, 16_000)
    assert abs(_level_db(y)) < 0.01
    torch.testing.assert_close(y[:, 1_000:-1_000], x[:, 3_000:-3_000:3], atol=1e-4, rtol=0)


@pytest.mark.parametrize(("hz", "max_db"), [(8_000, -70), (8_600, -88), (12_000, -90), (23_000, -90)])
def test_stop_band_is_removed_before_decimating(hz, max_db):
    assert _level_db(Downsample(3)(_tone(hz))) < max_db


def test_sample_rates():
    assert to_pretrained_sr(16_000)(torch.ones(1, 5)).shape == (1, 5)
    assert to_pretrained_sr(48_000).factor == 3
    with pytest.raises(ConfigError, match="16000"):
        to_pretrained_sr(44_100)
    with pytest.raises(ValueError):
        Downsample(0)


def test_missing_package_file_names_the_install_command():
    with pytest.raises(ConfigError, match="pip install nothing-here"):
        package_file("dfn4_no_such_package", "model.onnx", "pip install nothing-here")
    with pytest.raises(ConfigError):
        package_file("dfn4core", "no_such_file.onnx", "")
    assert package_file("dfn4core", "py.typed", "").name == "py.typed"
