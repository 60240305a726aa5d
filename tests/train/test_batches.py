import pytest

from dfn4core import ConfigError
from dfn4core.train.batches import EpochBatches, steps_per_epoch
from dfn4core.train.distributed import DistContext


def test_order_depends_only_on_seed_and_epoch():
    a = EpochBatches(40, 4, seed=1, epoch=0, first=0, dist=DistContext()).batches
    assert a == EpochBatches(40, 4, seed=1, epoch=0, first=0, dist=DistContext()).batches
    assert a != EpochBatches(40, 4, seed=1, epoch=1, first=0, dist=DistContext()).batches
    assert sorted(i for b in a for i in b) == list(range(40))


def test_starting_mid_epoch_continues_the_same_order():
    whole = EpochBatches(40, 4, seed=3, epoch=2, first=0, dist=DistContext()).batches
    assert EpochBatches(40, 4, seed=3, epoch=2, first=6, dist=DistContext()).batches == whole[6:]


def test_ranks_get_disjoint_shards_of_each_step():
    ranks = [EpochBatches(42, 3, seed=0, epoch=0, first=0, dist=DistContext(r, 2)).batches for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 7
    single = EpochBatches(42, 6, seed=0, epoch=0, first=0, dist=DistContext()).batches
    for step in range(7):
        assert ranks[0][step] + ranks[1][step] == single[step]


def test_too_small_a_set_is_refused():
    with pytest.raises(ConfigError, match="fewer than one batch"):
        steps_per_epoch(3, 4, 1)
