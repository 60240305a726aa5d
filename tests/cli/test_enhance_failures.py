"""`dfn4 enhance` against bad input and interruptions (issue 13): exit codes, one-line messages, and every
file that existed before keeps its bytes."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from testaudio import make_noisy
from typer.testing import CliRunner

from dfn4cli.main import INTERRUPTED_EXIT, app
from dfn4core import DFN4, ModelConfig, files, save_model
from dfn4core.io import audio_info, write_audio

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(DFN4(ModelConfig.tiny()).eval(), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def run(tiny_ckpt: Path, *args: str | Path):
    return runner.invoke(app, ["enhance", *map(str, args), "--model", str(tiny_ckpt), "--device", "cpu"])


def snapshot(root: Path) -> dict[Path, bytes]:
    """Every file under `root` (hidden ones too) with its bytes."""
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def kept(before: dict[Path, bytes]) -> bool:
    return all(p.is_file() and p.read_bytes() == data for p, data in before.items())


def short_wav(path: Path, seconds: float = 0.1, sr: int = 16_000) -> Path:
    write_audio(path, make_noisy(seconds, sr=sr), sr)
    return path


def test_format_fallback_never_replaces_an_input(tmp_path, tiny_ckpt):
    """MP3 cannot be written at 96 kHz: its output would fall back to r/x.wav, the other original."""
    short_wav(tmp_path / "r" / "x.wav")
    short_wav(tmp_path / "r" / "x.mp3")
    before = snapshot(tmp_path)
    result = run(tiny_ckpt, tmp_path / "r" / "x.mp3", "-o", tmp_path / "r", "--sr", "96000", "--overwrite")
    assert result.exit_code == 1 and "would replace it (an input is never overwritten)" in result.stderr
    assert kept(before) and snapshot(tmp_path).keys() == before.keys()


def test_format_fallback_outputs_never_collide(tmp_path, tiny_ckpt):
    short_wav(tmp_path / "in" / "x.wav")
    short_wav(tmp_path / "in" / "x.mp3")
    (tmp_path / "out").mkdir()
    before = snapshot(tmp_path)
    result = run(tiny_ckpt, tmp_path / "in", "-o", tmp_path / "out", "--sr", "96000", "--overwrite")
    assert result.exit_code == 1 and f"{tmp_path / 'out' / 'x.wav'}: would be written twice" in result.stderr
    assert kept(before) and list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("suffix", ["/../../escaped", "\\..\\x", "_a/b"])
def test_suffix_with_a_path_separator_is_refused(tmp_path, tiny_ckpt, suffix):
    short_wav(tmp_path / "in" / "a.wav")
    before = snapshot(tmp_path)
    result = run(tiny_ckpt, tmp_path / "in", "-o", tmp_path / "out" / "deep", "--suffix", suffix)
    assert result.exit_code == 1 and "no path separators" in result.stderr
    assert kept(before) and snapshot(tmp_path).keys() == before.keys() and not (tmp_path / "out").exists()


def test_sigterm_removes_the_partial_output_and_exits_130(tmp_path, tiny_ckpt, monkeypatch):
    short_wav(tmp_path / "in" / "a.wav", seconds=0.3)
    before = snapshot(tmp_path)
    original = files._Chain.process

    def terminated(self, block):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the output's temporary file is open
        return original(self, block)

    monkeypatch.setattr(files._Chain, "process", terminated)
    handler = signal.getsignal(signal.SIGTERM)
    try:
        result = run(tiny_ckpt, tmp_path / "in", "-o", tmp_path / "out")
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert result.exit_code == INTERRUPTED_EXIT and "interrupted" in result.stderr
    assert kept(before) and snapshot(tmp_path).keys() == before.keys()  # no output, no .part file


def test_stale_temporary_files_of_a_killed_run_are_removed(tmp_path, tiny_ckpt):
    short_wav(tmp_path / "in" / "a.wav")
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".a.wav.{dead.pid}.0123abcd.part"
    running = out / f".b.wav.{os.getpid()}.0123abcd.part"  # a run still going: its file stays
    foreign = out / ".notes.part"  # not dfn4's naming: never touched
    for p in (stale, running, foreign):
        p.write_bytes(b"partial")
    result = run(tiny_ckpt, tmp_path / "in", "-o", out)
    assert result.exit_code == 0, result.output
    assert not stale.exists() and running.read_bytes() == foreign.read_bytes() == b"partial"
    assert audio_info(out / "a.wav").frames == 1600


def test_rerun_after_an_interruption_skips_finished_outputs(tmp_path, tiny_ckpt):
    for name in ("a", "b"):
        short_wav(tmp_path / "in" / f"{name}.wav")
    assert run(tiny_ckpt, tmp_path / "in" / "a.wav", "-o", tmp_path / "out").exit_code == 0  # "interrupted" after a
    before = snapshot(tmp_path)
    result = run(tiny_ckpt, tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stdout and "1 of 2 outputs exist and were kept" in result.stderr
    assert kept(before) and audio_info(tmp_path / "out" / "b.wav").frames == 1600


def test_output_folder_above_the_input_folder(tmp_path, tiny_ckpt):
    short_wav(tmp_path / "proj" / "noisy" / "a.wav")
    before = snapshot(tmp_path)
    result = run(tiny_ckpt, tmp_path / "proj" / "noisy", "-o", tmp_path / "proj")
    assert result.exit_code == 0, result.output
    assert kept(before) and audio_info(tmp_path / "proj" / "a.wav").frames == 1600


def test_output_folder_equal_to_the_input_folder(tmp_path, tiny_ckpt):
    src = tmp_path / "noisy"
    short_wav(src / "a.wav")
    before = snapshot(tmp_path)
    same = run(tiny_ckpt, src, "-o", src)  # no suffix: each output would be its input
    assert same.exit_code == 1 and "would replace it" in same.stderr and snapshot(tmp_path) == before
    first = run(tiny_ckpt, src, "-o", src, "--suffix", "_enh")
    assert first.exit_code == 0, first.output
    second = run(tiny_ckpt, src, "-o", src, "--suffix", "_enh", "--overwrite")  # a_enh.wav is not an input
    assert second.exit_code == 0, second.output
    assert sorted(p.name for p in src.iterdir()) == ["a.wav", "a_enh.wav"] and kept(before)


def test_truncated_wav_is_enhanced_with_a_warning(tmp_path, tiny_ckpt):
    whole = short_wav(tmp_path / "whole.wav", seconds=0.3).read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.wav").write_bytes(whole[: 44 + 2 * 1600])  # header says 0.3 s, 0.1 s present
    result = run(tiny_ckpt, tmp_path / "in" / "cut.wav", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "truncated or damaged: the header says 4800 samples (0.30 s), read 1600" in " ".join(result.stderr.split())
    assert audio_info(tmp_path / "out" / "cut.wav").frames == 1600


@pytest.mark.parametrize("sr", ["1", "7999", "384001", "100000000"])
def test_output_rate_outside_8_to_384_khz_is_refused(tmp_path, tiny_ckpt, sr):
    short_wav(tmp_path / "in" / "a.wav")
    result = run(tiny_ckpt, tmp_path / "in", "-o", tmp_path / "out", "--sr", sr)
    assert result.exit_code == 1 and result.stderr.strip() == f"error: output rate {sr} Hz is outside 8000..384000 Hz"
    assert not (tmp_path / "out").exists()


class _Code:
    def __reduce__(self):
        return (exec, ("raise SystemExit('code ran')",))


def test_a_checkpoint_with_code_is_refused_in_plain_words(tmp_path):
    short_wav(tmp_path / "in" / "a.wav")
    torch.save({"format_version": 2, "model_config": {}, "state_dict": {}, "x": _Code()}, tmp_path / "evil.pt")
    before = snapshot(tmp_path)
    result = run(tmp_path / "evil.pt", tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {tmp_path / 'evil.pt'}: not a dfn4 checkpoint, and NOT loaded: it holds Python objects (exec)")
    assert "weights_only" not in result.stderr and snapshot(tmp_path) == before
