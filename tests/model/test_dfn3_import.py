"""Warm start from DeepFilterNet3: its weights in a DFN4, with its GRUs, compute DFN3 itself."""

import dataclasses

import numpy as np
import pytest
import torch
from testaudio import make_noisy

from dfn4core.config import ModelConfig
from dfn4core.errors import CheckpointError, ConfigError
from dfn4core.model import dfn3 as dfn3_module
from dfn4core.model.dfn3_import import _tap_map, dfn3_grus, import_dfn3, with_dfn3_grus
from dfn4core.model.dfnet4 import DFN4
from dfn4core.train.warm_start import blocks_to_fit, distill_to_teacher, fit_temporal


@pytest.fixture(scope="module")
def files():
    try:
        return dfn3_module.read_archive(dfn3_module.find_archive())
    except CheckpointError as err:
        pytest.skip(f"DeepFilterNet3's weights are not installed: {err}")


@pytest.fixture(scope="module")
def official(files):
    return dfn3_module.DFN3(files)


def snr_db(ref: torch.Tensor, est: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).sum() / (est - ref).pow(2).sum()))


def test_full_dfn4_with_dfn3_grus_is_dfn3(files, official):
    torch.manual_seed(0)
    model = import_dfn3(DFN4(ModelConfig.full()), files)
    teacher = with_dfn3_grus(model, dfn3_grus(files))
    wave = torch.from_numpy(make_noisy(1.0, channels=2, seed=4)).float()
    with torch.no_grad():
        ref = official(wave).wave
        ours = teacher(wave).wave
    assert ref.abs().max() > 0.01
    assert snr_db(ref, ours) > 70  # float rounding only: every imported weight sits where it belongs
    # The student keeps its own (unfitted) Mamba blocks: not DFN3 yet.
    with torch.no_grad():
        assert snr_db(ref, model.eval()(wave).wave) < 20


def test_streaming_still_equals_offline_after_import(files):
    model = import_dfn3(DFN4(ModelConfig.full()), files).eval()
    wave = torch.from_numpy(make_noisy(0.2, seed=5)).float()
    with torch.no_grad():
        offline = model(wave).wave
        state, parts = model.init_state(1), []
        for hop in wave.split(480, dim=1):
            out, state = model.step(hop, state)
            parts.append(out)
    torch.testing.assert_close(torch.cat(parts, dim=1), offline, atol=1e-5, rtol=0)


def test_taps_land_on_the_same_frames():
    # DFN3's tap j filters frame t - 2 + j. Orders 3, 5, 7 sit at taps 0-2, 3-7 and 8-14 of the
    # coefficient channels; order O's tap i filters frame t - (O - 3) + i.
    pairs = _tap_map((3, 5, 7), lookahead=2)
    real = sorted((a // 2, b // 2) for a, b in pairs if a % 2 == 0)
    expected = [(2, 0), (3, 1), (4, 2)] + [(j, 3 + j) for j in range(5)] + [(j, 8 + j + 2) for j in range(5)]
    assert real == sorted(expected)
    assert sorted((a, b) for a, b in pairs if a % 2) == sorted((2 * j + 1, 2 * k + 1) for j, k in expected)


def test_layouts_that_cannot_take_dfn3_are_refused(files):
    with pytest.raises(ConfigError, match="conv_ch 64"):
        import_dfn3(DFN4(ModelConfig.tiny()), files)
    with pytest.raises(ConfigError, match="order 5"):
        import_dfn3(DFN4(dataclasses.replace(ModelConfig.full(), df_orders=(3, 7))), files)


def test_fitting_brings_the_mamba_blocks_towards_the_grus(files):
    torch.manual_seed(0)
    cfg = dataclasses.replace(ModelConfig.lite(), emb_dim=64, df_orders=(5,))
    student = import_dfn3(DFN4(cfg), files)
    teacher_cfg = dataclasses.replace(ModelConfig.full(), df_orders=cfg.df_orders)
    teacher = with_dfn3_grus(import_dfn3(DFN4(teacher_cfg), files), dfn3_grus(files))
    assert set(blocks_to_fit(student)) == {"encoder.temporal", "erb_decoder.temporal", "df_decoder"}
    wave = torch.from_numpy(make_noisy(0.2, channels=2, seed=6)).float()
    history = []
    fit_temporal(student, teacher, iter([wave] * 15), steps=15, lr=5e-3, on_step=lambda s, l: history.append(l))
    first, last = history[0], history[-1]
    assert all(np.isfinite(v) for v in last.values())
    assert all(last[b] < first[b] for b in first)
    assert sum(last.values()) < 0.8 * sum(first.values())
    # The imported pathway's BatchNorm kept DFN3's statistics (fitting runs the model in eval mode).
    assert torch.all(student.df_decoder.pathway.norm.running_mean == 0)
    # End to end, the student's output moves towards the teacher's.
    terms = []
    distill_to_teacher(student, teacher, iter([wave] * 10), steps=10, lr=1e-3, on_step=lambda s, t: terms.append(t))
    assert set(terms[0]) == {"distill_spec", "distill_erb_gains", "distill_df"}
    assert sum(terms[-1].values()) < sum(terms[0].values())
    assert torch.all(student.df_decoder.pathway.norm.running_mean == 0)


def test_gru_temporal_blocks_take_dfn3_whole(files, official):
    """temporal="gru" with DFN3's sizes: every DFN3 weight loads and the DFN4 is DFN3."""
    model = import_dfn3(DFN4(dataclasses.replace(ModelConfig.full(), temporal="gru")), files).eval()
    wave = torch.from_numpy(make_noisy(0.5, seed=8)).float()
    with torch.no_grad():
        assert snr_db(official(wave).wave, model(wave).wave) > 70
