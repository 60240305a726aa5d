"""Audio index and 48 kHz reads: folders, manifests, cache, unreadable files, channel policy."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
from testaudio import speech_like, write

from dfn4core.config import DspConfig
from dfn4core.data import sources
from dfn4core.data.sources import AudioRef, AudioStore, build_index, read_manifest
from dfn4core.errors import AudioError, ConfigError
from dfn4core.io import iter_blocks, read_audio, resample

SR = DspConfig().sr  # every file is opened at the model's rate


def test_folder_index_is_recursive_sorted_and_audio_only(corpus):
    (corpus["speech"] / "notes.txt").write_text("not audio")
    (corpus["speech"] / ".hidden.wav").write_bytes(b"")
    refs = build_index([corpus["speech"]], "speech", AudioStore(None, sr=SR))
    assert [r.path.relative_to(corpus["speech"]).as_posix() for r in refs] == ["a.wav", "c.ogg", "sub/b.flac"]


@pytest.mark.parametrize(
    ("name", "sr", "seconds"), [("a.wav", 16_000, 1.0), ("sub/b.flac", 48_000, 1.2), ("c.ogg", 44_100, 0.8)]
)
def test_any_rate_and_format_reads_as_mono_48k(corpus, name, sr, seconds):
    audio = AudioStore(corpus["cache"], sr=SR).open(AudioRef(corpus["speech"] / name))
    assert audio.frames == round(seconds * sr) * 48_000 // sr
    x = audio.read(100, 4900)
    assert x.shape == (4800,) and x.dtype == np.float32 and np.isfinite(x).all()


def test_manifests_csv_and_jsonl_resolve_against_their_folder(tmp_path, corpus):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "s.csv").write_text(f"path,speaker\n../corpus/speech/a.wav,x\n{corpus['speech'] / 'c.ogg'},y\n")
    (lists / "s.jsonl").write_text(json.dumps({"path": "../corpus/speech/sub/b.flac", "text": "hi"}) + "\n\n")
    assert read_manifest(lists / "s.csv") == [lists / "../corpus/speech/a.wav", corpus["speech"] / "c.ogg"]
    refs = build_index([lists / "s.csv", lists / "s.jsonl"], "speech", AudioStore(None, sr=SR))
    assert [r.path.name for r in refs] == ["a.wav", "c.ogg", "b.flac"]


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("m.csv", "file\nx.wav\n", "'path' column"),
        ("m.jsonl", '{"file": 1}\n', ":1: each line"),
        ("m.jsonl", "{oops\n", ":1: invalid JSON"),
    ],
)
def test_bad_manifest_is_a_config_error(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=match):
        build_index([tmp_path / name], "noise", AudioStore(None, sr=SR))


def test_resampled_audio_is_cached_once_and_refreshed_when_the_file_changes(tmp_path, monkeypatch):
    decoded = []

    def counting_iter_blocks(path, block_frames):
        decoded.append(path)
        return iter_blocks(path, block_frames)

    monkeypatch.setattr(sources, "iter_blocks", counting_iter_blocks)
    path = write(tmp_path / "x.wav", speech_like(0.5, 16_000), 16_000)
    first = AudioStore(tmp_path / "cache", sr=SR).open(AudioRef(path)).read(0, 24_000)
    again = AudioStore(tmp_path / "cache", sr=SR).open(AudioRef(path)).read(0, 24_000)  # a new store: only the disk cache
    assert decoded == [path] and np.array_equal(first, again)
    assert isinstance(AudioStore(tmp_path / "cache", sr=SR).open(AudioRef(path)).data, np.memmap)
    write(path, 0.5 * speech_like(0.5, 16_000), 16_000)
    os.utime(path, ns=(1, 1))  # a new mtime even on coarse-clock filesystems
    changed = AudioStore(tmp_path / "cache", sr=SR).open(AudioRef(path)).read(0, 24_000)
    assert len(decoded) == 2 and np.allclose(changed, 0.5 * first, atol=1e-4)


@pytest.mark.parametrize(("sr", "frames"), [(44_100, 44_101), (16_000, 70_001), (96_000, 200_001)])
def test_streamed_cache_equals_one_shot_resample(tmp_path, monkeypatch, sr, frames):
    monkeypatch.setattr(sources, "CACHE_BLOCK", 10_000)
    stereo = np.stack([speech_like(frames / sr, sr, 0), speech_like(frames / sr, sr, 1)])[:, :frames]
    path = write(tmp_path / "x.flac", stereo, sr, subtype="PCM_24")
    expected = resample(read_audio(path)[0], sr, 48_000)
    for cache in (tmp_path / "cache", None):
        audio = AudioStore(cache, channel="first", sr=SR).open(AudioRef(path))
        assert audio.frames == expected.shape[1]
        np.testing.assert_allclose(audio.read(0, audio.frames), expected[0], atol=1e-6)


def test_unwritable_cache_falls_back_to_memory(tmp_path, caplog):
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    path = write(tmp_path / "x.ogg", speech_like(0.2, 22_050), 22_050)
    with caplog.at_level(logging.WARNING):
        audio = AudioStore(tmp_path / "cache", sr=SR).open(AudioRef(path))
    assert audio.frames == 9_600 and np.isfinite(audio.read(0, 9_600)).all()
    assert "cannot write cache entry" in caplog.text


def test_48k_wav_is_read_in_place_without_a_cache_entry(tmp_path):
    path = write(tmp_path / "x.wav", speech_like(0.5), 48_000, subtype="FLOAT")
    audio = AudioStore(tmp_path / "cache", sr=SR).open(AudioRef(path))
    np.testing.assert_array_equal(audio.read(1000, 2000), speech_like(0.5)[1000:2000])
    assert not (tmp_path / "cache").exists()


def test_unreadable_file_is_logged_and_skipped(corpus, caplog):
    (corpus["noise"] / "broken.wav").write_bytes(b"RIFF not really a wav file")
    with caplog.at_level(logging.WARNING, logger="dfn4core.data.sources"):
        refs = build_index([corpus["noise"]], "noise", AudioStore(None, sr=SR))
    assert [r.path.name for r in refs] == ["n1.wav", "n2.flac"]
    assert "broken.wav" in caplog.text and "skipped 1 unreadable" in caplog.text


def test_unreadable_at_read_time_raises_every_time_but_logs_once(tmp_path, caplog):
    store = AudioStore(None, sr=SR)
    ref = AudioRef(tmp_path / "gone.wav")
    with caplog.at_level(logging.WARNING, logger="dfn4core.data.sources"):
        for _ in range(2):
            with pytest.raises(AudioError):
                store.open(ref)
    assert caplog.text.count("gone.wav") == 1


def test_empty_index_and_missing_entry_are_config_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "bad.flac").write_bytes(b"fLaC?")
    with pytest.raises(ConfigError, match="no readable noise audio"):
        build_index([tmp_path / "empty"], "noise", AudioStore(None, sr=SR))
    with pytest.raises(ConfigError, match="does not exist"):
        build_index([tmp_path / "missing"], "speech", AudioStore(None, sr=SR))


@pytest.mark.parametrize(("channel", "expected"), [("downmix", 0.5), ("first", 1.0), (1, 0.0), (0, 1.0)])
def test_channel_policy(tmp_path, channel, expected):
    stereo = np.stack([np.full(4800, 0.5), np.zeros(4800)]).astype(np.float32)
    path = write(tmp_path / "s.wav", stereo * 2, 48_000, subtype="FLOAT")
    x = AudioStore(None, channel, sr=SR).open(AudioRef(path)).read(0, 4800)
    np.testing.assert_allclose(x, expected)


def test_channel_index_beyond_a_file_skips_it_but_mono_files_pass(tmp_path, caplog):
    write(tmp_path / "three.wav", np.zeros((3, 480)) + 0.1, 48_000)
    write(tmp_path / "mono.wav", np.zeros(480) + 0.1, 48_000)
    with caplog.at_level(logging.WARNING):
        refs = build_index([tmp_path], "noise", AudioStore(None, channel=5, sr=SR))
    assert [r.path.name for r in refs] == ["mono.wav"] and "channel 5" in caplog.text
