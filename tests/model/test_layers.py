import pytest
import torch

from dfn4core.model.layers import LONG_INPUT_FRAMES, CausalConv2d, GroupedLinear, RMSNorm
from dfn4core.state import StreamState, prefixed, sub


def test_grouped_linear_equals_block_diagonal_linear():
    layer = GroupedLinear(12, 8, groups=4)
    weight = torch.block_diag(*layer.weight)  # (12, 8)
    x = torch.randn(3, 5, 12)
    torch.testing.assert_close(layer(x), x @ weight + layer.bias)
    one_row = x[:1, :1]  # a streaming hop takes the path without transposes
    torch.testing.assert_close(layer(one_row), one_row @ weight + layer.bias)
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


def test_stream_state_flatten_round_trip():
    state = StreamState({"a.x": torch.zeros(2, 3), "b": torch.ones(2)})
    again = StreamState.unflatten(state.names(), state.flatten())
    assert again.names() == ["a.x", "b"] and torch.equal(again.tensors["b"], torch.ones(2))
    assert state.clone().to(dtype=torch.float64).tensors["b"].dtype == torch.float64
    assert sub(prefixed("p", {"q": torch.zeros(1)}), "p").keys() == {"q"}
    with pytest.raises(ValueError):
        StreamState.unflatten(["a"], [])
