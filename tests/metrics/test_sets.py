"""Matching noisy and clean files: VoiceBank-DEMAND, DNS fileid_N, pairs, blind; unmatched files are listed."""

from pathlib import Path

import pytest

from dfn4core.errors import ConfigError
from dfn4core.metrics.sets import Item, Unmatched, index_folder, load_set


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"RIFF")  # matching looks at names only


def test_voicebank_pairs_by_name_and_lists_the_rest(tmp_path, caplog):
    touch(tmp_path / "clean_testset_wav", "p232_001.wav", "p232_002.wav", "p257_001.wav")
    touch(tmp_path / "noisy_testset_wav", "p232_001.wav", "p232_002.wav", "p232_003.wav", ".hidden.wav", "notes.txt")
    s = load_set("voicebank", data_dir=tmp_path)
    assert [i.key for i in s.items] == ["p232_001", "p232_002"]
    assert s.items[0] == Item(
        "p232_001", tmp_path / "noisy_testset_wav/p232_001.wav", tmp_path / "clean_testset_wav/p232_001.wav"
    )
    assert [(u.path.name, u.reason.split(" with ")[0]) for u in s.unmatched] == [
        ("p232_003.wav", "no clean reference"),
        ("p257_001.wav", "no noisy file"),
    ]
    assert "2 pairs found, the test set has 824" in caplog.text


def test_voicebank_16k_copy_and_missing_layout(tmp_path):
    touch(tmp_path / "clean_testset_wav_16k", "p232_001.wav")
    touch(tmp_path / "noisy_testset_wav_16k", "p232_001.wav")
    assert len(load_set("voicebank", data_dir=tmp_path).items) == 1
    with pytest.raises(ConfigError, match="no clean_testset_wav/ or clean_testset_wav_16k/ folder"):
        load_set("voicebank", data_dir=tmp_path / "elsewhere")


@pytest.mark.parametrize("data_dir", [None, "elsewhere"])
def test_voicebank_without_the_data_says_where_it_is_published_and_how_to_lay_it_out(tmp_path, data_dir):
    with pytest.raises(ConfigError) as err:
        load_set("voicebank", data_dir=None if data_dir is None else tmp_path / data_dir)
    message = str(err.value)
    assert "University of Edinburgh DataShare" in message and "Valentini-Botinhao, 2017" in message
    assert "Noisy speech database for training speech enhancement algorithms and TTS models" in message
    assert "DIR/clean_testset_wav/ and DIR/noisy_testset_wav/" in message


def test_dns_matches_by_fileid(tmp_path):
    touch(
        tmp_path / "noisy",
        "book_00001_snr15_tl-25_fileid_7.wav",
        "door_snr0_fileid_12.wav",
        "no_id.wav",
        "x_fileid_12.wav",
    )
    touch(tmp_path / "clean", "clean_fileid_7.wav", "clean_fileid_12.wav")
    s = load_set("dns", data_dir=tmp_path)
    assert [(i.key, i.noisy.name, i.clean.name) for i in s.items] == [
        ("fileid_12", "door_snr0_fileid_12.wav", "clean_fileid_12.wav"),
        ("fileid_7", "book_00001_snr15_tl-25_fileid_7.wav", "clean_fileid_7.wav"),
    ]
    assert s.unmatched == (
        Unmatched(tmp_path / "noisy/no_id.wav", "no fileid_N in its name"),
        Unmatched(tmp_path / "noisy/x_fileid_12.wav", "same key 'fileid_12' as door_snr0_fileid_12.wav"),
    )


def test_pairs_and_blind(tmp_path):
    touch(tmp_path / "n", "a.wav", "b.flac")
    touch(tmp_path / "c", "a.wav", "b.wav")
    assert [i.key for i in load_set("pairs", noisy_dir=tmp_path / "n", clean_dir=tmp_path / "c").items] == ["a", "b"]
    blind = load_set("blind", noisy_dir=tmp_path / "n")
    assert not blind.has_reference and [i.clean for i in blind.items] == [None, None]
    with pytest.raises(ConfigError, match="no noisy file in .* has a clean reference"):
        load_set("pairs", noisy_dir=tmp_path / "n", clean_dir=tmp_path / "n" / "..")
    with pytest.raises(ConfigError, match="no audio files"):
        load_set("blind", noisy_dir=tmp_path)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("librispeech", {}, "unknown set 'librispeech'"),
        ("pairs", {"noisy_dir": "n"}, "--set pairs takes --noisy-dir and --clean-dir, and no other folder"),
        ("blind", {"noisy_dir": "n", "data_dir": "d"}, "--set blind takes --noisy-dir, and no other folder"),
    ],
)
def test_wrong_folder_arguments(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load_set(name, **kwargs)


def test_index_folder_needs_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        index_folder(tmp_path / "missing")
