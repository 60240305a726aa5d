"""`dfn4 evaluate`: options reach the library, a real run prints the table, failures give exit code 1."""

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from testaudio import make_noisy
from rich.console import Console
from typer.testing import CliRunner

import dfn4core.evaluate
from dfn4cli.evaluate import summary_table
from dfn4cli.main import app
from dfn4core.io import write_audio
from dfn4core.metrics import sets

runner = CliRunner()
SR = 16_000


def write_pairs(root: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        clean = make_noisy(0.5, sr=SR, seed=i)[0]
        write_audio(root / "clean" / name, clean, SR)
        write_audio(root / "noisy" / name, clean + 0.05 * np.random.default_rng(i).standard_normal(clean.size), SR)


def test_help_lists_the_options():
    result = runner.invoke(app, ["evaluate", "--help"])
    assert result.exit_code == 0
    for opt in (
        "--set",
        "--data-dir",
        "--noisy-dir",
        "--clean-dir",
        "--model",
        "--enhanced-dir",
        "--jobs",
        "--out",
        "--metrics",
    ):
        assert opt in result.output


def test_options_reach_the_library(tmp_path, monkeypatch):
    for d in ("n", "c", "e"):
        (tmp_path / d).mkdir()
    (tmp_path / "m.pt").touch()
    loaded, runs = [], []
    eval_set = sets.EvalSet("pairs", (sets.Item("a", tmp_path / "n/a.wav", tmp_path / "c/a.wav"),))
    monkeypatch.setattr(sets, "load_set", lambda name, **kw: loaded.append((name, kw)) or eval_set)
    summary = {"set": {"name": "pairs", "files": 1}, "metrics": ["pesq_wb"], "systems": {}, "enhanced_unmatched": []}

    def fake_evaluate(s, out, **kwargs):
        runs.append((s, out, kwargs))
        kwargs["on_progress"](1, 1)
        return dfn4core.evaluate.EvalReport(out / "scores.csv", out / "summary.json", summary, 1, 0)

    monkeypatch.setattr(dfn4core.evaluate, "evaluate", fake_evaluate)
    args = f"evaluate --set pairs --noisy-dir {tmp_path}/n --clean-dir {tmp_path}/c --model {tmp_path}/m.pt"
    args += f" --enhanced-dir {tmp_path}/e --jobs 2 --out {tmp_path}/o --metrics pesq,stoi --device cpu"
    result = runner.invoke(app, args.split())
    assert result.exit_code == 0, result.output
    assert loaded == [("pairs", {"data_dir": None, "noisy_dir": tmp_path / "n", "clean_dir": tmp_path / "c"})]
    [(s, out, kwargs)] = runs
    assert s is eval_set and out == tmp_path / "o"
    assert {k: v for k, v in kwargs.items() if k != "on_progress"} == {
        "model": str(tmp_path / "m.pt"), "enhanced_dir": tmp_path / "e", "metrics": "pesq,stoi", "jobs": 2,
        "device": torch.device("cpu"),
    }  # fmt: skip


def pairs_args(tmp_path: Path) -> list[str]:
    """`dfn4 evaluate` over the pairs `write_pairs(tmp_path, ...)` made."""
    return ["evaluate", "--set", "pairs", "--noisy-dir", str(tmp_path / "noisy"), "--clean-dir", str(tmp_path / "clean")]


def test_real_run_prints_the_table_and_resumes(tmp_path):
    write_pairs(tmp_path, ["a.wav", "b.wav"])
    args = pairs_args(tmp_path)
    args += ["--out", str(tmp_path / "out"), "--metrics", "si_sdr,ssnr"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "dfn4 evaluate: pairs (2 files)" in result.stdout and "si_sdr" in result.stdout and "noisy" in result.stdout
    assert "2 files scored, 0 already done" in result.stderr
    assert (tmp_path / "out" / "scores.csv").is_file() and (tmp_path / "out" / "summary.json").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "0 files scored, 2 already done" in again.stderr


def test_unmatched_and_failed_files_are_reported(tmp_path):
    write_pairs(tmp_path, ["a.wav", "b.wav"])
    (tmp_path / "noisy" / "b.wav").write_bytes(b"not audio")
    write_audio(tmp_path / "clean" / "orphan.wav", np.zeros(100, np.float32), SR)
    args = pairs_args(tmp_path)
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out"), "--metrics", "si_sdr"])
    assert result.exit_code == 1
    assert f"unmatched: {tmp_path / 'clean' / 'orphan.wav'}: no noisy file with key 'orphan'" in result.stderr
    assert "error: files that could not be scored" in result.stderr and "'noisy': 1" in result.stderr
    assert "failed: noisy b: " in result.stderr and "not an audio file or corrupt" in result.stderr


def test_a_rerun_with_another_clean_folder_is_refused(tmp_path):
    write_pairs(tmp_path, ["a.wav"])
    (tmp_path / "clean2").mkdir()
    (tmp_path / "clean2" / "a.wav").write_bytes((tmp_path / "noisy" / "a.wav").read_bytes())
    args = [*pairs_args(tmp_path), "--out", str(tmp_path / "out"), "--metrics", "stoi"]
    assert runner.invoke(app, args).exit_code == 0
    scores = (tmp_path / "out" / "scores.csv").read_bytes()
    args[args.index(str(tmp_path / "clean"))] = str(tmp_path / "clean2")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'out'} holds results for clean dir {tmp_path / 'clean'}, not {tmp_path / 'clean2'}; "
        "use another --out folder"
    )
    assert (tmp_path / "out" / "scores.csv").read_bytes() == scores


def test_a_file_too_short_for_the_metric_is_named(tmp_path):
    write_audio(tmp_path / "clean" / "a.wav", make_noisy(100 / SR, sr=SR)[0], SR)
    write_audio(tmp_path / "noisy" / "a.wav", make_noisy(100 / SR, sr=SR, seed=1)[0], SR)
    result = runner.invoke(app, [*pairs_args(tmp_path), "--out", str(tmp_path / "out"), "--metrics", "stoi"])
    assert result.exit_code == 1
    assert "failed: noisy a: stoi: too short for STOI: 6 ms, it needs at least 397 ms" in result.stderr
    assert "unexpected error" not in result.stderr


def test_bad_arguments_are_one_line_errors(tmp_path):
    write_audio(tmp_path / "a.wav", np.zeros(100, np.float32), SR)
    result = runner.invoke(app, ["evaluate", "--set", "blind", "--noisy-dir", str(tmp_path), "--metrics", "pesq"])
    assert result.exit_code == 1
    expected = "error: this set has no clean references, so only DNSMOS can be computed, not pesq_wb"
    assert result.stderr.strip().splitlines()[-1] == expected
    result = runner.invoke(app, ["evaluate", "--set", "voicebank", "--noisy-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: --set voicebank takes --data-dir, and no other folder; ")


def test_voicebank_without_data_says_where_the_set_is_published(tmp_path):
    result = runner.invoke(app, ["evaluate", "--set", "voicebank", "--data-dir", str(tmp_path / "vb")])
    assert result.exit_code == 1 and "University of Edinburgh DataShare" in result.stderr
    assert "clean_testset_wav/ and DIR/noisy_testset_wav/" in result.stderr


def test_summary_table_is_readable_in_80_columns():
    metrics = ["pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "ssnr", "csig", "cbak", "covl",
               "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"]  # fmt: skip

    def system(offset: float) -> dict:
        stats = {m: {"mean": -12.345 + i + offset, "ci95": 10.25, "delta": None if offset == 0 else offset}
                 for i, m in enumerate(metrics)}  # fmt: skip
        return {"metrics": stats}

    summary = {"set": {"name": "voicebank", "files": 824}, "metrics": metrics,
               "systems": {"noisy": system(0), "model": system(1.5), "enhanced": system(-0.25)}}  # fmt: skip
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(summary_table(summary))
    text = console.export_text()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    for i, m in enumerate(metrics):
        row = next(line for line in text.splitlines() if f" {m} " in line)
        assert [f"{-12.345 + i + o:.2f} ±10.25" in row for o in (0, 1.5, -0.25)] == [True] * 3
    assert text.count("+1.50") == len(metrics) and text.count("-0.25") == len(metrics)


def test_plot_without_matplotlib_fails_before_scoring(tmp_path, monkeypatch):
    write_pairs(tmp_path, ["a.wav"])
    runs = []
    monkeypatch.setattr(dfn4core.evaluate, "evaluate", lambda *a, **k: runs.append(a))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plot extra were not installed
    result = runner.invoke(app, [*pairs_args(tmp_path), "--out", str(tmp_path / "out"), "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 1 and "pip install 'dfn4[plot]'" in result.stderr and runs == []


def test_plot_draws_the_scores_on_disk(tmp_path):
    pytest.importorskip("matplotlib")
    write_pairs(tmp_path, ["a.wav", "b.wav"])
    args = [*pairs_args(tmp_path), "--out", str(tmp_path / "out"), "--metrics", "si_sdr", "--plot", str(tmp_path / "p.png")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'p.png'}" in result.stderr and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
