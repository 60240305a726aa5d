"""DeepFilterNet HDF5 datasets: pcm/flac/vorbis decoding, resampling through the cache, clear errors."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from testaudio import speech_like

from dfn4core.config import DspConfig
from dfn4core.data import DataConfig, MixSource, SplitConfig, build_dataset, hdf5, make_loader
from dfn4core.data.sources import AudioRef, AudioStore, build_index
from dfn4core.errors import ConfigError

h5py = pytest.importorskip("h5py", reason="h5py not installed (pip install 'dfn4[hdf5]')")

HDF5_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dfn_hdf5"

DSP = DspConfig()  # the model's signal chain: files are opened and items made at its rate
SR = DSP.sr


@pytest.fixture
def real_hdf5():
    if not HDF5_DIR.is_dir():
        pytest.skip(f"DeepFilterNet HDF5 examples not present at {HDF5_DIR}")
    return HDF5_DIR


def make_h5(path, group, codec, sr, items: dict[str, np.ndarray]):
    """Writes a DeepFilterNet-style HDF5 file; items are (C, N) float arrays."""
    with h5py.File(path, "w") as f:
        f.attrs.update({"codec": codec, "sr": sr, "dtype": "int16", "max_freq": sr // 2, "db_name": path.name})
        g = f.create_group(group)
        for name, audio in items.items():
            if codec == "pcm":
                g.create_dataset(name, data=(audio * 32767).astype(np.int16))
            else:
                buf = io.BytesIO()
                sf.write(buf, audio.T, sr, format="FLAC" if codec == "flac" else "OGG")
                g.create_dataset(name, data=np.frombuffer(buf.getvalue(), dtype=np.uint8))
    return path


def test_real_pcm_speech(real_hdf5):
    refs = build_index([real_hdf5 / "clean.hdf5"], "speech", AudioStore(None, sr=SR))
    assert refs == (AudioRef(real_hdf5 / "clean.hdf5", "speech/assets_clean_freesound_33711.wav"),)
    audio = AudioStore(None, sr=SR).open(refs[0])  # pcm at 48 kHz: sliced straight from the file
    assert audio.frames == 508_591
    x = audio.read(100_000, 104_800)
    assert x.shape == (4800,) and x.dtype == np.float32 and 1e-3 < np.abs(x).max() <= 1


def test_real_flac_and_vorbis_noise_decode_alike(real_hdf5, tmp_path):
    store = AudioStore(tmp_path / "cache", sr=SR)
    decoded = {}
    for codec in ("flac", "vorbis"):
        refs = build_index([real_hdf5 / f"noise_{codec}.hdf5"], "noise", store)
        assert [r.key for r in refs] == [f"noise/assets_noise_freesound_{i}.wav" for i in (2530, 573577)]
        decoded[codec] = store.open(refs[1]).read(0, 236_983)
    assert decoded["flac"].shape == decoded["vorbis"].shape == (236_983,)  # the stored n_samples
    assert np.corrcoef(decoded["flac"], decoded["vorbis"])[0, 1] > 0.9  # vorbis is lossy


def test_missing_group_and_missing_h5py_are_config_errors(real_hdf5, monkeypatch):
    with pytest.raises(ConfigError, match="no 'rir' group"):
        build_index([real_hdf5 / "clean.hdf5"], "rir", AudioStore(None, sr=SR))
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ConfigError, match=r"pip install 'dfn4\[hdf5\]'"):
        build_index([real_hdf5 / "clean.hdf5"], "speech", AudioStore(None, sr=SR))


@pytest.mark.parametrize("codec", ["pcm", "flac", "vorbis"])
def test_generated_16k_file_is_resampled_and_cached(tmp_path, codec):
    stereo = np.stack([speech_like(0.5, 16_000, 0), speech_like(0.5, 16_000, 1)])
    path = make_h5(tmp_path / f"s_{codec}.hdf5", "speech", codec, 16_000, {"a.wav": stereo})
    store = AudioStore(tmp_path / "cache", channel="first", sr=SR)
    audio = store.open(build_index([path], "speech", store)[0])
    assert audio.frames == 24_000 and isinstance(audio.data, np.memmap)
    x = audio.read(0, 24_000)
    assert np.isfinite(x).all() and np.corrcoef(x[:-100], np.repeat(stereo[0], 3)[:-100])[0, 1] > 0.9


def test_pcm_scale():
    assert hdf5.pcm_scale(np.int16) == 1 / 32768 and hdf5.pcm_scale(np.float32) == 1.0


def test_hdf5_mix_dataset_is_identical_with_workers(real_hdf5, tmp_path):
    source = MixSource(speech=(real_hdf5 / "clean.hdf5",), noise=(real_hdf5 / "noise_vorbis.hdf5",))
    cfg = DataConfig(train=SplitConfig(mix=(source,), num_items=4), segment_s=0.5, cache_dir=tmp_path / "cache")
    ds = build_dataset(cfg, "train", DSP)
    first = ds[0]  # opens the HDF5 files in this process before the workers fork
    serial = next(iter(make_loader(ds, 4, 0, seed=0)))
    parallel = next(iter(make_loader(ds, 4, 2, seed=0)))
    assert all(torch.equal(serial[k], parallel[k]) for k in serial)
    assert any(torch.equal(first["noisy"], row) for row in serial["noisy"])
