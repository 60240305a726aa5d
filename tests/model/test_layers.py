import pytest
import torch

from torch import nn
from torch.nn import functional as F

from dfn4core.model import layers
from dfn4core.model.layers import LONG_INPUT_FRAMES, CausalConv2d, GroupedLinear, RMSNorm, conv2d_relu, tanh
from dfn4core.state import StreamState, prefixed, sub


def test_grouped_linear_equals_block_diagonal_linear():
    layer = GroupedLinear(12, 8, groups=4)
    weight = torch.block_diag(*layer.weight)  # (12, 8)
    x = torch.randn(3, 5, 12)
    torch.testing.assert_close(layer(x), x @ weight + layer.bias)
    one_row = x[:1, :1]  # a streaming hop takes the path without transposes
    torch.testing.assert_close(layer(one_row), one_row @ weight + layer.bias)
    (grad,) = torch.autograd.grad(layer(x).sum(), layer.bias)  # the bias added inside the matmul
    torch.testing.assert_close(grad, torch.full((8,), 15.0))
    with pytest.raises(ValueError, match="groups"):
        GroupedLinear(10, 8, groups=4)


def test_rms_norm_gives_unit_rms():
    y = RMSNorm(16)(3 * torch.randn(4, 16))
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(4), atol=1e-3, rtol=0)


def test_causal_conv_frame_by_frame_equals_whole_and_ignores_the_future():
    conv = CausalConv2d(2, 3, (3, 3))
    x = torch.randn(1, 2, 9, 8)
    whole, _ = conv(x, conv.init_state(1, 8))
    state, outs = conv.init_state(1, 8), []
    for t in range(9):
        y, state = conv(x[:, :, t : t + 1], state)
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs, 2), whole)
    changed = x.clone()
    changed[:, :, 6:] += 1.0
    y, _ = conv(changed, conv.init_state(1, 8))
    torch.testing.assert_close(y[:, :, :6], whole[:, :, :6])  # frames before 6 never see frame 6


@pytest.mark.parametrize("kernel, groups", [((3, 3), 1), ((5, 1), 2)])
def test_causal_conv_on_a_long_input_equals_the_conv_behind_its_buffer(kernel, groups):
    """Long inputs take the padded path (no copy behind the buffer): the same outputs and buffer,
    whatever the buffer holds, and gradients as before."""
    torch.manual_seed(0)
    conv = CausalConv2d(4, 6, kernel, groups=groups)
    steps = LONG_INPUT_FRAMES * (kernel[0] - 1) + 5
    x = torch.randn(2, 4, steps, 9, requires_grad=True)
    buf = torch.randn(2, 4, kernel[0] - 1, 9)
    y, state = conv(x, {"buf": buf})
    expected = conv.conv(torch.cat((buf, x), dim=2))
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(state["buf"], x[:, :, -(kernel[0] - 1) :])
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("kernel, groups", [((3, 3), 1), ((5, 1), 2)])
@pytest.mark.parametrize("steps", [3, LONG_INPUT_FRAMES * 4 + 5])
def test_causal_conv_with_its_relu_inside_gives_the_same_output(kernel, groups, steps):
    """What dfn4core.model.fuse switches on: the ReLU in the conv's call; on a streaming hop and on
    a long input, with and without autograd."""
    torch.manual_seed(0)
    conv = CausalConv2d(4, 6, kernel, groups=groups)
    x = torch.randn(2, 4, steps, 9)
    buf = torch.randn(2, 4, kernel[0] - 1, 9)
    plain, _ = conv(x, {"buf": buf})
    conv.relu = True
    with torch.no_grad():
        torch.testing.assert_close(conv(x, {"buf": buf})[0], F.relu(plain))
    torch.testing.assert_close(conv(x, {"buf": buf})[0], F.relu(plain))  # weights with gradients


def test_conv2d_relu_equals_relu_of_the_conv_and_traces_to_two_nodes(monkeypatch):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, (3, 3), padding=(0, 1)).requires_grad_(False)
    x = torch.randn(1, 3, layers.FUSED_MIN_FRAMES + 4, 10)
    calls = []
    if layers._POINTWISE is not None:  # count the one-call path, which this torch offers
        fused_op = layers._POINTWISE
        monkeypatch.setattr(layers, "_POINTWISE", lambda *args: calls.append(1) or fused_op(*args))
    with torch.no_grad():
        expected = F.relu(conv(x))
        torch.testing.assert_close(conv2d_relu(x, conv), expected)
        padded = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=(2, 1)))
        torch.testing.assert_close(conv2d_relu(x, conv, (2, 1)), padded)
        hop = x[:, :, :3]  # a streaming hop: the two ops
        torch.testing.assert_close(conv2d_relu(hop, conv), F.relu(conv(hop)))
        assert len(calls) == (2 if layers._POINTWISE is not None else 0)
        scale = nn.Conv2d(3, 3, 1, groups=3).requires_grad_(False)  # a per-channel affine: elementwise
        torch.testing.assert_close(conv2d_relu(x, scale), F.relu(scale(x)))
        assert len(calls) == (2 if layers._POINTWISE is not None else 0)
        traced = torch.jit.trace(lambda inp: conv2d_relu(inp, conv), x)
    kinds = {node.kind() for node in traced.graph.nodes()}
    assert "aten::relu" in kinds and not any("mkldnn" in k for k in kinds)
    torch.testing.assert_close(traced(x), expected)


def test_tanh_equals_torch_tanh_with_and_without_autograd():
    x = torch.linspace(-12, 12, 2001, requires_grad=True)
    y = tanh(x)
    torch.testing.assert_close(y, torch.tanh(x), atol=3e-7, rtol=0)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, 1 - torch.tanh(x).square(), atol=1e-6, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(tanh(x), torch.tanh(x), atol=3e-7, rtol=0)
    assert torch.isfinite(tanh(torch.tensor([-1e4, 1e4]))).all()


def test_stream_state_flatten_round_trip():
    state = StreamState({"a.x": torch.zeros(2, 3), "b": torch.ones(2)})
    again = StreamState.unflatten(state.names(), state.flatten())
    assert again.names() == ["a.x", "b"] and torch.equal(again.tensors["b"], torch.ones(2))
    assert state.clone().to(dtype=torch.float64).tensors["b"].dtype == torch.float64
    assert sub(prefixed("p", {"q": torch.zeros(1)}), "p").keys() == {"q"}
    with pytest.raises(ValueError):
        StreamState.unflatten(["a"], [])
