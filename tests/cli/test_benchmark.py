import json

from typer.testing import CliRunner

from dfn4cli.main import app

runner = CliRunner()
FAST = ["--variant", "tiny", "--seconds", "0.2", "--hops", "3"]


def test_benchmark_writes_a_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["benchmark", *FAST, "--compare-gru", "--threads", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "dfn4 benchmark" in result.output and "offline RTF" in result.output
    report = json.loads(out.read_text())
    assert [r["name"] for r in report["results"]] == ["tiny", "tiny-gru"]
    assert all(r["streaming"]["median_ms"] > 0 and r["offline"]["rtf"] > 0 for r in report["results"])
    assert report["settings"]["hops"] == 3 and report["machine"]["torch"]


def test_benchmark_of_a_checkpoint(tmp_path, tiny_model):
    from dfn4core.model.checkpoint import save_model

    path = save_model(tiny_model, tmp_path / "m.pt")
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["benchmark", "--model", str(path), "--seconds", "0.2", "--hops", "2", "--compare-gru", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(out.read_text())["results"]] == ["m", "m-gru"]


def test_benchmark_of_a_shipped_model_and_a_missing_file(tmp_path):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["benchmark", "--model", "full", "--seconds", "0.2", "--hops", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(out.read_text())["results"]] == ["full"]
    result = runner.invoke(app, ["benchmark", "--model", str(tmp_path / "nope.pt"), "--seconds", "0.2"])
    assert result.exit_code != 0 and "nope.pt" in result.output and "Traceback" not in result.output


def test_onnx_backend_and_bad_input(tmp_path):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["benchmark", *FAST, "--backend", "torch,onnx", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert [r["backend"] for r in json.loads(out.read_text())["results"]] == ["torch", "onnx"]
    result = runner.invoke(app, ["benchmark", *FAST, "--backend", "tflite"])
    assert result.exit_code == 1 and "unknown backend" in result.output
    result = runner.invoke(app, ["benchmark", *FAST, "--threads", "one"])
    assert result.exit_code == 2 and "--threads" in result.output


def test_plot_without_matplotlib_is_one_line(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    result = runner.invoke(app, ["benchmark", *FAST, "--plot", str(tmp_path / "b.png")])
    assert result.exit_code == 1 and "dfn4[plot]" in result.output
