"""Leaf layers with plain arguments: GroupedLinear, CausalConv2d (streamable), ConvBlock, RMSNorm."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dfn4core.state import State


class GroupedLinear(nn.Module):
    """A linear layer split into `groups` independent blocks over the last dimension.

    Shapes: (..., input_size) -> (..., output_size).
    """

    def __init__(self, input_size: int, output_size: int, groups: int = 1, bias: bool = True):
        super().__init__()
        if input_size % groups or output_size % groups:
            raise ValueError(f"sizes {input_size}, {output_size} must divide by groups={groups}")
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(groups, input_size // groups, output_size // groups))
        self.bias = nn.Parameter(torch.zeros(output_size)) if bias else None
        bound = (input_size // groups) ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        if x.numel() == x.shape[-1]:  # one row (a streaming hop): no transposes in the step graph
            y = torch.matmul(x.reshape(self.groups, 1, -1), self.weight).reshape(*lead, -1)
            return y if self.bias is None else y + self.bias
        x = x.reshape(-1, self.groups, self.weight.shape[1]).transpose(0, 1)  # G, N, I/G
        if self.bias is None:
            y = torch.bmm(x, self.weight)
        else:  # the bias added in the same pass
            y = torch.baddbmm(self.bias.view(self.groups, 1, -1), x, self.weight)
        return y.transpose(0, 1).reshape(*lead, -1)


class RMSNorm(nn.Module):
    """Root-mean-square norm over the last dimension (written out so it exports to any ONNX opset)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def tanh(x: Tensor) -> Tensor:
    """torch.tanh(x) written as 2 sigmoid(2x) - 1: the same function (within 2e-7), about 3x faster
    on CPU for large tensors (torch's tanh kernel is slow there). A traced graph keeps one Tanh."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return torch.tanh(x)
    if torch.is_grad_enabled() and x.requires_grad:
        return 2.0 * torch.sigmoid(2.0 * x) - 1.0
    return (2.0 * x).sigmoid_().mul_(2.0).sub_(1.0)  # one new tensor


LONG_INPUT_FRAMES = 8  # per buffered frame: longer inputs skip the copy behind the buffer


FUSED_MIN_FRAMES = 16  # inputs of fewer frames (a streaming hop) run their convs as they are


def conv2d_relu(x: Tensor, conv: nn.Conv2d, padding: tuple[int, int] | None = None) -> Tensor:
    """relu(conv(x)), with `padding` in place of the conv's own where given.

    For many frames on CPU in float32 without autograd or tracing, one oneDNN call with the ReLU
    as a post-op (`torch.ops.mkldnn._convolution_pointwise`, what torch.compile emits): the conv's
    output is not written out and read back for the ReLU, and the sums are the same. Elsewhere (a
    streaming hop, where that call costs more than it saves, or a torch without the op) the two
    ops in turn.
    """
    padding = tuple(conv.padding) if padding is None else padding
    weight, bias = conv.weight, conv.bias
    if (
        _POINTWISE is not None
        and x.shape[-2] >= FUSED_MIN_FRAMES
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not _is_compiling()
    ):
        channels = weight.shape[0]
        depthwise_1x1 = weight.shape == (channels, 1, 1, 1) and conv.groups == channels
        if depthwise_1x1 and bias is not None and padding == (0, 0) and tuple(conv.stride) == (1, 1):
            # A per-channel scale and shift (a 1x1 depthwise conv, DFN3's skip-path convs):
            # elementwise, which oneDNN's kernel for it was up to 13x slower than (64 channels, 32 bins).
            return torch.addcmul(bias.view(1, -1, 1, 1), x, weight.view(1, -1, 1, 1)).relu_()
        return _POINTWISE(x, weight, bias, list(padding), list(conv.stride), list(conv.dilation), conv.groups, "relu", [None], "")
    return F.relu(F.conv2d(x, weight, bias, conv.stride, padding, conv.dilation, conv.groups))


def _pointwise_op():
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)


_POINTWISE = _pointwise_op()
_is_compiling = getattr(torch.compiler, "is_compiling", lambda: False)


class CausalConv2d(nn.Module):
    """2-D conv over (time, freq), causal in time; its time buffer is carried as state.

    Shapes: x (B, C_in, T, F) -> (B, C_out, T, ceil(F / fstride)); state "buf" (B, C_in, kt - 1, F).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: tuple[int, int] = (1, 3),
        fstride: int = 1,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        self.in_ch, self.kt = in_ch, kernel[0]
        self.relu = False  # set by dfn4core.model.fuse (inference only): the output is relu(conv(x))
        self.conv = nn.Conv2d(
            in_ch, out_ch, kernel, stride=(1, fstride), padding=(0, kernel[1] // 2), groups=groups, bias=bias
        )

    def init_state(self, batch: int, n_freqs: int, device=None, dtype=None) -> State:
        if self.kt == 1:
            return {}
        return {"buf": torch.zeros(batch, self.in_ch, self.kt - 1, n_freqs, device=device, dtype=dtype)}

    def _conv(self, x: Tensor, padding: tuple[int, int] | None = None) -> Tensor:
        if type(self.conv) is not nn.Conv2d:  # a quantized (or for quantization wrapped) conv
            y = self.conv(x)
            return F.relu(y) if self.relu else y
        if self.relu:
            return conv2d_relu(x, self.conv, padding)
        conv = self.conv
        padding = conv.padding if padding is None else padding
        return F.conv2d(x, conv.weight, conv.bias, conv.stride, padding, conv.dilation, conv.groups)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.kt == 1:
            return self._conv(x), {}
        past, steps = self.kt - 1, x.shape[2]
        # A streaming hop (or a quantized conv) is one conv over the buffer and the input. A long
        # input is not copied behind the buffer: the conv runs over it zero-padded in front, then
        # its first kt - 1 frames, which reach into the buffer, again over the buffer and the
        # input's first frames. The same sums.
        if steps <= LONG_INPUT_FRAMES * past or type(self.conv) is not nn.Conv2d:
            x = torch.cat((state["buf"], x), dim=2)
            return self._conv(x), {"buf": x[:, :, -past:]}
        y = self._conv(x, (past, self.conv.padding[1]))[:, :, :steps]
        y[:, :, :past] = self._conv(torch.cat((state["buf"], x[:, :, :past]), dim=2))
        return y, {"buf": x[:, :, -past:]}


class ConvBlock(nn.Module):
    """CausalConv2d, BatchNorm and ReLU, laid out as DFN3's separable Conv2dNormAct.

    The conv has gcd(in_ch, out_ch) groups (or `groups`); when it is grouped and its kernel is
    wider than one bin or frame, a 1x1 conv follows, which saves most of the MACs. Shapes:
    (B, C_in, T, F) -> (B, C_out, T, ceil(F / fstride)); a time kernel kt carries a
    (B, C_in, kt - 1, F) buffer.
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel: tuple[int, int] = (1, 3), fstride: int = 1, groups: int | None = None
    ):
        super().__init__()
        groups = math.gcd(in_ch, out_ch) if groups is None else groups
        separable = groups > 1 and max(kernel) > 1
        self.conv = CausalConv2d(in_ch, out_ch, kernel, fstride, groups=groups, bias=False)
        self.point = nn.Conv2d(out_ch, out_ch, 1, bias=False) if separable else nn.Identity()
        self.norm = nn.BatchNorm2d(out_ch)

    def init_state(self, batch: int, n_freqs: int, device=None, dtype=None) -> State:
        return self.conv.init_state(batch, n_freqs, device, dtype)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        y, state = self.conv(x, state)
        return F.relu(self.norm(self.point(y))), state


class ConvTransposeBlock(nn.Module):
    """Frequency upsampling by 2 (depthwise transposed conv over 3 bins), 1x1 conv, BatchNorm, ReLU.

    DFN3's ConvTranspose2dNormAct. Shapes: (B, C_in, T, F) -> (B, C_out, T, 2F). No time kernel,
    hence no state.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(
            in_ch, in_ch, (1, 3), stride=(1, 2), padding=(0, 1), output_padding=(0, 1), groups=in_ch, bias=False
        )
        self.point = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.norm = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.point(self.conv(x))))
