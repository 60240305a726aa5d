"""The recipe's configs load under today's schema, so a renamed option fails here, not hours into a run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from dfn4core.data.config import load_data_config
from dfn4core.train.config import load_train_config

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TRAIN = sorted(RECIPES.glob("*/train*.toml"))
DATA = sorted(RECIPES.glob("*/data*.toml"))


def load_recipe(name: str) -> ModuleType:
    """recipes/default/<name>.py as a module, its folder on sys.path while it loads (the scripts
    import their neighbours)."""
    folder = str(RECIPES / "default")
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(name, RECIPES / "default" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


def test_the_recipe_has_configs():
    assert TRAIN and DATA


@pytest.mark.parametrize("path", TRAIN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_train_config_loads(path: Path):
    cfg = load_train_config(path)
    assert cfg.steps > 0 and cfg.batch_size > 0


@pytest.mark.parametrize("path", DATA, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_data_config_loads(path: Path):
    cfg = load_data_config(path)
    assert cfg.train.mix or cfg.train.paired, f"{path.name} has no training sources"


def test_dnsmos_recipe_scores_one_window_of_ovrl():
    cfg = load_train_config(RECIPES / "default" / "train_full_dnsmos.toml")
    assert cfg.loss.weights.dnsmos == 5.0
    assert cfg.loss.dnsmos.mix == (0.0, 0.0, 1.0) and cfg.loss.dnsmos.max_windows == 1
    assert cfg.freeze_norm and cfg.model["temporal"] == "gru"


def test_gpu_distillation_recipe_is_warm_starts_stage_with_the_si_sdr_term():
    """train_lite_distill_gpu.toml is warm_start.py's end-to-end stage at GPU size: the teacher's
    output the main target and the SI-SDR against the clean speech the only task term, BatchNorms
    frozen, a GRU lite."""
    import dataclasses

    cfg = load_train_config(RECIPES / "default" / "train_lite_distill_gpu.toml")
    task = {k: v for k, v in dataclasses.asdict(cfg.loss.weights).items() if v != 0.0}
    assert task == {"si_sdr": pytest.approx(0.02)}
    assert cfg.distill.weights.emb == 0.0 and min(cfg.distill.weights.spec, cfg.distill.weights.df) > 0
    assert cfg.freeze_norm and cfg.model["temporal"] == "gru" and cfg.variant == "lite"
    assert cfg.optim.weight_decay == 0.0 and cfg.optim.lr_min == pytest.approx(0.01 * cfg.optim.lr)


@pytest.mark.slow
def test_warm_start_cuts_and_fits_a_lite_from_the_full(tmp_path, real_dir):
    """recipes/default/warm_start.py end to end on a few real recordings: the lite is cut from the
    shipped full, fitted, distilled and written; an unavailable --device stops it first."""
    import json
    import shutil

    warm_start = load_recipe("warm_start")
    for kind, pattern in (("speech", "clean_*.wav"), ("noise", "noise_*.flac")):
        (tmp_path / kind).mkdir()
        for f in real_dir.glob(pattern):
            shutil.copy(f, tmp_path / kind)
    mix = f'speech = ["{tmp_path / "speech"}"]\nnoise = ["{tmp_path / "noise"}"]\n'
    (tmp_path / "data.toml").write_text(
        f'seed = 0\nsegment_s = 1.0\ncache_dir = "{tmp_path / "cache"}"\nsnrs_db = [0, 5]\n'
        f"[train]\nnum_items = 20\n[[train.mix]]\n{mix}[valid]\nnum_items = 2\n[[valid.mix]]\n{mix}"
    )
    args = ["--teacher", "full", "--variant", "lite", "--temporal", "gru", "--data", str(tmp_path / "data.toml"),
            "--steps", "2", "--distill-steps", "2", "--batch-size", "2", "--out", str(tmp_path / "lite.pt")]  # fmt: skip
    assert warm_start.main([*args, "--device", "cpu"]) == 0
    summary = json.loads((tmp_path / "lite.json").read_text())
    assert summary["fit_steps"] == 2 and summary["distill_steps"] == 2 and (tmp_path / "lite.pt").is_file()
    from dfn4core.model.checkpoint import load_model

    assert load_model(tmp_path / "lite.pt").cfg.emb_dim == 192
    if not __import__("torch").cuda.is_available():
        with pytest.raises(SystemExit, match="CUDA is not available"):
            warm_start.main([*args, "--device", "cuda"])


def test_pack_data_packs_a_data_configs_training_manifests(tmp_path):
    """pack_corpus.py pack-data: every CSV manifest of the training mixes as Opus/FLAC files with
    relative paths, at most --max-hours of each, and a data.toml without a validation set that loads
    and mixes."""
    import csv

    import numpy as np
    import soundfile as sf

    from dfn4core.config import DspConfig
    from dfn4core.data.loader import build_dataset

    pack_corpus = load_recipe("pack_corpus")
    rng = np.random.default_rng(0)
    corpus = tmp_path / "corpus"
    for kind, count in (("speech", 3), ("noise", 2)):
        (corpus / kind).mkdir(parents=True)
        with open(corpus / f"train_{kind}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "source", "seconds", "sr", "category"])
            writer.writeheader()
            for i in range(count):
                sf.write(corpus / kind / f"{i}.wav", 0.1 * rng.standard_normal(24000).astype(np.float32), 16000)
                writer.writerow({"path": f"{kind}/{i}.wav", "source": "test", "seconds": 1.5, "sr": 16000, "category": "x"})
    mix = 'speech = ["corpus/train_speech.csv"]\nnoise = ["corpus/train_noise.csv"]\n'
    data = tmp_path / "data.toml"
    data.write_text(f'seed = 0\nsegment_s = 1.0\ncache_dir = "cache"\n[train]\nnum_items = 4\n[[train.mix]]\n{mix}'
                    f"[valid]\nnum_items = 2\n[[valid.mix]]\n{mix}")  # fmt: skip
    pack_corpus.main(["pack-data", "--data", str(data), "--out", str(tmp_path / "pack"), "--max-hours", str(2.9 / 3600)])
    pack = tmp_path / "pack"
    with open(pack / "train_speech.csv", newline="") as f:
        speech = list(csv.DictReader(f))
    assert len(speech) == 2  # 2 x 1.5 s reach the 2.9 s cap; the third file is left out
    assert all((pack / row["path"]).is_file() and row["path"].endswith(".opus") and row["category"] == "x" for row in speech)
    cfg = load_data_config(pack / "data.toml")
    assert cfg.valid is None or not (cfg.valid.mix or cfg.valid.paired)
    item = build_dataset(cfg, "train", DspConfig())[0]
    assert item["noisy"].shape == item["clean"].shape and item["noisy"].abs().max() > 0
    (tmp_path / "folder.toml").write_text('[train]\nnum_items = 1\n[[train.mix]]\nspeech = ["corpus/speech"]\nnoise = ["corpus/noise"]\n')
    with pytest.raises(SystemExit, match="only CSV manifests"):
        pack_corpus.main(["pack-data", "--data", str(tmp_path / "folder.toml"), "--out", str(tmp_path / "pack2")])


def test_drop_views_writes_the_model_without_them_and_refuses_one_without(tmp_path, capsys):
    """recipes/default/drop_views.py on a tiny checkpoint: the result has no views and, its attention
    output being zero at init, the same output as the model on a 16 kHz stereo recording."""

    import numpy as np
    import soundfile as sf

    from dfn4core.config import ModelConfig
    from dfn4core.model.checkpoint import load_model, save_model
    from dfn4core.model.dfnet4 import DFN4

    drop_views = load_recipe("drop_views")
    save_model(DFN4(ModelConfig.tiny()), tmp_path / "tiny.safetensors")
    sf.write(tmp_path / "rec.wav", 0.1 * np.random.default_rng(0).standard_normal((8000, 2)), 16000)
    args = [str(tmp_path / "tiny.safetensors"), "-o", str(tmp_path / "nv.safetensors"), "--check", str(tmp_path / "rec.wav")]
    assert drop_views.main(args) == 0
    assert "from the model's" in capsys.readouterr().out
    model = load_model(tmp_path / "nv.safetensors")
    assert not model.cfg.views and not hasattr(model.encoder, "attention")
    with pytest.raises(SystemExit, match="no waveform and phase views"):
        drop_views.main([str(tmp_path / "nv.safetensors"), "-o", str(tmp_path / "again.safetensors")])
    assert not (tmp_path / "again.safetensors").exists()
    # --erb-temporal: from the model without views, then from one with both at once.
    for source in ("nv", "tiny"):
        out = tmp_path / f"{source}_erb0.safetensors"
        assert drop_views.main([str(tmp_path / f"{source}.safetensors"), "--erb-temporal", "-o", str(out)]) == 0
        lean = load_model(out)
        assert not lean.cfg.views and lean.cfg.erb_dec_layers == 0 and len(lean.erb_decoder.temporal.layers) == 0
    with pytest.raises(SystemExit, match="no temporal layers to drop"):
        drop_views.main([str(tmp_path / "nv_erb0.safetensors"), "--erb-temporal", "-o", str(tmp_path / "x.safetensors")])


def test_distill_noise_writes_babble_of_training_voices_and_generated_noise_that_mixes(tmp_path):
    """distill_noise.py: each kind's files (the length asked, peak 0.5, the same for the same seed)
    and a manifest per kind that a data config mixes from; babble is made of the training
    manifest's voices (relative paths resolved against the manifest)."""
    import csv

    import numpy as np
    import soundfile as sf

    from dfn4core.config import DspConfig
    from dfn4core.data.loader import build_dataset

    distill_noise = load_recipe("distill_noise")
    corpus, rng = tmp_path / "corpus", np.random.default_rng(0)
    (corpus / "manifests").mkdir(parents=True)
    (corpus / "speech").mkdir()
    with open(corpus / "manifests" / "train_real_speech.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "source", "voice", "seconds", "sr"])
        writer.writeheader()
        for i in range(6):
            sf.write(corpus / "speech" / f"{i}.wav", 0.1 * rng.standard_normal(8000).astype(np.float32), 16000)
            writer.writerow({"path": f"../speech/{i}.wav", "source": "t", "voice": f"v{i % 3}", "seconds": 0.5, "sr": 16000})
    args = ["--corpus", str(corpus), "--files", "2", "--seconds", "0.5"]
    assert distill_noise.main(args) == 0
    first = {k: sf.read(corpus / "distill_noise" / k / f"{k}_0001.wav")[0] for k in distill_noise.KINDS}
    for x in first.values():
        assert x.shape == (24000,) and np.abs(x).max() == pytest.approx(0.5, abs=1e-3)
    for path in (corpus / "distill_noise").rglob("*.wav"):
        path.unlink()
    distill_noise.main(args)
    for kind, x in first.items():
        np.testing.assert_array_equal(sf.read(corpus / "distill_noise" / kind / f"{kind}_0001.wav")[0], x)
    noise = ", ".join(f'"{corpus}/manifests/distill_noise_{k}.csv"' for k in distill_noise.KINDS)
    data = tmp_path / "data.toml"
    data.write_text(f'segment_s = 0.5\n[train]\nnum_items = 2\n[[train.mix]]\nspeech = ["{corpus}/manifests/train_real_speech.csv"]\n'
                    f"noise = [{noise}]\n")  # fmt: skip
    item = build_dataset(load_data_config(data), "train", DspConfig())[1]
    assert item["noise"].abs().max() > 0
