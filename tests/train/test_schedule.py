import math

import pytest
import torch

from dfn4core.train.schedule import WarmupCosine, make_scheduler


def test_warmup_then_cosine_to_the_floor():
    f = WarmupCosine(warmup_steps=10, total_steps=110, floor=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.55)
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    values = [f(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_scheduler_state_round_trips():
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt, 5, 50, 0.0)
    for _ in range(7):
        opt.step()
        sched.step()
    opt2 = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = make_scheduler(opt2, 5, 50, 0.0)
    sched2.load_state_dict(sched.state_dict())
    assert math.isclose(sched2.get_last_lr()[0], sched.get_last_lr()[0])
