import pytest
import torch

from dfn4core import DFN4, CheckpointError, ModelConfig, load_model, save_model
from dfn4core.model.checkpoint import FORMAT_VERSION, checkpoint_dict


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors"])
def test_round_trip_is_exact(tmp_path, name):
    model = DFN4(ModelConfig.tiny())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_model(model, tmp_path / name)
    loaded = load_model(path)
    assert loaded.cfg == model.cfg and not loaded.training
    for (n, a), (m, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert n == m and torch.equal(a, b)
    wave = 0.1 * torch.randn(1, 480 * 4)
    with torch.no_grad():
        assert torch.equal(model.eval()(wave).wave, loaded(wave).wave)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt: no such file"):
        load_model(tmp_path / "nope.pt")


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a checkpoint", b"PK\x03\x04broken zip"])
def test_corrupt_file_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pt: not a readable checkpoint"):
        load_model(path)


def test_loading_never_runs_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "model_config": {}, "state_dict": {}, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="evil.pt") as err:
        load_model(path)
    # Plainly refused, never with torch's advice to load it with weights_only=False.
    assert "not a dfn4 checkpoint, and NOT loaded: it holds Python objects (exec), which could run code" in str(err.value)
    assert "weights_only" not in str(err.value) and "Re-running" not in str(err.value)


def test_wrong_content_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a dfn4 checkpoint"):
        load_model(path)


def test_newer_format_is_refused(tmp_path):
    payload = checkpoint_dict(DFN4(ModelConfig.tiny()))
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_model(tmp_path / "new.pt")


def test_weights_that_do_not_fit_the_config(tmp_path):
    payload = checkpoint_dict(DFN4(ModelConfig.tiny()))
    payload["model_config"] = ModelConfig.lite().to_dict()
    torch.save(payload, tmp_path / "mixed.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(tmp_path / "mixed.pt")


def test_unknown_config_key_is_refused(tmp_path):
    payload = checkpoint_dict(DFN4(ModelConfig.tiny()))
    payload["model_config"]["bogus"] = 1
    torch.save(payload, tmp_path / "cfg.pt")
    with pytest.raises(CheckpointError, match="bogus"):
        load_model(tmp_path / "cfg.pt")


def test_safetensors_without_metadata(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="without dfn4 metadata"):
        load_model(tmp_path / "plain.safetensors")


def test_a_failed_save_keeps_the_existing_file(tmp_path, monkeypatch):
    path = save_model(DFN4(ModelConfig.tiny()), tmp_path / "keep.pt")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_model(DFN4(ModelConfig.tiny()), path)
    assert path.read_bytes() == before and not list(tmp_path.glob(".*"))  # no temporary file left
