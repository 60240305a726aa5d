"""The training Dataset (fixed-length items at the model's rate, from mixing and paired sources) and its DataLoader.

An item is a pure function of (seed, split, epoch, index): it draws from its own
`np.random.default_rng([seed, split_tag, epoch, index])`, so items do not depend on the worker
count, the order of reading, or the rank. The valid split ignores the epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dfn4core.config import DspConfig
from dfn4core.data.config import DataConfig, MixSource
from dfn4core.data.mixing import change_speed, draw_speed, mix, random_segment, speed_input_size
from dfn4core.data.paired import PairedSet
from dfn4core.data.sources import Audio, AudioRef, AudioStore, build_index
from dfn4core.errors import AudioError, ConfigError

logger = logging.getLogger(__name__)

SPLIT_TAGS = {"train": 0, "valid": 1}
ORDER_STREAM = 1  # extra entropy word: the per-epoch file order is drawn apart from any item
MAX_BAD_DRAWS = 20  # unreadable files tolerated in a row before an item fails
MAX_RIR_S = 4.0  # longer RIR tails are cut (they are far below the noise anyway)


class MixSet:
    """The indexed files of one MixSource and the items mixed from them.

    Args:
        source: speech, noise and RIR entries.
        cfg: segment length and augmentation settings.
        store: opens files at the model's rate through the cache.

    Raises:
        ConfigError: an entry is missing or an index ends up empty.
    """

    def __init__(self, source: MixSource, cfg: DataConfig, store: AudioStore):
        self.cfg, self.store = cfg, store
        self.speech = build_index(source.speech, "speech", store)
        self.noise = build_index(source.noise, "noise", store)
        self.rir = build_index(source.rir, "rir", store) if source.rir else ()

    @property
    def size(self) -> int:
        """Items this source contributes to an epoch by default: one per speech file."""
        return len(self.speech)

    def item(self, j: int, rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Speech file `j` mixed with a random noise (and RIR); see mixing.mix. With `cfg.p_speed`,
        the speech and the noise segment are each read long enough for their speed change first.

        Raises:
            AudioError: speech file `j` cannot be read, or too many noise/RIR files in a row.
        """
        cfg = self.cfg
        speech_audio = self.store.open(self.speech[j])
        sr = self.store.sr
        speech_speed, noise_speed = draw_speed(cfg, rng), draw_speed(cfg, rng)
        speech = random_segment(
            speech_audio, speed_input_size(length, speech_speed, sr), rng, sr, cfg.vad_threshold_db, cfg.min_speech_ratio
        )
        noise_audio = self._open_random(self.noise, rng)
        noise = random_segment(noise_audio, speed_input_size(length, noise_speed, sr), rng, sr, wrap=True)
        speech, noise = change_speed(speech, speech_speed, sr, length), change_speed(noise, noise_speed, sr, length)
        rir = None
        if self.rir:
            rir_audio = self._open_random(self.rir, rng)
            rir = rir_audio.read(0, min(rir_audio.frames, round(MAX_RIR_S * sr)))
        return mix(speech, noise, rir, cfg, rng, sr)

    def _open_random(self, refs: Sequence[AudioRef], rng: np.random.Generator) -> Audio:
        for _ in range(MAX_BAD_DRAWS):
            try:
                return self.store.open(refs[int(rng.integers(len(refs)))])
            except AudioError:
                continue
        raise AudioError(None, f"{MAX_BAD_DRAWS} unreadable files drawn in a row")


class SegmentDataset(Dataset):
    """Fixed-length items from several sources, shared out by weight.

    Items [0, len) are split into consecutive blocks, one per source, sized by weight; within a
    block, item i takes file (a * i + b) mod n of its source, with (a, b) drawn per epoch, so an
    epoch covers every file evenly. Build it with `build_dataset`.

    Args:
        cfg: the data config.
        split: "train" or "valid".
        sets: the sources' indexed files (MixSet or PairedSet).
        weights: one per set.
        num_items: items per epoch.
        segment_size: samples per item (`DataConfig.segment_size` at the model's rate).

    Shapes:
        item: {"noisy", "clean", "noise"}: float32 tensors (N,), N = segment_size.
    """

    def __init__(
        self,
        cfg: DataConfig,
        split: str,
        sets: Sequence[MixSet | PairedSet],
        weights: Sequence[float],
        num_items: int,
        segment_size: int,
    ):
        self.cfg, self.split, self.sets, self.segment_size = cfg, split, tuple(sets), segment_size
        self.ends = np.cumsum(_share(num_items, weights))
        self.epoch = 0

    def __len__(self) -> int:
        return int(self.ends[-1])

    def set_epoch(self, epoch: int) -> None:
        """Selects the epoch items are drawn for (the valid split ignores it)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = epoch if self.split == "train" else 0

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range 0..{len(self) - 1}")
        k = int(np.searchsorted(self.ends, index, side="right"))
        source = self.sets[k]
        local = index - (int(self.ends[k - 1]) if k else 0)
        a, b = _file_order(source.size, [self.cfg.seed, SPLIT_TAGS[self.split], self.epoch, k, ORDER_STREAM])
        j = (a * (local % source.size) + b) % source.size
        rng = np.random.default_rng([self.cfg.seed, SPLIT_TAGS[self.split], self.epoch, index])
        for _ in range(MAX_BAD_DRAWS):
            try:
                noisy, clean, noise = source.item(j, rng, self.segment_size)
                break
            except AudioError:  # already logged by the store; draw another file of the same source
                j = int(rng.integers(source.size))
        else:
            raise AudioError(None, f"{self.split} source {k}: {MAX_BAD_DRAWS} unreadable files drawn in a row")
        return {"noisy": torch.from_numpy(noisy), "clean": torch.from_numpy(clean), "noise": torch.from_numpy(noise)}


def _share(total: int, weights: Sequence[float]) -> list[int]:
    """Splits `total` items by weight (largest remainder), summing exactly to `total`."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [math.floor(e) for e in exact]
    for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _file_order(n: int, entropy: list[int]) -> tuple[int, int]:
    """(a, b) of the permutation i -> (a * i + b) mod n: a coprime to n, both drawn from `entropy`."""
    rng = np.random.default_rng(entropy)
    b = int(rng.integers(n))
    while True:
        a = int(rng.integers(1, n)) if n > 1 else 1
        if math.gcd(a, n) == 1:
            return a, b


def build_dataset(cfg: DataConfig, split: str, dsp: DspConfig) -> SegmentDataset:
    """Indexes the sources of `split` and returns its Dataset.

    Args:
        cfg: the data config.
        split: "train" or "valid".
        dsp: the model's signal chain: items are at its rate, whole hops long.

    Returns:
        A SegmentDataset of `split.num_items` items (default: one per speech file and per pair).

    Raises:
        ConfigError: settings that do not fit `dsp`, no sources for the split, a missing folder or file, an empty index, or an
            HDF5 source without h5py installed.
    """
    cfg.check_rate(dsp)
    split_cfg = cfg.split(split)
    if not split_cfg.sources:
        raise ConfigError(f"no {split} data configured: add [[{split}.mix]] or [[{split}.paired]] sources")
    store = AudioStore(cfg.cache_dir, cfg.channel, sr=dsp.sr)
    sets: list[MixSet | PairedSet] = [MixSet(s, cfg, store) for s in split_cfg.mix]
    sets += [PairedSet(p, store) for p in split_cfg.paired]
    weights = [s.weight for s in split_cfg.sources]
    num_items = split_cfg.num_items or sum(s.size for s in sets)
    segment_size = cfg.segment_size(dsp)
    logger.info("%s data: %d source(s), %d items of %d samples", split, len(sets), num_items, segment_size)
    return SegmentDataset(cfg, split, sets, weights, num_items, segment_size)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    seed: int,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader over `dataset` for one epoch; with world_size > 1, rank `rank`'s disjoint shard.

    A train dataset is shuffled (order from seed and epoch) and incomplete batches are dropped;
    a valid dataset keeps its order and every batch. With several ranks the item count is cut
    to a multiple of world_size, so shards are disjoint and equally long. Call it again (or
    `set_epoch` on both the dataset and `loader.sampler`) for the next epoch.

    Args:
        dataset: a SegmentDataset (any map-style Dataset works).
        batch_size: items per batch.
        num_workers: loader processes; 0 reads in the calling process.
        seed: seed of the shuffle order.
        epoch: epoch to draw items and order for.
        rank: this process's rank.
        world_size: number of processes.

    Returns:
        The DataLoader; batches are dicts of (B, N) float32 tensors.
    """
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    train = getattr(dataset, "split", "train") == "train"
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=train, seed=seed, drop_last=world_size > 1
    )
    sampler.set_epoch(epoch)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=train,
        generator=torch.Generator().manual_seed(seed),
    )
