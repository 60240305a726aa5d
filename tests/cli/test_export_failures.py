"""`dfn4 export` and `dfn4 quantize` against overwrites (issue 13): an output is never an input, an earlier
export is kept unless --overwrite, shipped names are accepted, files follow the umask."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

import pytest
import torch
from testaudio import make_noisy
from typer.testing import CliRunner

from dfn4cli.main import app
from dfn4core import DFN4, ModelConfig, save_model
from dfn4core.errors import CheckpointError
from dfn4core.export import ExportError
from dfn4core.export import onnx as onnx_export
from dfn4core.export import torch_int8 as quantize_module
from dfn4core.io import write_audio
from dfn4core.pretrained import resolve_model

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(DFN4(ModelConfig.tiny()).eval(), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_export_keeps_an_earlier_export_without_overwrite(tmp_path, tiny_ckpt):
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"earlier graph")
    (out / "model.json").write_bytes(b"earlier metadata")
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["export", "--model", str(tiny_ckpt), "-o", str(out)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {out / 'model.onnx'}: exists, from an earlier export (use --overwrite)"
    assert snapshot(tmp_path) == before


def test_reexport_removes_the_earlier_exports_other_files_and_follows_the_umask(tmp_path, tiny_ckpt, umask_022):
    out = tmp_path / "onnx"
    out.mkdir()
    for name in ("model.onnx", "model_offline.onnx", "model.int8.onnx"):
        (out / name).write_bytes(b"earlier export")
    (out / "notes.txt").write_bytes(b"not an export file")
    write_audio(tmp_path / "check.wav", make_noisy(0.1), 48_000)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add overhead on a shared machine
    try:
        args = ["export", "-m", str(tiny_ckpt), "-o", str(out), "--check-audio", str(tmp_path / "check.wav"), "--overwrite"]
        result = runner.invoke(app, args)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.onnx", "notes.txt"]
    assert (out / "notes.txt").read_bytes() == b"not an export file"
    assert re.search(r"^export: checking it against torch \(\d+\.\d s\)$", result.stderr, re.M), result.stderr  # progress too
    assert {stat.S_IMODE((out / n).stat().st_mode) for n in ("model.json", "model.onnx")} == {0o644}


def test_export_never_writes_over_its_input(tmp_path, tiny_ckpt):
    out = tmp_path / "onnx"
    out.mkdir()
    shutil.copy(tiny_ckpt, out / "model.onnx")  # a checkpoint, whatever its name
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["export", "-m", str(out / "model.onnx"), "-o", str(out), "--overwrite"])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {out / 'model.onnx'}: is an input of this export; an input is never overwritten"
    assert snapshot(tmp_path) == before


def test_export_takes_a_shipped_name(tmp_path, monkeypatch):
    calls = []

    def fake_export(model, out_dir, audio, **kwargs):
        calls.append((model, kwargs))
        raise ExportError("stopped here")

    monkeypatch.setattr(onnx_export, "export_onnx", fake_export)
    result = runner.invoke(app, ["export", "--model", "full", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and result.stderr.strip() == "error: stopped here"
    model, kwargs = calls[0]
    assert isinstance(model, DFN4) and kwargs["inputs"][0] == resolve_model("full")


def test_quantize_never_overwrites_its_input(tmp_path, tiny_ckpt):
    model = tmp_path / "m.pt"
    shutil.copy(tiny_ckpt, model)
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["quantize", "-m", str(model), "--method", "dynamic", "-o", str(model), "--overwrite"])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {model}: is the model being quantized; an input is never overwritten"
    assert snapshot(tmp_path) == before


def test_quantize_takes_a_shipped_name(tmp_path, monkeypatch):
    shipped = resolve_model("full")
    refused = runner.invoke(app, ["quantize", "-m", "full", "--method", "dynamic", "-o", str(shipped), "--overwrite"])
    assert refused.exit_code == 1 and "is the model being quantized" in refused.stderr  # "full" is that file
    calls = []

    def fake_load(path, device=None):
        calls.append(path)
        raise CheckpointError(path, "stopped here")

    monkeypatch.setattr(quantize_module, "load_model", fake_load)
    result = runner.invoke(app, ["quantize", "-m", "full", "--method", "dynamic", "-o", str(tmp_path / "q.pt")])
    assert result.exit_code == 1 and result.stderr.strip() == "error: full: stopped here" and calls == ["full"]
