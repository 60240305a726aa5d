"""Dataset and DataLoader: shapes, determinism across workers, epochs, weights and shards."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dfn4core.config import DspConfig
from dfn4core.data import DataConfig, MixSource, SplitConfig, build_dataset, make_loader
from dfn4core.data.loader import _file_order, _share
from dfn4core.errors import ConfigError

DSP = DspConfig()  # the model's signal chain: items at its rate


def batches(ds, num_workers, epoch=0, batch_size=4):
    return list(make_loader(ds, batch_size=batch_size, num_workers=num_workers, seed=7, epoch=epoch))


def test_items_have_the_right_shape_dtype_and_are_finite(mix_cfg):
    ds = build_dataset(mix_cfg, "train", DSP)
    assert len(ds) == 8 and mix_cfg.segment_size(DSP) == 24_000
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"noisy", "clean", "noise"}
        for v in item.values():
            assert v.shape == (24_000,) and v.dtype == torch.float32 and torch.isfinite(v).all()
        assert torch.allclose(item["noise"], item["noisy"] - item["clean"], atol=1e-6, rtol=0)
    with pytest.raises(IndexError):
        ds[8]


def test_speed_changes_give_whole_items_unlike_the_unchanged_ones(mix_cfg):
    plain = build_dataset(mix_cfg, "train", DSP)
    sped = build_dataset(dataclasses.replace(mix_cfg, p_speed=1.0, speed_range=(0.85, 1.15)), "train", DSP)
    for i in range(len(sped)):
        item = sped[i]
        assert all(v.shape == (24_000,) and torch.isfinite(v).all() for v in item.values())
        assert torch.allclose(item["noise"], item["noisy"] - item["clean"], atol=1e-6, rtol=0)
        assert not torch.equal(item["clean"], plain[i]["clean"])
    assert torch.equal(sped[2]["noisy"], sped[2]["noisy"])  # still a function of (seed, epoch, index)


def test_same_seed_epoch_index_gives_the_same_item_with_0_and_2_workers(mix_cfg):
    ds = build_dataset(mix_cfg, "train", DSP)
    serial, parallel = batches(ds, 0), batches(ds, 2)
    assert len(serial) == 2 and all(b["noisy"].shape == (4, 24_000) for b in serial)
    for a, b in zip(serial, parallel):
        for key in a:
            assert torch.equal(a[key], b[key])
    assert torch.equal(build_dataset(mix_cfg, "train", DSP)[3]["noisy"], ds[3]["noisy"])  # a fresh index, same item


def test_a_new_epoch_gives_new_items_but_valid_is_fixed(mix_cfg):
    train = build_dataset(mix_cfg, "train", DSP)
    first = train[2]["noisy"].clone()
    train.set_epoch(1)
    assert not torch.equal(train[2]["noisy"], first)
    train.set_epoch(0)
    assert torch.equal(train[2]["noisy"], first)
    valid = build_dataset(mix_cfg, "valid", DSP)
    fixed = [valid[i]["noisy"] for i in range(len(valid))]
    valid.set_epoch(5)
    assert all(torch.equal(valid[i]["noisy"], f) for i, f in enumerate(fixed))
    assert torch.equal(batches(valid, 0, epoch=3, batch_size=4)[0]["noisy"], torch.stack(fixed))


def test_distributed_shards_are_disjoint_and_cover_the_epoch(mix_cfg):
    ds = build_dataset(mix_cfg, "train", DSP)
    shards = [list(make_loader(ds, 1, 0, seed=1, epoch=2, rank=r, world_size=2).sampler) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 4
    assert sorted(shards[0] + shards[1]) == list(range(8))
    assert list(make_loader(ds, 1, 0, seed=1, epoch=3).sampler) != list(make_loader(ds, 1, 0, seed=1, epoch=2).sampler)


def test_each_speech_file_is_used_once_per_epoch(mix_cfg, monkeypatch):
    cfg = dataclasses.replace(mix_cfg, train=dataclasses.replace(mix_cfg.train, num_items=None))
    ds = build_dataset(cfg, "train", DSP)
    mix_set = ds.sets[0]
    used = []
    monkeypatch.setattr(mix_set, "item", lambda j, rng, n: used.append(j) or (np.zeros(n, np.float32),) * 3)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        used.clear()
        [ds[i] for i in range(len(ds))]
        assert sorted(used) == [0, 1, 2]


def test_sources_share_items_by_weight(corpus, tmp_path):
    a = MixSource(speech=(corpus["speech"],), noise=(corpus["noise"],), weight=3.0)
    b = MixSource(speech=(corpus["speech"] / "a.wav",), noise=(corpus["noise"],), weight=1.0)
    ds = build_dataset(DataConfig(train=SplitConfig(mix=(a, b), num_items=10), segment_s=0.1), "train", DSP)
    assert ds.ends.tolist() == [8, 10] and _share(10, [3.0, 1.0]) == [8, 2]
    assert _share(7, [1, 1, 1]) == [3, 2, 2] and sum(_share(1000, [0.3, 0.3, 0.4])) == 1000


@pytest.mark.parametrize("n", [1, 2, 7, 12])
def test_file_order_is_a_permutation(n):
    a, b = _file_order(n, [1, 2, 3])
    assert sorted((a * i + b) % n for i in range(n)) == list(range(n))


def test_unreadable_speech_at_read_time_draws_another_file(mix_cfg, caplog):
    ds = build_dataset(mix_cfg, "train", DSP)
    victim = ds.sets[0].speech[0].path
    victim.write_bytes(b"corrupted after indexing")
    items = [ds[i] for i in range(len(ds))]
    assert all(torch.isfinite(it["noisy"]).all() for it in items)
    assert victim.name in caplog.text


def test_no_sources_is_a_config_error(mix_cfg):
    with pytest.raises(ConfigError, match=r"no valid data configured"):
        build_dataset(dataclasses.replace(mix_cfg, valid=SplitConfig()), "valid", DSP)
    with pytest.raises(ConfigError, match="split must be"):
        build_dataset(mix_cfg, "test", DSP)
