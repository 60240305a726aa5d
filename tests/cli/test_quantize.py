"""`dfn4 quantize`: writes the INT8 model and its report, refuses to overwrite, bad input as one line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dfn4cli.main import app
from dfn4core import DFN4, ModelConfig, enhance, load_model, save_model
from dfn4core.export import torch_int8 as quantize_module

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(DFN4(ModelConfig.tiny()).eval(), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(autouse=True)
def _short_measurements(monkeypatch):
    """The report's timing and validation at test length (the defaults take seconds)."""
    monkeypatch.setattr(quantize_module, "RTF_SETTINGS", {**quantize_module.RTF_SETTINGS, "seconds": 0.2, "hops": 3,
                                                          "warmup_hops": 1, "repeats": 1, "warmup_runs": 0})  # fmt: skip
    monkeypatch.setattr(quantize_module, "VALID_ITEMS", 1)
    monkeypatch.setattr(quantize_module, "VALID_SECONDS", 1.0)
    monkeypatch.setattr(quantize_module, "CALIB_ITEMS", 1)


def test_static_writes_model_and_report_then_refuses_to_overwrite(tiny_ckpt, tmp_path):
    out = tmp_path / "tiny.int8.pt"
    result = runner.invoke(app, ["quantize", "--model", str(tiny_ckpt), "--method", "static", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "dfn4 quantize (static" in result.stdout and "SI-SDR vs clean" in result.stdout
    stages = re.findall(r"^quantize \(static\): (.+) \(\d+\.\d s\)$", result.stderr, re.M)
    assert stages == ["loading the float model", "calibrating and quantizing", "timing float and INT8 at 1 thread",
                      "scoring both on 1 items of generated mixtures"]  # fmt: skip
    report = json.loads((tmp_path / "tiny.int8.report.json").read_text())
    assert report["method"] == "static" and report["quantized_bytes"] == out.stat().st_size
    assert report["metrics"]["si_sdr_vs_float"] > 20
    assert enhance(load_model(out), np.zeros(960, np.float32), 48_000).shape == (960,)
    before = out.read_bytes()
    again = runner.invoke(app, ["quantize", "-m", str(tiny_ckpt), "--method", "dynamic", "-o", str(out)])
    assert again.exit_code == 1 and again.stderr.strip() == f"error: {out}: exists (use --overwrite)"
    assert out.read_bytes() == before
    forced = runner.invoke(app, ["quantize", "-m", str(tiny_ckpt), "--method", "dynamic", "-o", str(out), "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert json.loads((tmp_path / "tiny.int8.report.json").read_text())["method"] == "dynamic"


def test_bad_input_is_one_line(tiny_ckpt, tmp_path):
    missing = runner.invoke(app, ["quantize", "-m", str(tmp_path / "nope.pt"), "--method", "dynamic", "-o", str(tmp_path / "o.pt")])
    assert missing.exit_code == 1 and missing.stderr.strip() == f"error: {tmp_path / 'nope.pt'}: no such file"
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    corrupt = runner.invoke(app, ["quantize", "-m", str(tmp_path / "bad.pt"), "--method", "dynamic", "-o", str(tmp_path / "o.pt")])
    assert corrupt.exit_code == 1 and "not a readable checkpoint" in corrupt.stderr
    qat = runner.invoke(app, ["quantize", "-m", str(tiny_ckpt), "--method", "qat", "-o", str(tmp_path / "o.pt")])
    assert qat.exit_code == 1 and "DATA.toml" in qat.stderr and "(--calib-data)" in qat.stderr
    unknown = runner.invoke(app, ["quantize", "-m", str(tiny_ckpt), "--method", "fp4", "-o", str(tmp_path / "o.pt")])
    assert unknown.exit_code == 2 and "fp4" in unknown.output
    assert not (tmp_path / "o.pt").exists()


def test_options_reach_quantize_checkpoint(tiny_ckpt, tmp_path, monkeypatch):
    from dfn4core.errors import ExportError

    calls = []

    def fake(checkpoint, out_path, method, **kwargs):
        calls.append((checkpoint, out_path, method, kwargs))
        raise ExportError("stop here")

    monkeypatch.setattr(quantize_module, "quantize_checkpoint", fake)
    monkeypatch.setattr("dfn4core.data.config.load_data_config", lambda path: f"DATA {path.name}")
    (tmp_path / "data.toml").write_text("")
    args = ["quantize", "-m", str(tiny_ckpt), "--method", "QAT", "-o", str(tmp_path / "q.pt"),
            "--calib-data", str(tmp_path / "data.toml"), "--steps", "9", "--overwrite"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and result.stderr.strip() == "error: stop here"
    [(checkpoint, out_path, method, kwargs)] = calls
    assert callable(kwargs.pop("on_progress")) and callable(kwargs.pop("on_stage"))
    assert (checkpoint, out_path, method) == (str(tiny_ckpt), tmp_path / "q.pt", "qat")
    assert kwargs == {"data": "DATA data.toml", "qat": quantize_module.QatSettings(steps=9), "overwrite": True}
