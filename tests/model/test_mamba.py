"""Mamba scan paths agree with the reference scan and with step(); blocks stream like they run offline."""

import importlib.util
import logging
import math

import pytest
import torch

from dfn4core.errors import ConfigError
from dfn4core.model.mamba import GRUBlock, Mamba, MambaBlock, SqueezedMamba

D_MODEL, FRAMES, BATCH = 16, 70, 2  # 70 frames: the chunked scan gets a ragged last chunk
ATOL = 1e-5


def _close(actual, expected, atol=ATOL):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


def _random_state(model, batch=BATCH):
    return {k: torch.randn_like(v) for k, v in model.init_state(batch).items()}


def _steps(model, x, state):
    ys = []
    for x_t in x.unbind(1):
        y_t, state = model.step(x_t, state)
        ys.append(y_t)
    return torch.stack(ys, dim=1), state


def _assert_states_close(actual, expected):
    assert list(actual) == list(expected)
    for name in expected:
        _close(actual[name], expected[name])


@pytest.fixture
def mamba():
    return Mamba(D_MODEL).eval()


@pytest.fixture
def x():
    return torch.randn(BATCH, FRAMES, D_MODEL)


def test_parameters_match_mamba_ssm():
    model = Mamba(D_MODEL, d_state=16, d_conv=4, expand=2)
    d_inner, dt_rank = 32, 1
    expected = {
        "in_proj.weight": (2 * d_inner, D_MODEL),
        "conv1d.weight": (d_inner, 1, 4),
        "conv1d.bias": (d_inner,),
        "x_proj.weight": (dt_rank + 2 * 16, d_inner),
        "dt_proj.weight": (d_inner, dt_rank),
        "dt_proj.bias": (d_inner,),
        "A_log": (d_inner, 16),
        "D": (d_inner,),
        "out_proj.weight": (D_MODEL, d_inner),
    }
    assert {k: tuple(v.shape) for k, v in model.named_parameters()} == expected


def test_init_matches_mamba_ssm():
    model = Mamba(D_MODEL, dt_min=0.001, dt_max=0.1)
    _close(model.A_log, torch.log(torch.arange(1.0, 17.0)).expand(32, 16))
    _close(model.D, torch.ones(32))
    dt = torch.nn.functional.softplus(model.dt_proj.bias)
    assert dt.min() >= 0.001 - 1e-6 and dt.max() <= 0.1 + 1e-6
    assert model.dt_rank == math.ceil(D_MODEL / 16)


@pytest.mark.parametrize("scan", ["reference", "fused", "chunked"])
@pytest.mark.parametrize("from_zero", [True, False])
@torch.no_grad()
def test_scan_matches_reference_and_steps(mamba, x, scan, from_zero):
    state = None if from_zero else _random_state(mamba)
    start = mamba.init_state(BATCH) if from_zero else state
    y, new_state = mamba(x, state, scan=scan)
    y_ref, ref_state = mamba(x, state, scan="reference")
    y_step, step_state = _steps(mamba, x, start)
    _close(y, y_ref)
    _close(y, y_step)
    _assert_states_close(new_state, ref_state)
    _assert_states_close(new_state, step_state)


@pytest.mark.parametrize("scan", ["reference", "fused", "chunked"])
@pytest.mark.parametrize("frames", [1, 2, 33])
@torch.no_grad()
def test_halves_carry_state(mamba, x, scan, frames):
    y, state = mamba(x, scan=scan)
    y1, mid = mamba(x[:, :frames], scan=scan)
    y2, end = mamba(x[:, frames:], mid, scan=scan)
    _close(torch.cat((y1, y2), dim=1), y)
    _assert_states_close(end, state)


@pytest.mark.parametrize("path", ["chunked", "fused"])
def test_gradients_equal_reference(mamba, x, path):
    start = _random_state(mamba)
    grads = {}
    for scan in ("reference", path):
        mamba.zero_grad()
        x_in, ssm_in = x.clone().requires_grad_(), start["ssm"].clone().requires_grad_()
        y, state = mamba(x_in, {"conv": start["conv"], "ssm": ssm_in}, scan=scan)
        (y.square().sum() + state["ssm"].square().sum()).backward()
        grads[scan] = {"x": x_in.grad, "ssm": ssm_in.grad, **{k: p.grad.clone() for k, p in mamba.named_parameters()}}
    for name, grad in grads["reference"].items():
        assert torch.isfinite(grad).all(), name
        torch.testing.assert_close(grads[path][name], grad, atol=1e-5, rtol=1e-5, msg=name)


@torch.no_grad()
def test_large_dt_is_finite_and_paths_agree(mamba, x):
    mamba.dt_proj.bias.fill_(10.0)
    state = _random_state(mamba)
    y_ref, ref_state = mamba(x, state, scan="reference")
    y_chunk, chunk_state = mamba(x, state, scan="chunked")
    y_step, step_state = _steps(mamba, x, state)
    assert torch.isfinite(y_ref).all() and torch.isfinite(ref_state["ssm"]).all()
    _close(y_chunk, y_ref)
    _close(y_step, y_ref)
    _assert_states_close(chunk_state, ref_state)
    _assert_states_close(step_state, ref_state)


def test_auto_picks_fused_with_grad_on_cpu_and_logs_once(mamba, x, caplog):
    caplog.set_level(logging.INFO, logger="dfn4core.model.mamba")
    y_auto, _ = mamba(x)
    mamba(x)
    with torch.no_grad():
        y_ref, _ = mamba(x)
    _close(y_auto, y_ref)
    messages = [r.getMessage() for r in caplog.records if "scan path" in r.getMessage()]
    assert messages == ["Mamba scan path: fused", "Mamba scan path: reference"]


def test_kernel_on_cpu_raises(mamba, x):
    with pytest.raises(ConfigError, match="kernel"):
        mamba(x, scan="kernel")
    with pytest.raises(ConfigError, match="unknown scan"):
        mamba(x, scan="fast")


@pytest.mark.cuda
@pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("mamba_ssm") is None,
    reason="needs CUDA and mamba-ssm",
)
@torch.no_grad()
def test_kernel_matches_reference_on_cuda():
    model = Mamba(64).cuda().eval()
    x = torch.randn(BATCH, FRAMES, 64, device="cuda")
    y_kernel, kernel_state = model(x, scan="kernel")
    y_ref, ref_state = model(x, scan="reference")
    torch.testing.assert_close(y_kernel, y_ref, atol=1e-4, rtol=1e-4)
    for name in ref_state:
        torch.testing.assert_close(kernel_state[name], ref_state[name], atol=1e-4, rtol=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("scan", ["fused", "chunked"])
def test_pure_scans_match_reference_on_cuda(scan):
    """The pure-PyTorch paths a GPU trains with when mamba-ssm is absent: outputs and gradients."""
    torch.manual_seed(0)
    model = Mamba(64).cuda()
    x = torch.randn(BATCH, 300, 64, device="cuda", requires_grad=True)
    results = {}
    for path in ("reference", scan):
        model.zero_grad()
        x.grad = None
        y, state = model(x, scan=path)
        (y.square().mean() + state["ssm"].square().mean()).backward()
        results[path] = (y.detach(), x.grad.clone(), {k: p.grad.clone() for k, p in model.named_parameters()})
    (y_ref, gx_ref, g_ref), (y, gx, g) = results["reference"], results[scan]
    torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gx, gx_ref, atol=1e-4, rtol=1e-3)
    for name in g_ref:
        torch.testing.assert_close(g[name], g_ref[name], atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("make_block", [MambaBlock, GRUBlock], ids=["mamba", "gru"])
@torch.no_grad()
def test_block_forward_matches_steps(make_block, x):
    block = make_block(D_MODEL)
    state = _random_state(block)
    y, new_state = block(x, state)
    y_step, step_state = _steps(block, x, state)
    _close(y_step, y)
    _assert_states_close(step_state, new_state)
    assert y.shape == x.shape


def test_gru_block_one_frame_is_the_written_out_cell_of_nn_gru():
    # One frame takes the cell written as matmuls (what the streaming graph exports); it must be
    # nn.GRU's step, with gradients to the same parameters.
    block = GRUBlock(D_MODEL)
    x, h = torch.randn(BATCH, 1, D_MODEL, requires_grad=True), torch.randn(BATCH, D_MODEL)
    y, state = block(x, {"h": h})
    y_ref, h_ref = block.gru(x, h.unsqueeze(0))
    _close(y, y_ref)
    _close(state["h"], h_ref.squeeze(0))
    y.square().sum().backward()
    assert block.gru.weight_hh_l0.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("temporal", ["mamba", "gru"])
@torch.no_grad()
def test_squeezed_forward_matches_steps(temporal):
    model = SqueezedMamba(24, 16, output_size=8, num_layers=2, linear_groups=4, temporal=temporal).eval()
    x = torch.randn(BATCH, FRAMES, 24)
    state = model.init_state(BATCH)
    y, new_state = model(x, state)
    y_step, step_state = _steps(model, x, state)
    assert y.shape == (BATCH, FRAMES, 8)
    _close(y_step, y)
    _assert_states_close(step_state, new_state)
    _assert_states_close(model(x)[1], new_state)  # None == zero state


def test_squeezed_state_names():
    mamba = SqueezedMamba(16, 16, num_layers=2, linear_groups=4).init_state(3)
    gru = SqueezedMamba(16, 16, num_layers=2, linear_groups=4, temporal="gru").init_state(3)
    assert list(mamba) == ["layers.0.conv", "layers.0.ssm", "layers.1.conv", "layers.1.ssm"]
    assert mamba["layers.1.ssm"].shape == (3, 32, 16)
    assert list(gru) == ["layers.0.h", "layers.1.h"]
    assert gru["layers.0.h"].shape == (3, 16)


@torch.no_grad()
def test_squeezed_skip_adds_input(x):
    plain = SqueezedMamba(D_MODEL, 32, output_size=D_MODEL, linear_groups=4)
    skipped = SqueezedMamba(D_MODEL, 32, output_size=D_MODEL, linear_groups=4, skip=True)
    skipped.load_state_dict(plain.state_dict())
    _close(skipped(x)[0], plain(x)[0] + x)
    with pytest.raises(ConfigError, match="skip"):
        SqueezedMamba(D_MODEL, 32, output_size=8, linear_groups=4, skip=True)
