import pytest
import torch
from safetensors import safe_open

from dfn4core import DFN4, CheckpointError, ModelConfig, load_model, save_model
from dfn4core.model.checkpoint import CHECKSUM_KEY, FORMAT_VERSION, checkpoint_dict


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


@pytest.mark.parametrize(
    "key,value,match", [("bogus", 1, "bogus"), ("emb_dim", "big", r"invalid model config \(emb_dim must be an integer, got 'big'\)")]
)
def test_unknown_or_mistyped_config_key_is_refused(tmp_path, key, value, match):
    payload = checkpoint_dict(DFN4(ModelConfig.tiny()))
    payload["model_config"][key] = value
    torch.save(payload, tmp_path / "cfg.pt")
    with pytest.raises(CheckpointError, match=match):
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


def _flip_one_bit(path, tensor: torch.Tensor) -> None:
    """Flips the lowest bit of the first byte of `tensor`'s data inside the file at `path`."""
    data = bytearray(path.read_bytes())
    at = data.find(tensor.contiguous().numpy().tobytes())
    assert at >= 0, "tensor bytes not found in the file"
    data[at] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors"])
def test_a_flipped_bit_in_the_weights_is_refused(tmp_path, name):
    model = DFN4(ModelConfig.tiny())
    path = save_model(model, tmp_path / name)
    largest = max(model.state_dict().values(), key=lambda t: t.numel())
    _flip_one_bit(path, largest)
    damaged = path.read_bytes()
    with pytest.raises(CheckpointError, match=f"{name}: weights do not match their checksum"):
        load_model(path)
    assert path.read_bytes() == damaged


def test_a_checkpoint_without_checksum_loads_as_before(tmp_path):
    model = DFN4(ModelConfig.tiny())
    payload = checkpoint_dict(model)
    del payload[CHECKSUM_KEY]  # written by dfn4 before checksums
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_a_config_that_does_not_fit_its_weights_fails_before_allocating(tmp_path):
    import json
    import resource

    from safetensors.torch import load_file, save_file

    path = save_model(DFN4(ModelConfig.tiny()), tmp_path / "tiny.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    config = json.loads(meta["model_config"])
    config["emb_dim"] = 1_000_000  # a real model of this config needs gigabytes
    save_file(load_file(path), path, metadata={**meta, "model_config": json.dumps(config)})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=r"weights do not match the stored config \(.* has shape"):
        load_model(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: no big allocation
