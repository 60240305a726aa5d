"""SelectiveScan (hand-written backward) equals the autograd reference loop in values and gradients."""

import pytest
import torch

from dfn4core.model import scan
from dfn4core.model.scan import SelectiveScan, discretize, reference_scan

BATCH, FRAMES, D_INNER, D_STATE = 2, 37, 8, 4  # 37 frames: several blocks and a ragged last one


def _inputs(dtype=torch.float32, frames=FRAMES, dt_shift=-2.0):
    """dt, A, B, C, u, h0 with gradients, as Mamba._scan passes them."""
    gen = torch.Generator().manual_seed(0)
    dt = torch.nn.functional.softplus(torch.randn(BATCH, frames, D_INNER, generator=gen) + dt_shift)
    a = -torch.arange(1.0, D_STATE + 1).repeat(D_INNER, 1)
    b, c = (torch.randn(BATCH, frames, D_STATE, generator=gen) for _ in range(2))
    u, h0 = torch.randn(BATCH, frames, D_INNER, generator=gen), torch.randn(BATCH, D_INNER, D_STATE, generator=gen)
    return [t.to(dtype).requires_grad_() for t in (dt, a, b, c, u, h0)]


def _reference(dt, a, b, c, u, h0):
    return reference_scan(*discretize(dt, a, b, u), c, h0)


def _values_and_grads(fn, inputs, use_y=True, use_h=True):
    y, h = fn(*inputs)
    weights = torch.Generator().manual_seed(1)
    loss = 0
    if use_y:
        loss = loss + (y * torch.randn(y.shape, generator=weights)).sum()
    if use_h:
        loss = loss + (h * torch.randn(h.shape, generator=weights)).sum()
    grads = torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)
    return (y, h), grads


@pytest.fixture(params=["default", "small"])
def blocks(request, monkeypatch):
    """Default sizes, and tiny blocks and pieces (one batch row each) to exercise every boundary."""
    if request.param == "small":
        monkeypatch.setattr(scan, "BLOCK_FRAMES", 4)
        monkeypatch.setattr(scan, "PARALLEL_GRAIN", 2)


def test_gradcheck(blocks):
    inputs = _inputs(torch.float64, frames=6)
    assert torch.autograd.gradcheck(SelectiveScan.apply, inputs)


@pytest.mark.parametrize("use_y, use_h", [(True, True), (True, False), (False, True)])
def test_matches_reference(blocks, use_y, use_h):
    inputs = _inputs()
    outputs, grads = _values_and_grads(SelectiveScan.apply, inputs, use_y, use_h)
    ref_outputs, ref_grads = _values_and_grads(_reference, inputs, use_y, use_h)
    for out, ref in zip(outputs, ref_outputs):
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    for name, grad, ref in zip(("dt", "a", "b", "c", "u", "h0"), grads, ref_grads):
        torch.testing.assert_close(grad, ref, atol=1e-5, rtol=1e-4, msg=name)


def test_large_dt_is_finite():
    inputs = _inputs(dt_shift=10.0)
    outputs, grads = _values_and_grads(SelectiveScan.apply, inputs)
    _, ref_grads = _values_and_grads(_reference, inputs)
    assert all(torch.isfinite(t).all() for t in (*outputs, *grads))
    for grad, ref in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref, atol=1e-5, rtol=1e-4)
