import socket

import pytest
import torch
import torch.multiprocessing as mp

from dfn4core.train.config import OptimConfig, TrainConfig
from dfn4core.train.distributed import DistContext
from dfn4core.train.runner import train

from corpus import corpus_config, write_corpus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, root: str) -> None:
    from pathlib import Path

    torch.set_num_threads(1)
    dirs = {n: Path(root) / "corpus" / n for n in ("speech", "noise", "valid_speech", "valid_noise")}
    data = corpus_config(dirs, train_items=8, valid_items=2, segment_s=0.5, p_bandlimit=0.0)
    cfg = TrainConfig(variant="tiny", steps=2, batch_size=2, num_workers=0, gan_start_step=1, valid_every=0,
                      ckpt_every=2, optim=OptimConfig(warmup_steps=1))  # fmt: skip
    dist = DistContext(rank=rank, world_size=world, backend="gloo")
    result = train(cfg, data, Path(root) / "run", dist=dist, init_method=f"tcp://127.0.0.1:{port}")
    params = {k: v for k, v in result.model.named_parameters()}
    torch.save(params, Path(root) / f"rank{rank}.pt")


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    write_corpus(tmp_path / "corpus")
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()  # written by rank 0 only
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], a[k]) for k in a)  # rank 0 saved what every rank trained


def test_dist_context_defaults():
    ctx = DistContext()
    assert not ctx.enabled and ctx.is_main
    assert DistContext(rank=1, world_size=2).enabled and not DistContext(rank=1, world_size=2).is_main
