"""`dfn4 enhance` and the app around it: help, errors, argument passing, a real run."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

import dfn4core
from dfn4cli._render import summary_table
from dfn4cli.main import app
from dfn4core import DFN4, ModelConfig, save_model
from dfn4core import files, pretrained
from dfn4core.errors import CheckpointError
from dfn4core.io import audio_info, write_audio

from testaudio import make_noisy

REPO_ROOT = Path(__file__).resolve().parents[2]

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(DFN4(ModelConfig.tiny()).eval(), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def cli_args(inp: Path, out_dir: Path, model: Path) -> list[str]:
    return ["enhance", str(inp), "-o", str(out_dir), "--model", str(model), "--device", "cpu"]


def test_help_lists_commands_and_options():
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "enhance" in top.output and "--debug" in top.output
    sub = runner.invoke(app, ["enhance", "--help"])
    assert sub.exit_code == 0
    for opt in ("--model", "--atten-lim-db", "--sr", "--device", "--threads", "--suffix", "--overwrite", "--recursive"):
        assert opt in sub.output


def test_help_does_not_import_torch():
    code = "import sys; from dfn4cli.main import app; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("dfn4 ")


def test_without_model_the_shipped_default_is_used(tmp_path, monkeypatch):
    write_audio(tmp_path / "a.wav", make_noisy(0.1, 16000), 16000)
    loaded = []
    monkeypatch.setattr(pretrained, "default_model_name", lambda: "lite")
    tiny = DFN4(ModelConfig.tiny())
    monkeypatch.setattr(dfn4core, "load_model", lambda path, device=None, dfn3=False: loaded.append(path) or tiny)
    result = runner.invoke(app, ["enhance", str(tmp_path / "a.wav"), "-o", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert loaded == ["lite"] and (tmp_path / "out" / "a.wav").is_file()


def test_without_model_and_nothing_shipped_says_a_checkpoint_is_needed(tmp_path, monkeypatch):
    write_audio(tmp_path / "a.wav", make_noisy(0.1, 16000), 16000)
    monkeypatch.setattr(pretrained, "default_model_name", lambda: None)
    result = runner.invoke(app, ["enhance", str(tmp_path / "a.wav"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no model ships in this install: pass --model CHECKPOINT"


def test_onnx_backend_needs_a_model(tmp_path):
    write_audio(tmp_path / "a.wav", make_noisy(0.1, 16000), 16000)
    result = runner.invoke(app, ["enhance", str(tmp_path / "a.wav"), "-o", str(tmp_path / "out"), "--backend", "onnx"])
    assert result.exit_code == 2 and "--backend onnx needs --model" in result.stderr


def test_options_reach_the_library(tmp_path, monkeypatch):
    write_audio(tmp_path / "in" / "a.wav", make_noisy(0.1, 16000), 16000)
    (tmp_path / "m.pt").touch()
    loaded, calls, threads = [], [], []
    model = torch.nn.Linear(1, 1)
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    monkeypatch.setattr(dfn4core, "load_model", lambda path, device=None, dfn3=False: loaded.append((path, device)) or model)

    def fake_enhance_files(net, pairs, **kwargs):
        calls.append((net, pairs, kwargs))
        return [files.FileResult(i, o, 0.1, 0.01, 0.1) for i, o in pairs]

    monkeypatch.setattr(files, "enhance_files", fake_enhance_files)
    opts = "--atten-lim-db 12 --sr 22050 --device cpu --threads 1 --suffix _x --overwrite".split()
    result = runner.invoke(app, [*cli_args(tmp_path / "in", tmp_path / "out", tmp_path / "m.pt"), *opts])
    assert result.exit_code == 0, result.output
    assert [(Path(p), d) for p, d in loaded] == [(tmp_path / "m.pt", torch.device("cpu"))] and threads == [1]
    net, pairs, kwargs = calls[0]
    assert net is model and pairs == [(tmp_path / "in" / "a.wav", tmp_path / "out" / "a_x.wav")]
    assert {k: kwargs[k] for k in ("sr_out", "atten_lim_db", "overwrite")} == {
        "sr_out": 22050,
        "atten_lim_db": 12.0,
        "overwrite": True,
    }
    assert all(callable(kwargs[k]) for k in ("on_file_start", "on_progress", "on_file_end"))


def test_library_error_is_one_line_and_exit_1(tmp_path, monkeypatch):
    write_audio(tmp_path / "a.wav", make_noisy(0.1, 16000), 16000)
    (tmp_path / "m.pt").touch()

    def broken(path, device=None, dfn3=False):
        raise CheckpointError(path, "not a dfn4 checkpoint")

    monkeypatch.setattr(dfn4core, "load_model", broken)
    args = [*cli_args(tmp_path / "a.wav", tmp_path / "out", tmp_path / "m.pt"), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and result.stderr.strip() == f"error: {tmp_path / 'm.pt'}: not a dfn4 checkpoint"
    debug = runner.invoke(app, ["--debug", *args])
    assert debug.exit_code == 1 and "Traceback" in debug.stderr and "not a dfn4 checkpoint" in debug.stderr


def test_folder_with_a_corrupt_file(tmp_path, tiny_ckpt):
    src = tmp_path / "noisy"
    write_audio(src / "a.wav", make_noisy(0.5, 16000), 16000)
    write_audio(src / "sub" / "c.flac", make_noisy(0.1, 44100, channels=2), 44100)
    (src / "b.wav").write_bytes(b"RIFF" + b"\x00" * 100)
    args = [*cli_args(src, tmp_path / "clean", tiny_ckpt), "--recursive"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    failures = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(failures) == 1 and failures[0].startswith(f"error: {src / 'b.wav'}: not an audio file or corrupt (")
    assert audio_info(tmp_path / "clean" / "a.wav").frames == 8000
    stereo = audio_info(tmp_path / "clean" / "sub" / "c.flac")
    assert (stereo.frames, stereo.channels, stereo.sr) == (4410, 2, 44100)
    assert not (tmp_path / "clean" / "b.wav").exists()
    assert "failed" in result.stdout and "ok" in result.stdout


def test_existing_output_is_kept_and_skipped_without_overwrite(tmp_path, tiny_ckpt):
    write_audio(tmp_path / "a.wav", make_noisy(0.1, 48000), 48000)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.wav").write_bytes(b"keep me")
    args = cli_args(tmp_path / "a.wav", tmp_path / "out", tiny_ckpt)
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "skipped" in result.stdout and "1 of 1 outputs exist and were kept" in result.stderr
    assert (tmp_path / "out" / "a.wav").read_bytes() == b"keep me"
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert audio_info(tmp_path / "out" / "a.wav").frames == 4800


def test_rerun_with_every_output_present_exits_before_loading_a_model(tmp_path, monkeypatch):
    for name in ("a.wav", "b.wav"):
        write_audio(tmp_path / "in" / name, make_noisy(0.1, 16000), 16000)
        write_audio(tmp_path / "out" / name, make_noisy(0.1, 16000), 16000)
    before = {name: (tmp_path / "out" / name).read_bytes() for name in ("a.wav", "b.wav")}
    loaded = []
    monkeypatch.setattr(dfn4core, "load_model", lambda *a, **k: loaded.append(a))
    result = runner.invoke(app, ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 0 and loaded == []
    assert result.stdout.count("skipped") == 2 and "2 of 2 outputs exist and were kept" in result.stderr
    assert {name: (tmp_path / "out" / name).read_bytes() for name in before} == before


def test_rerun_with_overwrite_loads_the_model(tmp_path, monkeypatch):
    write_audio(tmp_path / "in" / "a.wav", make_noisy(0.1, 16000), 16000)
    write_audio(tmp_path / "out" / "a.wav", make_noisy(0.1, 16000), 16000)

    def no_model(path, device=None, dfn3=False):
        raise CheckpointError(path, "loaded")

    monkeypatch.setattr(dfn4core, "load_model", no_model)
    args = ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--device", "cpu", "--overwrite"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "loaded" in result.stderr


def test_summary_table_keeps_long_paths_whole_in_80_columns(tmp_path):
    out_dir = tmp_path / ("enhanced_" * 6)
    long_in = tmp_path / ("recordings_" * 6)
    results = [files.FileResult(long_in / f"meeting_room_take_{i}.wav", out_dir / f"meeting_room_take_{i}.wav",
                                   1.0, 0.1, 0.1) for i in (1, 2)]  # fmt: skip
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(summary_table(results, out_dir))
    text = console.export_text()
    assert "…" not in text
    assert "meeting_room_take_1.wav" in text and "meeting_room_take_2.wav" in text


def test_real_noisy_recording(tmp_path, tiny_ckpt, real_dir):
    noisy = real_dir / "noisy_snr0.wav"  # skipped by the real_dir fixture when ../shared/data/real is absent
    result = runner.invoke(app, cli_args(noisy, tmp_path, tiny_ckpt))
    assert result.exit_code == 0, result.output
    out, inp = audio_info(tmp_path / "noisy_snr0.wav"), audio_info(noisy)
    assert (out.frames, out.sr, out.channels, out.subtype) == (inp.frames, inp.sr, inp.channels, inp.subtype)
