"""The results CSV (append, repair, header check) and summary statistics."""

import pytest

from dfn4core.errors import ConfigError
from dfn4core.metrics.results import RowWriter, columns, mean_ci, read_rows, summarise


def test_mean_and_student_t_interval():
    s = mean_ci([1.0, 2.0, 3.0])
    assert (s["mean"], s["std"], s["count"]) == (2.0, 1.0, 3)
    assert s["ci95"] == pytest.approx(4.302653 / 3**0.5, rel=1e-6)  # t(0.975, 2) * std / sqrt(n)
    assert mean_ci([5.0]) == {"mean": 5.0, "ci95": None, "std": None, "count": 1}
    assert mean_ci([])["mean"] is None


def test_rows_are_appended_and_a_cut_line_is_dropped(tmp_path):
    path, header = tmp_path / "scores.csv", columns(["si_sdr"])
    writer = RowWriter(path, header)
    writer.write([{"system": "noisy", "key": "a", "status": "ok", "si_sdr": 1.5, "reference": None}])
    writer.close()
    with path.open("a") as f:
        f.write("noisy,b,ok,")  # a run killed mid-line
    rows = read_rows(path, header)
    assert [(r["key"], r["si_sdr"], r["reference"]) for r in rows] == [("a", "1.500000", "")]
    assert path.read_text().endswith("\n")
    with pytest.raises(ConfigError, match="holds results for other metrics"):
        read_rows(path, columns(["pesq_wb"]))


def test_summary_counts_and_deltas():
    def row(system, key, status, value, trimmed="0", sr=("16000", "16000"), notes=""):
        return {"system": system, "key": key, "status": status, "m": value, "trimmed_samples": trimmed,
                "sr_reference": sr[0], "sr_estimate": sr[1], "notes": notes}  # fmt: skip

    rows = [
        row("noisy", "a", "ok", "1.0"), row("noisy", "b", "ok", "3.0", trimmed="4"),
        row("model", "a", "ok", "4.0", sr=("48000", "16000")), row("model", "b", "failed", "", trimmed="", notes="bad"),
    ]  # fmt: skip
    s = summarise(rows, ["noisy", "model"], ["m"])
    assert s["noisy"]["metrics"]["m"]["mean"] == 2.0 and s["noisy"]["metrics"]["m"]["delta"] is None
    assert s["model"]["metrics"]["m"]["delta"] == 2.0 and s["model"]["metrics"]["m"]["missing"] == 1
    assert (s["noisy"]["trimmed"], s["model"]["rate_mismatch"], s["model"]["failed"]) == (1, 1, 1)
    assert s["model"]["problems"] == [{"key": "b", "status": "failed", "notes": "bad"}]
