"""Inference-only rewrites of a DFN4 that compute the same function with less work.

`fuse_for_inference(model)` returns a copy in which every ConvBlock and ConvTransposeBlock has its
BatchNorm folded into the conv before it (with the norm's running statistics, as in eval mode),
and a grouped conv followed by its 1x1 conv becomes one plain conv with the product of their
weights where that is faster (`_should_merge`: the first DF conv, 2 -> 64 channels in 2 groups
then 64 x 64, needs 4672 multiply-adds per output bin, merged 1152; the DF pathway conv). The
ReLU after each block runs inside its last conv's call (`conv2d_relu`: on many frames, one oneDNN
call that does not write the conv's output out and read it back; 3.6 % of the full's offline
pass). Each GRU's weight matrices are stored transposed (`_transposed_storage`), so the matmul of
every GRU frame gets a contiguous weight operand: about 3 % of the full's offline pass. All exact
up to float rounding. The copy keeps the state layout (the same state keys and shapes), so it
streams, exports and enhances as the original; it cannot be trained (its norms
are gone) and is not saved as a checkpoint. `dfn4core.streaming.Enhancer` (so `enhance`,
`dfn4 enhance` and `dfn4 evaluate`), the torch timings of `dfn4 benchmark` and `dfn4 export` run
the fused copy.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from dfn4core.model.layers import CausalConv2d, ConvBlock, ConvTransposeBlock, conv2d_relu
from dfn4core.state import State


class _InferenceOnly(nn.Module):
    def train(self, mode: bool = True) -> _InferenceOnly:
        if mode:
            raise RuntimeError(f"{type(self).__name__} has its BatchNorm folded in: it is for inference only")
        return super().train(False)


class FusedConvBlock(_InferenceOnly):
    """A ConvBlock with its norm folded in: relu(point(conv(x))), the conv or the point with a bias.

    The same API and state as ConvBlock (a time kernel kt carries a (B, C_in, kt - 1, F) buffer).
    """

    def __init__(self, conv: CausalConv2d, point: nn.Conv2d | None):
        super().__init__()
        self.conv = conv
        self.point = point

    def init_state(self, batch: int, n_freqs: int, device=None, dtype=None) -> State:
        return self.conv.init_state(batch, n_freqs, device, dtype)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        y, state = self.conv(x, state)
        return (y if self.point is None else conv2d_relu(y, self.point)), state


class FusedConvTransposeBlock(_InferenceOnly):
    """A ConvTransposeBlock with its norm folded into the 1x1 conv: relu(point(conv(x)))."""

    def __init__(self, conv: nn.ConvTranspose2d, point: nn.Conv2d):
        super().__init__()
        self.conv = conv
        self.point = point

    def forward(self, x: Tensor) -> Tensor:
        return conv2d_relu(self.conv(x), self.point)


def _norm_affine(norm: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The eval-mode norm as y = scale * x + shift, per channel."""
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    return scale, shift


def _with_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of a bias-free conv whose output is norm(conv(x)) (BatchNorm2d in eval mode)."""
    scale, shift = _norm_affine(norm)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter(conv.weight.detach() * scale.view(-1, *([1] * (conv.weight.dim() - 1))))
    fused.bias = nn.Parameter(shift.detach().clone())
    return fused


def _dense_weight(conv: nn.Conv2d) -> Tensor:
    """A grouped conv's weight as the equivalent ungrouped one (zeros across groups)."""
    out_ch, in_per_group = conv.weight.shape[:2]
    groups = conv.groups
    dense = conv.weight.new_zeros(out_ch, in_per_group * groups, *conv.weight.shape[2:])
    per_out = out_ch // groups
    for g in range(groups):
        rows, cols = slice(g * per_out, (g + 1) * per_out), slice(g * in_per_group, (g + 1) * in_per_group)
        dense[rows, cols] = conv.weight[rows]
    return dense


def _should_merge(conv: nn.Conv2d, point: nn.Conv2d) -> bool:
    """Whether one plain conv beats a grouped conv followed by a 1x1 conv.

    Yes when it needs fewer multiply-adds per output position, and when the groups take more than
    one channel each: oneDNN's kernels for such convs are slow on CPU (the DF pathway conv, 64 -> 30
    channels in 2 groups then 30 x 30, took 53 ms for 10 s of audio against 27 ms merged, with 1.7x
    the multiply-adds). Depthwise convs followed by a 1x1 conv stay apart (merged they took 1.4-1.9x
    as long, with 3x the multiply-adds).
    """
    out_ch, in_per_group = conv.weight.shape[:2]
    kernel = conv.weight.shape[2] * conv.weight.shape[3]
    separate = out_ch * in_per_group * kernel + point.weight.shape[0] * point.weight.shape[1]
    merged = point.weight.shape[0] * in_per_group * conv.groups * kernel
    return merged < separate or (conv.groups > 1 and in_per_group > 1)


def fuse_conv_block(block: ConvBlock) -> FusedConvBlock:
    """The ConvBlock with its norm folded in, its two convs merged where that is cheaper."""
    conv, point, norm = block.conv.conv, block.point, block.norm
    if isinstance(point, nn.Identity):
        fused = copy.deepcopy(block.conv)
        fused.conv = _with_norm(conv, norm)
        fused.relu = True
        return FusedConvBlock(fused, None)
    if not _should_merge(conv, point):
        return FusedConvBlock(copy.deepcopy(block.conv), _with_norm(point, norm))
    weight = torch.einsum("oc,cikl->oikl", point.weight.detach()[:, :, 0, 0], _dense_weight(conv).detach())
    out_ch, in_ch = weight.shape[:2]
    one = CausalConv2d(in_ch, out_ch, tuple(weight.shape[2:]), fstride=conv.stride[1], groups=1, bias=False)
    one.conv.weight = nn.Parameter(weight)
    one.conv = _with_norm(one.conv, norm)
    one.relu = True
    return FusedConvBlock(one.to(conv.weight.device, conv.weight.dtype), None)


def fuse_conv_transpose_block(block: ConvTransposeBlock) -> FusedConvTransposeBlock:
    """The ConvTransposeBlock with its norm folded into the 1x1 conv."""
    return FusedConvTransposeBlock(copy.deepcopy(block.conv), _with_norm(block.point, block.norm))


def _transposed_storage(gru: nn.GRU) -> None:
    """Store each weight matrix of `gru` transposed in memory, in place (same values and shape).

    torch's GRU computes every frame's hidden-state product as `linear(h, w_hh)`, a matmul with
    w_hh.t(); with w_hh laid out as the transpose of a contiguous matrix, that operand is contiguous
    and the single-row matmul runs faster (8 % of a 256-unit layer's time in a micro-benchmark, about
    3 % of the full's offline pass in an in-process A/B of 40 alternating rounds on a 2-core AMD
    VM). One frame written out (`GRUBlock._cell`) uses the same `linear`.
    """
    for param in gru.parameters():
        if param.dim() == 2 and param.is_contiguous():
            param.data = param.data.t().contiguous().t()


def _fusable(module: nn.Module) -> bool:
    """A ConvBlock or ConvTransposeBlock of plain float convs and a BatchNorm (not quantized)."""
    if isinstance(module, ConvBlock):
        convs = (module.conv.conv,) + (() if isinstance(module.point, nn.Identity) else (module.point,))
    elif isinstance(module, ConvTransposeBlock):
        convs = (module.conv, module.point)
    else:
        return False
    plain = all(type(c) in (nn.Conv2d, nn.ConvTranspose2d) and c.weight.is_floating_point() for c in convs)
    return plain and type(module.norm) is nn.BatchNorm2d and module.norm.running_var is not None


@torch.no_grad()
def fuse_for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with every ConvBlock and ConvTransposeBlock fused and its GRUs'
    weights stored transposed (above); `model` itself when it has none to fuse (already fused,
    quantized, or DFN3's runtime)."""
    if not any(_fusable(m) for m in model.modules()):
        return model
    fused = copy.deepcopy(model).eval()
    for name, module in list(fused.named_modules()):
        if not _fusable(module):
            continue
        replacement = fuse_conv_block(module) if isinstance(module, ConvBlock) else fuse_conv_transpose_block(module)
        parent_name, _, child = name.rpartition(".")
        setattr(fused.get_submodule(parent_name) if parent_name else fused, child, replacement)
    for module in fused.modules():
        if isinstance(module, nn.GRU):
            _transposed_storage(module)
    return fused.requires_grad_(False)
