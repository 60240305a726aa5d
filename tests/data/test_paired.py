"""Paired noisy/clean sets: name matching, unmatched listing, VoiceBank layout, aligned segments."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from testaudio import speech_like, write

from dfn4core.config import DspConfig
from dfn4core.data import DataConfig, PairedSource, SplitConfig, build_dataset
from dfn4core.data.paired import match_pairs
from dfn4core.errors import ConfigError

DSP = DspConfig()  # the model's signal chain: items at its rate


def make_pairs(noisy_dir, clean_dir, names, sr=16_000, seconds=0.6, clean_ext="wav"):
    for i, name in enumerate(names):
        clean = speech_like(seconds, sr, i)
        write(clean_dir / f"{name}.{clean_ext}", clean, sr, subtype="FLOAT" if clean_ext == "wav" else None)
        noisy = clean + 0.05 * np.random.default_rng(i).standard_normal(clean.size)
        write(noisy_dir / f"{name}.wav", noisy, sr, subtype="FLOAT")


def test_match_by_name_lists_unmatched_with_counts(tmp_path, caplog):
    make_pairs(tmp_path / "noisy", tmp_path / "clean", ["p1_001", "p1_002", "sub/p2_001"], clean_ext="flac")
    write(tmp_path / "noisy" / "only_noisy.wav", np.zeros(160), 16_000)
    for name in ("only_clean_a", "only_clean_b"):
        write(tmp_path / "clean" / f"{name}.wav", np.zeros(160), 16_000)
    with caplog.at_level(logging.WARNING, logger="dfn4core.data.paired"):
        pairs = match_pairs(tmp_path / "noisy", tmp_path / "clean")
    assert [(n.name, c.name) for n, c in pairs] == [(f"{k}.wav", f"{k}.flac") for k in ("p1_001", "p1_002", "p2_001")]
    assert "3 pair(s) matched" in caplog.text
    assert "1 noisy file(s) without a clean one [only_noisy]" in caplog.text
    assert "2 clean file(s) without a noisy one [only_clean_a, only_clean_b]" in caplog.text


def test_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        match_pairs(tmp_path / "noisy", tmp_path / "clean")


def test_voicebank_items_are_aligned_48k_segments(tmp_path):
    vb = tmp_path / "vb"
    noisy_dir, clean_dir = vb / "noisy_trainset_28spk_wav", vb / "clean_trainset_28spk_wav"
    make_pairs(noisy_dir, clean_dir, ["p226_001", "p226_002"], seconds=0.6)
    make_pairs(noisy_dir, clean_dir, ["p226_003"], seconds=0.2)  # shorter than a segment
    source = PairedSource(kind="voicebank", data_dir=vb)
    cfg = DataConfig(train=SplitConfig(paired=(source,)), segment_s=0.5, cache_dir=tmp_path / "cache")
    ds = build_dataset(cfg, "train", DSP)
    assert len(ds) == 3
    items = [ds[i] for i in range(3)]
    for item in items:
        assert all(v.shape == (24_000,) and v.dtype.is_floating_point for v in item.values())
        np.testing.assert_allclose(item["noise"], item["noisy"] - item["clean"], atol=1e-6)
        residual = (item["noisy"] - item["clean"])[item["clean"] != 0]
        assert 0.03 < residual.std() < 0.07  # the same samples of both files: only the added noise is left
    padded = [it for it in items if (it["clean"][-4800:] == 0).all()]
    assert len(padded) == 1  # the 0.2 s pair, zero-padded to 0.5 s


def test_folders_kind_with_unreadable_pair_skipped(tmp_path, caplog):
    make_pairs(tmp_path / "n", tmp_path / "c", ["a", "b"], sr=48_000)
    (tmp_path / "c" / "b.wav").write_bytes(b"garbage")
    source = PairedSource(kind="folders", noisy_dir=tmp_path / "n", clean_dir=tmp_path / "c")
    cfg = DataConfig(train=SplitConfig(paired=(source,)), segment_s=0.1)
    with caplog.at_level(logging.WARNING):
        ds = build_dataset(cfg, "train", DSP)
    assert len(ds) == 1 and "b.wav" in caplog.text
