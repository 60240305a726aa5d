"""Plots of results on disk: training curves from metrics.jsonl, evaluate scores per SNR or category."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dfn4core import plot
from dfn4core.errors import ConfigError
from dfn4core.metrics import results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_run(run_dir: Path, valid: bool = True) -> Path:
    rows = [{"time": 1.0, "step": s, "kind": "train", "lr": 1e-4, "spec_mag": 4.0 / s, "total": 9.0 / s, "skipped": 0}
            for s in (10, 20, 30)]  # fmt: skip
    if valid:
        rows.insert(2, {"step": 20, "kind": "valid", "valid_loss": 0.5, "si_sdr": 9.5, "si_sdr_noisy": 5.0, "pesq": 1.8})
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


def write_scores(out: Path, noisy_dir: Path, scores: dict[str, dict[str, dict[str, float]]]) -> Path:
    """An evaluate --out folder: scores.csv rows {system: {key: {metric: value}}} and run.json."""
    metrics = sorted({m for per_key in scores.values() for row in per_key.values() for m in row})
    out.mkdir(parents=True)
    writer = results.RowWriter(out / "scores.csv", results.columns(metrics))
    writer.write([{"system": s, "key": k, "status": "ok", **row} for s, per_key in scores.items() for k, row in per_key.items()])
    writer.close()
    (out / "run.json").write_text(json.dumps({"set": "pairs", "noisy_dir": str(noisy_dir)}))
    return out


def test_curves_split_loss_terms_from_validation(tmp_path):
    curves = plot.read_curves(write_run(tmp_path / "lite"))
    assert curves.name == "lite"
    assert curves.train == {"spec_mag": ([10, 20, 30], [0.4, 0.2, 4.0 / 30]), "total": ([10, 20, 30], [0.9, 0.45, 0.3])}
    assert curves.valid["si_sdr"] == ([20], [9.5]) and curves.valid["si_sdr_noisy"] == ([20], [5.0])


def test_a_folder_without_metrics_is_not_a_run(tmp_path):
    with pytest.raises(ConfigError, match="metrics.jsonl: no such file .*a `dfn4 train` run folder"):
        plot.read_curves(tmp_path)


def test_scores_group_by_the_sets_category_and_snr_columns(tmp_path):
    (tmp_path / "set" / "noisy").mkdir(parents=True)
    (tmp_path / "set" / "pairs.csv").write_text(
        "file,category,snr_db\n00001.wav,babble,0\n00002.wav,babble,10\n00003.wav,traffic,10\n"
    )
    scores = {
        "noisy": {"00001": {"pesq_wb": 1.0}, "00002": {"pesq_wb": 2.0}, "00003": {"pesq_wb": 3.0}},
        "model": {"00001": {"pesq_wb": 1.5}, "00002": {"pesq_wb": 2.5}, "00003": {"pesq_wb": 3.5}},
    }
    by_category, by_snr = plot.group_scores(write_scores(tmp_path / "eval", tmp_path / "set" / "noisy", scores))
    assert (by_category.by, by_category.groups, by_category.files) == ("category", ["babble", "traffic"], [2, 1])
    assert by_category.means == {"pesq_wb": {"noisy": [1.5, 3.0], "model": [2.0, 3.5]}}
    assert (by_snr.by, by_snr.groups, by_snr.files) == ("snr_db", ["0", "10"], [1, 2])
    assert by_snr.means == {"pesq_wb": {"noisy": [1.0, 2.5], "model": [1.5, 3.0]}}


def test_without_set_columns_the_noisy_si_sdr_stands_for_the_input_snr(tmp_path):
    (tmp_path / "noisy").mkdir()
    scores = {"noisy": {"a": {"si_sdr": -4.0}, "b": {"si_sdr": 1.0}, "c": {"si_sdr": 6.0}},
              "model": {"a": {"si_sdr": 4.0}, "b": {"si_sdr": 9.0}}}  # fmt: skip
    [by_snr] = plot.group_scores(write_scores(tmp_path / "eval", tmp_path / "noisy", scores))
    assert (by_snr.by, by_snr.groups) == ("noisy si_sdr", ["-5", "0", "5"])
    assert by_snr.means["si_sdr"] == {"noisy": [-4.0, 1.0, 6.0], "model": [4.0, 9.0, None]}


def test_nothing_to_group_by_says_what_is_needed(tmp_path):
    (tmp_path / "noisy").mkdir()
    out = write_scores(tmp_path / "eval", tmp_path / "noisy", {"noisy": {"a": {"pesq_wb": 1.0}}})
    with pytest.raises(ConfigError, match=r"no pairs.csv with category or snr_db columns .*\(add si_sdr to --metrics\)"):
        plot.group_scores(out)
    with pytest.raises(ConfigError, match="scores.csv: no such file"):
        plot.group_scores(tmp_path)


def test_without_matplotlib_the_plots_name_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` sees when it is not installed
    run = write_run(tmp_path / "run")
    with pytest.raises(ConfigError, match=r"needs matplotlib: pip install 'dfn4\[plot\]'"):
        plot.plot_training([run], tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def test_plots_are_written_as_png(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "noisy").mkdir()
    out = write_scores(tmp_path / "eval", tmp_path / "noisy", {
        "noisy": {"a": {"si_sdr": 0.0, "stoi": 0.7}, "b": {"si_sdr": 10.0, "stoi": 0.9}},
        "model": {"a": {"si_sdr": 8.0, "stoi": 0.8}, "b": {"si_sdr": 15.0, "stoi": 0.95}},
    })  # fmt: skip
    scores_png = plot.plot_scores(out, tmp_path / "plots" / "scores.png")
    curves_png = plot.plot_training([write_run(tmp_path / "a"), write_run(tmp_path / "b", valid=False)], tmp_path / "c.png")
    for png in (scores_png, curves_png):
        assert png.read_bytes()[:8] == PNG_MAGIC
