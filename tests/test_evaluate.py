"""`evaluate`: systems scored side by side, resume without recomputing, bad inputs as rows with reasons."""

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from testaudio import make_noisy

import dfn4core.evaluate as evaluate_module
from dfn4core import DFN4, ModelConfig, save_model
from dfn4core.errors import ConfigError
from dfn4core.evaluate import evaluate
from dfn4core.io import resample, write_audio
from dfn4core.metrics import dnsmos
from dfn4core.metrics.results import mean_ci
from dfn4core.metrics.sets import load_set

SR = 16_000


def orthogonal_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """White noise orthogonal to zero-mean x at snr_db, so SI-SDR(x, x + noise) is snr_db exactly."""
    x = x - x.mean()
    n = np.random.default_rng(seed).standard_normal(x.size)
    n -= n.mean() + np.dot(n - n.mean(), x) / np.dot(x, x) * x
    return n * np.sqrt(np.dot(x, x) / np.dot(n, n) / 10 ** (snr_db / 10))


def write_pair(root: Path, name: str, seconds: float = 1.0, snr_db: float = 10.0, seed: int = 0) -> np.ndarray:
    clean = make_noisy(seconds, sr=SR, seed=seed)[0]
    write_audio(root / "clean" / name, clean, SR)
    write_audio(root / "noisy" / name, clean + orthogonal_noise(clean, snr_db, seed), SR, subtype="FLOAT")
    return clean


@pytest.fixture
def pairs(tmp_path):
    for i in range(3):
        write_pair(tmp_path, f"u{i}.wav", seed=i)
    return load_set("pairs", noisy_dir=tmp_path / "noisy", clean_dir=tmp_path / "clean")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_noisy_and_model_are_scored_and_summarised(tmp_path, pairs, tiny_model):
    progress = []
    report = evaluate(
        pairs, tmp_path / "out", model=tiny_model, metrics="si_sdr,ssnr", on_progress=lambda *a: progress.append(a)
    )
    rows = read_csv(report.csv_path)
    assert [(r["system"], r["key"], r["status"]) for r in rows] == [
        (s, f"u{i}", "ok") for i in range(3) for s in ("noisy", "model")
    ]
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)] and (report.scored, report.resumed) == (3, 0)
    noisy_sdr = [float(r["si_sdr"]) for r in rows if r["system"] == "noisy"]
    assert noisy_sdr == pytest.approx([10.0] * 3, abs=1e-3)  # written at 10 dB SNR
    summary = json.loads(report.json_path.read_text())
    assert summary == report.summary
    stats = summary["systems"]["noisy"]["metrics"]["si_sdr"]
    assert stats == {**mean_ci(noisy_sdr), "missing": 0, "delta": None}  # from the CSV's own values
    model_mean = np.mean([float(r["si_sdr"]) for r in rows if r["system"] == "model"])
    assert summary["systems"]["model"]["metrics"]["si_sdr"]["delta"] == pytest.approx(
        model_mean - stats["mean"], abs=1e-5
    )
    assert ModelConfig.from_dict(summary["model"]["config"]) == tiny_model.cfg and len(summary["model"]["sha256"]) == 64
    assert summary["versions"]["pesq"] and summary["versions"]["pystoi"] and summary["versions"]["speechmos"]
    assert summary["set"] == {"name": "pairs", "files": 3, "unmatched": []}


def test_interrupted_run_resumes_without_recomputing(tmp_path, pairs, monkeypatch):
    out = tmp_path / "out"
    finished = evaluate(pairs, out, metrics="si_sdr").csv_path.read_text()
    lines = finished.splitlines(keepends=True)
    (out / "scores.csv").write_text("".join(lines[:-1]) + lines[-1][:12])  # killed while writing u2
    calls = []
    real_score = evaluate_module.score
    monkeypatch.setattr(evaluate_module, "score", lambda *a, **k: calls.append(a) or real_score(*a, **k))
    report = evaluate(pairs, out, metrics="si_sdr")
    assert (report.scored, report.resumed, len(calls)) == (1, 2, 1)
    assert report.csv_path.read_text() == finished  # finished rows kept byte for byte, none twice
    assert evaluate(pairs, out, metrics="si_sdr").scored == 0
    with pytest.raises(ConfigError, match="holds results for metrics si_sdr, not ssnr; use another --out"):
        evaluate(pairs, out, metrics="ssnr")


def test_results_of_another_model_are_not_mixed(tmp_path, pairs, tiny_model):
    out = tmp_path / "out"
    evaluate(pairs, out, model=tiny_model, metrics="si_sdr")
    other = DFN4(ModelConfig.tiny()).eval()  # other random weights
    with pytest.raises(
        ConfigError, match="holds results for model sha256 [0-9a-f]{64}, not [0-9a-f]{64}; use another --out"
    ):
        evaluate(pairs, out, model=other, metrics="si_sdr")
    assert evaluate(pairs, out, metrics="si_sdr").summary["systems"].keys() == {"noisy"}  # noisy rows still reusable


def test_results_against_another_reference_set_are_not_mixed(tmp_path, pairs):
    out = tmp_path / "out"
    evaluate(pairs, out, metrics="si_sdr")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for i in range(3):  # the same names, other clean signals
        write_audio(tmp_path / "other" / f"u{i}.wav", make_noisy(1.0, sr=SR, seed=10 + i)[0], SR)
    other = load_set("pairs", noisy_dir=tmp_path / "noisy", clean_dir=tmp_path / "other")
    with pytest.raises(ConfigError) as err:
        evaluate(other, out, metrics="si_sdr")
    assert str(err.value) == (
        f"{out} holds results for clean dir {tmp_path / 'clean'}, not {tmp_path / 'other'}; use another --out folder"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_relative_and_an_absolute_path_are_the_same_set(tmp_path, pairs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = load_set("pairs", noisy_dir="noisy", clean_dir="clean")
    assert evaluate(relative, "out", metrics="si_sdr").scored == 3
    report = evaluate(pairs, tmp_path / "out", metrics="si_sdr")
    assert (report.scored, report.resumed) == (0, 3)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["noisy_dir"] == str(tmp_path / "noisy")


def test_failed_rows_are_retried_on_resume(tmp_path, pairs):
    out = tmp_path / "out"
    good = (tmp_path / "noisy" / "u1.wav").read_bytes()
    (tmp_path / "noisy" / "u1.wav").write_bytes(b"RIFF" + bytes(40))  # broken when first scored
    first = evaluate(pairs, out, metrics="si_sdr")
    assert first.summary["systems"]["noisy"]["failed"] == 1
    kept = [line for line in first.csv_path.read_text().splitlines() if ",u1," not in line]
    (tmp_path / "noisy" / "u1.wav").write_bytes(good)  # fixed
    again = evaluate(pairs, out, metrics="si_sdr")
    assert (again.scored, again.resumed) == (1, 2)
    lines = again.csv_path.read_text().splitlines()
    assert lines[:3] == kept and len(lines) == 4 and ",u1,ok," in lines[3]  # finished rows untouched
    assert again.summary["systems"]["noisy"]["failed"] == 0 and again.summary["systems"]["noisy"]["files"] == 3


def test_run_json_is_replaced_atomically(tmp_path, pairs, monkeypatch):
    out = tmp_path / "out"
    evaluate(pairs, out, metrics="si_sdr")
    before = (out / "run.json").read_bytes()
    real_write_text = Path.write_text

    def dies_halfway(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    write_audio(tmp_path / "enh" / "u0.wav", make_noisy(1.0, sr=SR)[0], SR)
    monkeypatch.setattr(Path, "write_text", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        evaluate(pairs, out, enhanced_dir=tmp_path / "enh", metrics="si_sdr")  # a new system: run.json grows
    monkeypatch.undo()
    assert (out / "run.json").read_bytes() == before and sorted(p.name for p in out.iterdir()) == [
        "run.json", "scores.csv", "summary.json"
    ]  # fmt: skip


def test_a_file_too_short_for_a_metric_says_so(tmp_path):
    write_pair(tmp_path, "short.wav", seconds=100 / SR)  # 100 samples
    s = load_set("pairs", noisy_dir=tmp_path / "noisy", clean_dir=tmp_path / "clean")
    [row] = read_csv(evaluate(s, tmp_path / "out", metrics="stoi,estoi").csv_path)
    assert row["status"] == "failed"
    assert row["notes"] == "stoi: too short for STOI: 6 ms, it needs at least 397 ms; estoi: too short for ESTOI: 6 ms, it needs at least 397 ms"


def test_bad_inputs_become_rows_with_reasons(tmp_path):
    clean = write_pair(tmp_path, "ok.wav")
    write_audio(tmp_path / "clean" / "silent.wav", np.zeros(SR, np.float32), SR)
    write_audio(tmp_path / "noisy" / "silent.wav", clean, SR)
    write_pair(tmp_path, "corrupt.wav")
    (tmp_path / "noisy" / "corrupt.wav").write_bytes(b"RIFF" + bytes(40))
    write_audio(tmp_path / "clean" / "short.wav", clean, SR)
    write_audio(tmp_path / "noisy" / "short.wav", clean[:-10], SR)  # a few samples: trimmed
    write_audio(tmp_path / "clean" / "long.wav", clean, SR)
    write_audio(tmp_path / "noisy" / "long.wav", clean[: SR * 8 // 10], SR)  # 200 ms: refused
    write_audio(tmp_path / "clean" / "rate.wav", resample(clean, SR, 48_000), 48_000)  # resampled
    write_audio(tmp_path / "noisy" / "rate.wav", clean, SR)
    write_pair(tmp_path, "tiny.wav", seconds=0.1)  # PESQ needs more speech; SI-SDR does not
    s = load_set("pairs", noisy_dir=tmp_path / "noisy", clean_dir=tmp_path / "clean")
    report = evaluate(s, tmp_path / "out", metrics="pesq,si_sdr")
    rows = {r["key"]: r for r in read_csv(report.csv_path)}
    assert {k: r["status"] for k, r in rows.items()} == {
        "corrupt": "failed", "long": "failed", "silent": "failed", "tiny": "partial",
        "ok": "ok", "rate": "ok", "short": "ok",
    }  # fmt: skip
    assert "corrupt.wav: not an audio file or corrupt" in rows["corrupt"]["notes"]
    assert rows["long"]["notes"] == "lengths differ by 200 ms (more than 50 ms)"
    assert rows["silent"]["notes"] == "pesq_wb, si_sdr: reference is silent (peak below -100 dBFS)"
    assert rows["tiny"]["notes"].startswith("pesq_wb: PESQ failed: ") and rows["tiny"]["si_sdr"]
    assert rows["short"]["trimmed_samples"] == "10" and float(rows["short"]["si_sdr"]) > 60
    assert (rows["rate"]["sr_reference"], rows["rate"]["sr_estimate"]) == ("48000", "16000")
    assert float(rows["rate"]["si_sdr"]) > 20
    noisy = report.summary["systems"]["noisy"]
    assert (
        noisy["files"],
        noisy["ok"],
        noisy["partial"],
        noisy["failed"],
        noisy["trimmed"],
        noisy["rate_mismatch"],
    ) == (7, 3, 1, 3, 1, 1)
    assert noisy["metrics"]["si_sdr"]["count"] == 4 and noisy["metrics"]["pesq_wb"]["missing"] == 4


def test_enhanced_dir_is_matched_by_key(tmp_path, pairs):
    clean = make_noisy(1.0, sr=SR, seed=0)[0]
    write_audio(tmp_path / "enh" / "u0.wav", clean, SR)
    write_audio(tmp_path / "enh" / "stray.wav", clean, SR)
    report = evaluate(pairs, tmp_path / "out", enhanced_dir=tmp_path / "enh", metrics="si_sdr")
    rows = {(r["system"], r["key"]): r for r in read_csv(report.csv_path)}
    assert float(rows["enhanced", "u0"]["si_sdr"]) > 60 and rows["enhanced", "u0"]["estimate"] == str(
        tmp_path / "enh/u0.wav"
    )
    assert rows["enhanced", "u1"]["notes"] == f"no enhanced file with key 'u1' in {tmp_path / 'enh'}"
    assert report.summary["enhanced_unmatched"] == [
        {"path": str(tmp_path / "enh/stray.wav"), "reason": "no noisy file with key 'stray' in the set"}
    ]


def test_two_jobs_give_the_same_rows_as_one(tmp_path, tiny_model):
    for i in range(2):
        write_pair(tmp_path, f"u{i}.wav", seconds=0.5, seed=i)
    pairs = load_set("pairs", noisy_dir=tmp_path / "noisy", clean_dir=tmp_path / "clean")
    ckpt = save_model(tiny_model, tmp_path / "tiny.pt")
    one = evaluate(pairs, tmp_path / "one", model=ckpt, metrics="si_sdr")
    two = evaluate(pairs, tmp_path / "two", model=ckpt, metrics="si_sdr", jobs=2)
    rows_one = {(r["system"], r["key"]): r for r in read_csv(one.csv_path)}
    rows_two = {(r["system"], r["key"]): r for r in read_csv(two.csv_path)}
    assert rows_two.keys() == rows_one.keys() and len(rows_one) == 4
    for k, row in rows_two.items():  # one torch thread per worker: sums in another order
        assert float(row.pop("si_sdr")) == pytest.approx(float(rows_one[k].pop("si_sdr")), abs=1e-4)
        assert row == rows_one[k]
    assert two.summary["model"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert two.summary["model"]["path"] == str(ckpt)


def test_blind_set_gets_dnsmos_only(tmp_path):
    audio = make_noisy(4.6, sr=SR)[0]  # repeated once to 9.2 s: a single DNSMOS window
    write_audio(tmp_path / "noisy" / "a.wav", audio, SR, subtype="FLOAT")
    s = load_set("blind", noisy_dir=tmp_path / "noisy")
    report = evaluate(s, tmp_path / "out")
    [row] = read_csv(report.csv_path)
    assert report.summary["metrics"] == ["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"]
    assert float(row["dnsmos_ovrl"]) == pytest.approx(dnsmos(audio, SR).ovrl, abs=1e-6)
    assert row["sr_reference"] == "" and row["status"] == "ok"


def test_jobs_must_be_positive(tmp_path, pairs):
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        evaluate(pairs, tmp_path, jobs=0)


def test_a_crash_inside_the_model_fails_only_its_row(tmp_path, pairs, tiny_model, monkeypatch):
    def broken(model, audio, sr):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(evaluate_module, "enhance", broken)
    report = evaluate(pairs, tmp_path / "out", model=tiny_model, metrics="si_sdr")
    rows = read_csv(report.csv_path)
    assert {r["notes"] for r in rows if r["system"] == "model"} == {"unexpected error: RuntimeError: out of memory"}
    assert all(r["status"] == "ok" for r in rows if r["system"] == "noisy")
