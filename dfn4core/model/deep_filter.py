"""Deep filtering: the DF decoder, the multi-resolution deep filter and its order predictor.

Deep filtering replaces each low bin of output frame t by a complex FIR over the same bin of the
frames t - (O - 1 - L) ... t + L (order O, lookahead L). The model emits the coefficients at step
k = t + L, when frame t + L is the newest it has seen, so the filter's taps are the last O frames
of the input up to step k: a ring buffer of the last max(O) - 1 spectra is all the state it needs.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F

from dfn4core.config import ModelConfig
from dfn4core.dsp.complex import complex_mul, product_matrix
from dfn4core.model.layers import ConvBlock, GroupedLinear, tanh
from dfn4core.model.mamba import SqueezedMamba
from dfn4core.state import State, prefixed, sub


def deep_filter(taps: Tensor, coefs: Tensor) -> Tensor:
    """The df() op: sum over the order axis of taps * coefs.

    In float32/64 torch multiplies them as complex tensors (one kernel: a tenth of the time of the
    written-out product for 10 s of audio); in other dtypes (bf16 under autocast) and in an ONNX
    export, which has no complex type, as `complex_mul` (MultiResolutionDF's traced graph does not
    call it: it uses the matrix form). The same sums either way.
    Shapes: taps and coefs (B, T, F, O, 2) -> (B, T, F, 2).
    """
    complex_dtype = taps.dtype in (torch.float32, torch.float64) and coefs.dtype == taps.dtype
    if complex_dtype and not torch.onnx.is_in_onnx_export():
        return torch.view_as_real((_as_complex(taps) * _as_complex(coefs)).sum(3))
    return complex_mul(taps, coefs).sum(3)


def _as_complex(x: Tensor) -> Tensor:
    """A complex view of (..., 2), copying only where its strides do not allow one."""
    if x.stride(-1) != 1 or any(stride % 2 for stride in x.stride()[:-1]) or x.storage_offset() % 2:
        x = x.contiguous()
    return torch.view_as_complex(x)


def filter_taps(history: Tensor, steps: int, order: int) -> Tensor:
    """The last `order` frames up to each step.

    Shapes: history (B, R + T, F, 2) with R >= order - 1 frames before the T steps -> (B, T, F, O, 2).
    """
    start = history.shape[1] - steps - order + 1
    frames = torch.arange(steps, device=history.device)[:, None] + torch.arange(order, device=history.device)
    return history[:, start + frames].transpose(2, 3)  # one gather (a constant index in the ONNX step graph)


PASS_GAIN = 0.9  # initial gain of the pass-through DF tap and of the ERB gains


class DfDecoder(nn.Module):
    """Predicts the complex DF coefficients of every order in `cfg.df_orders`: DFN3's DF decoder.

    coefs = tanh(out(temporal(emb) + skip(emb))) + pathway(c0): a SqueezedMamba with a grouped
    linear skip, a grouped linear layer to every bin's coefficients, plus a causal conv pathway over
    the last `df_pathway_kernel` frames of the DF encoder's first activation. Per bin, the K =
    2 * sum(orders) outputs are the orders' taps in turn, each (real, imag).
    Shapes: emb (B, T, W), df skip (B, C, T, F_df) -> (B, T, F_df, sum(orders), 2), bin-major as
    MultiResolutionDF takes them (no copy between the two).
    State: the temporal block's and the pathway's time buffer.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.orders, self.nb_df = cfg.df_orders, cfg.dsp.nb_df
        channels = 2 * sum(cfg.df_orders)
        self.temporal = SqueezedMamba(
            cfg.emb_width,
            cfg.emb_dim,
            num_layers=cfg.df_dec_layers,
            linear_groups=cfg.df_lin_groups,
            d_state=cfg.d_state,
            d_conv=cfg.d_conv,
            expand=cfg.expand,
            temporal=cfg.temporal,
        )
        self.skip = GroupedLinear(cfg.emb_width, cfg.emb_dim, cfg.lin_groups)
        self.out = GroupedLinear(cfg.emb_dim, cfg.dsp.nb_df * channels, cfg.lin_groups)
        # Two groups whatever the orders, as DFN3's (gcd(64, 10)), so its pathway fits any orders.
        self.pathway = ConvBlock(cfg.conv_ch, channels, (cfg.df_pathway_kernel, 1), groups=2)
        self._init_pass_through(cfg.dsp.lookahead)

    def _init_pass_through(self, lookahead: int) -> None:
        """Bias every order towards the filter that passes frame t (tap O - 1 - L) at PASS_GAIN,
        so training starts from the noisy low band rather than from silence."""
        bias = torch.zeros(2 * sum(self.orders))
        offset = 0
        for order in self.orders:
            bias[2 * (offset + order - 1 - lookahead)] = math.atanh(PASS_GAIN)  # real part of tap t
            offset += order
        with torch.no_grad():
            self.out.bias.copy_(bias.repeat(self.nb_df))

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        return {
            **prefixed("temporal", self.temporal.init_state(batch, device, dtype)),
            **prefixed("pathway", self.pathway.init_state(batch, self.nb_df, device, dtype)),
        }

    def forward(self, emb: Tensor, df_skip: Tensor, state: State) -> tuple[Tensor, State]:
        x, temporal_state = self.temporal(emb, sub(state, "temporal"))
        coefs = tanh(self.out(x + self.skip(emb)))  # B, T, F_df * K
        path, path_state = self.pathway(df_skip, sub(state, "pathway"))  # B, K, T, F_df
        coefs = rearrange(coefs, "b t (f k) -> b t f k", f=self.nb_df) + rearrange(path, "b k t f -> b t f k")
        new_state = {**prefixed("temporal", temporal_state), **prefixed("pathway", path_state)}
        return coefs.unflatten(3, (sum(self.orders), 2)), new_state


class AdaptiveOrderPredictor(nn.Module):
    """Per-frame weights over the DF orders from the embedding and the local SNR.

    Learned base logits (zero at init, so all orders start equal) plus a small MLP whose last layer
    starts at zero: the combination trains from the first step. Shapes: (B, T, D), (B, T) -> (B, T, K).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.lsnr_mid = 0.5 * (cfg.lsnr_min_db + cfg.lsnr_max_db)
        self.lsnr_half = 0.5 * (cfg.lsnr_max_db - cfg.lsnr_min_db)
        self.hidden = nn.Linear(cfg.emb_width + 1, cfg.order_hidden)
        self.logits = nn.Linear(cfg.order_hidden, len(cfg.df_orders))
        nn.init.zeros_(self.logits.weight)
        nn.init.zeros_(self.logits.bias)
        self.base = nn.Parameter(torch.zeros(len(cfg.df_orders)))

    def forward(self, emb: Tensor, lsnr_db: Tensor) -> Tensor:
        lsnr = ((lsnr_db - self.lsnr_mid) / self.lsnr_half).unsqueeze(-1)
        x = F.relu(self.hidden(torch.cat((emb, lsnr), dim=-1)))
        return torch.softmax(self.logits(x) + self.base, dim=-1)


class MultiResolutionDF(nn.Module):
    """Deep filtering at several orders, combined with per-frame weights.

    The weighted sum of the orders' outputs is one filter of the largest order: every order's taps
    end at the newest frame, so tap i of order O is tap i + max(O) - O of the largest. The
    coefficients of all orders are placed on those taps and summed, each scaled by its order's
    weight, before a single deep filter: the same sum as filtering each order, with fewer
    operations and ONNX nodes. Per frame that is one matmul of every bin's (tap, real/imaginary)
    row by the constant `placement` (with the identity on real/imaginary) whose rows are weighted.

    Shapes: history (B, R + T, F_df, 2), coefs (B, T, F_df, sum(orders), 2) (the orders' taps in
    turn, as DfDecoder gives them), weights (B, T, K) -> (B, T, F_df, 2).
    """

    def __init__(self, orders: tuple[int, ...]):
        super().__init__()
        self.orders = orders
        largest, total = max(orders), sum(orders)
        placement = torch.zeros(total, largest)  # tap of any order -> tap of the largest
        of_order = torch.zeros(len(orders), total)  # order k -> its taps
        offset = 0
        for k, order in enumerate(orders):
            for i in range(order):
                placement[offset + i, i + largest - order] = 1.0
            of_order[k, offset : offset + order] = 1.0
            offset += order
        # Over (tap, real/imaginary) pairs: placement x identity, and each order's weight to both parts.
        placement = torch.kron(placement, torch.eye(2))
        self.register_buffer("placement", placement, persistent=False)
        self.register_buffer("of_order", of_order.repeat_interleave(2, dim=1), persistent=False)
        # For a traced graph: placement onto the (2 x 2) real matrix of each combined coefficient,
        # flattened (in, out), that multiplies a tap from the left (`product_matrix`).
        self.register_buffer(
            "placement_matrix", placement @ torch.kron(torch.eye(largest), product_matrix()), persistent=False
        )

    def forward(self, history: Tensor, coefs: Tensor, weights: Tensor) -> Tensor:
        steps, largest = weights.shape[1], max(self.orders)
        tap_weights = weights @ self.of_order  # B, T, 2 sum(O)
        taps = filter_taps(history, steps, largest)
        if torch.jit.is_tracing():
            # The complex products as real matrix products: no splitting of real and imaginary
            # parts (8 fewer graph nodes; the same sums).
            mix = self.placement_matrix * tap_weights.unsqueeze(-1)  # B, T, 2 sum(O), 4 max(O)
            products = torch.matmul(coefs.flatten(3), mix).unflatten(3, (largest, 2, 2))  # B, T, F, O, in, out
            return (taps.unsqueeze(-1) * products).sum((3, 4))
        mix = self.placement * tap_weights.unsqueeze(-1)  # B, T, 2 sum(O), 2 max(O): placement, weighted
        combined = torch.matmul(coefs.flatten(3), mix).unflatten(3, (largest, 2))  # B, T, F, max(O), 2
        return deep_filter(taps, combined)
