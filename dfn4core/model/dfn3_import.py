"""Start a DFN4 from DeepFilterNet3's official weights (a warm start).

DFN4's spectral path has DFN3's layout, so every conv, every grouped linear layer and the
local-SNR head of DFN3's three ONNX graphs has a place in a DFN4 with conv_ch 64 and DFN3's
signal chain; the ONNX export folded DFN3's BatchNorms into the 1x1 convs' biases, which load as
BatchNorms with unit scale. The order-5 deep filter fills the orders of MultiResolutionDF (taps
of order 5 placed at the same frames; the order predictor starts on orders 5 and above), and the
hybrid encoder's extra views start silent (CrossDomainAttention's output layer is zero). What has
no counterpart are DFN3's GRUs: `dfn3_grus` returns them as torch GRUs, and `GruLayers` puts one
where a SqueezedMamba's blocks are, which makes the DFN4 compute DFN3 (a test checks it against the
official graphs); `dfn4core.train.warm_start` then fits the Mamba blocks to them on real audio
and trains the whole network on DFN3's output. A DFN4 with `temporal="gru"` and DFN3's sizes takes
the GRUs themselves.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import Tensor, nn

from dfn4core.errors import ConfigError
from dfn4core.model.dfn3 import Dfn3Files
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.layers import ConvBlock, ConvTransposeBlock, GroupedLinear
from dfn4core.state import State

logger = logging.getLogger(__name__)

DFN3_ORDER = 5
# Where each temporal block of a DFN4 sits, and the DFN3 graph and GRU count it replaces.
TEMPORAL_BLOCKS = {
    "encoder.temporal": ("enc", 1), "erb_decoder.temporal": ("erb_dec", 2), "df_decoder.temporal": ("df_dec", 2),
}  # fmt: skip


class _Graph:
    """The weights of one DFN3 ONNX graph: convs by module (in graph order), einsum weights, GRUs."""

    def __init__(self, model_bytes: bytes):
        import onnx
        from onnx import numpy_helper

        graph = onnx.load_from_string(model_bytes).graph
        tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                tensors[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.convs: dict[str, list[tuple[np.ndarray, np.ndarray | None]]] = {}
        self.linears: dict[str, np.ndarray] = {}
        self.grus: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.matmuls: dict[str, np.ndarray] = {}
        for node in graph.node:
            module = node.output[0].split("/")[1] if node.output[0].startswith("/") else node.output[0]
            if node.op_type in ("Conv", "ConvTranspose"):
                bias = tensors[node.input[2]] if len(node.input) > 2 and node.input[2] else None
                self.convs.setdefault(module, []).append((tensors[node.input[1]], bias))
            elif node.op_type == "Einsum":
                self.linears[node.input[1]] = tensors[node.input[1]]
            elif node.op_type == "GRU":
                self.grus.append((tensors[node.input[1]], tensors[node.input[2]], tensors[node.input[3]]))
            elif node.op_type == "MatMul":
                self.matmuls[module] = tensors[node.input[1]]
        self.tensors = tensors


def _set(param: Tensor, value: np.ndarray) -> None:
    value_t = torch.from_numpy(np.array(value, dtype=np.float32)).to(param.dtype)
    if value_t.shape != param.shape:
        raise ConfigError(f"DFN3 weight of shape {tuple(value_t.shape)} does not fit {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(value_t)


def _set_norm(norm: nn.BatchNorm2d, bias: np.ndarray | None) -> None:
    """A BatchNorm that adds `bias` and nothing else (DFN3's norms were folded into the conv)."""
    with torch.no_grad():
        norm.weight.fill_(1.0)
        bias_t = torch.zeros_like(norm.bias) if bias is None else torch.from_numpy(np.array(bias, dtype=np.float32))
        norm.bias.copy_(bias_t)
        norm.running_mean.zero_()
        norm.running_var.fill_(1.0 - norm.eps)


def _load_block(block: ConvBlock | ConvTransposeBlock, convs: list[tuple[np.ndarray, np.ndarray | None]]) -> None:
    conv = block.conv.conv if isinstance(block, ConvBlock) else block.conv
    if isinstance(block.point, nn.Identity):
        ((weight, bias),) = convs
        _set(conv.weight, weight)
    else:
        (grouped, _), (point, bias) = convs
        _set(conv.weight, grouped)
        _set(block.point.weight, point)
    _set_norm(block.norm, bias)


def _load_linear(layer: GroupedLinear, weight: np.ndarray) -> None:
    _set(layer.weight, weight)
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.zero_()


def _tap_map(orders: tuple[int, ...], lookahead: int) -> list[tuple[int, int]]:
    """(DFN3 channel, DFN4 channel) pairs: each order's tap at the frame of DFN3's order-5 tap.

    DFN3's tap j filters frame t - (4 - L) + j; tap i of order O filters t - (O - 1 - L) + i.
    """
    pairs, offset = [], 0
    for order in orders:
        for j in range(DFN3_ORDER):
            i = j + order - DFN3_ORDER
            if 0 <= i < order:
                pairs += [(2 * j + c, 2 * (offset + i) + c) for c in (0, 1)]
        offset += order
    return pairs


def import_dfn3(model: DFN4, files: Dfn3Files) -> DFN4:
    """Loads DFN3's weights into `model` (in place) wherever they fit; returns the model.

    Needs DFN3's signal chain, conv_ch 64 and order 5 among the DF orders. The temporal blocks'
    input and output layers load when emb_dim is DFN3's 256; the Mamba blocks keep their init
    (fit them with `dfn4core.train.warm_start.fit_temporal`). With `temporal="gru"` and DFN3's layer counts (1, 2, 2) the GRUs
    load too, and the model computes DFN3 exactly.

    Raises:
        ConfigError: the model's layout cannot take DFN3's weights.
    """
    from dfn4core.model.dfn3 import Dfn3Config

    cfg, dfn3_cfg = model.cfg, Dfn3Config.from_files(files, "dfn3")
    if cfg.dsp != dfn3_cfg.dsp or cfg.conv_ch != 64 or DFN3_ORDER not in cfg.df_orders:
        raise ConfigError("importing DFN3 needs its DSP config, conv_ch 64 and order 5 among df_orders")
    if (cfg.lin_groups, cfg.enc_lin_groups, cfg.df_lin_groups, cfg.df_pathway_kernel) != (16, 32, 8, 5):
        raise ConfigError("importing DFN3 needs lin_groups 16, enc_lin_groups 32, df_lin_groups 8, df_pathway_kernel 5")
    enc, erb, df = (_Graph(files.graphs[name]) for name in ("enc", "erb_dec", "df_dec"))
    squeezed_fits = cfg.emb_dim == 256

    spectral = model.encoder.spectral
    for name in ("erb_conv0", "erb_conv1", "erb_conv2", "erb_conv3", "df_conv0", "df_conv1"):
        _load_block(getattr(spectral, name), enc.convs[name])
    _load_linear(spectral.df_fc, enc.linears["df_fc_emb.0.weight"])
    lsnr = model.encoder.lsnr.fc
    _set(lsnr.weight, enc.matmuls["lsnr_fc"].T)
    _set(lsnr.bias, enc.tensors["lsnr_fc.0.bias"].reshape(1))
    if squeezed_fits:
        _load_linear(model.encoder.temporal.linear_in, enc.linears["emb_gru.linear_in.0.weight"])
        _load_linear(model.encoder.temporal.linear_out, enc.linears["emb_gru.linear_out.0.weight"])

    dec = model.erb_decoder
    for ours, theirs in (("path3", "conv3p"), ("path2", "conv2p"), ("path1", "conv1p"), ("path0", "conv0p")):
        _load_block(getattr(dec, ours), erb.convs[theirs])
    for ours, theirs in (("up3", "convt3"), ("up2", "convt2"), ("up1", "convt1")):
        _load_block(getattr(dec, ours), erb.convs[theirs])
    ((weight, bias),) = erb.convs["conv0_out"]
    _set(dec.out.weight, weight)
    _set(dec.out.bias, bias)
    if squeezed_fits:
        _load_linear(dec.temporal.linear_in, erb.linears["emb_gru.linear_in.0.weight"])
        _load_linear(dec.temporal.linear_out, erb.linears["emb_gru.linear_out.0.weight"])

    _import_df_decoder(model, df, squeezed_fits)
    if cfg.temporal == "gru" and squeezed_fits:  # GRU blocks of DFN3's sizes: its GRUs load as they are
        for block, gru in dfn3_grus(files).items():
            layers = model.get_submodule(block).layers
            if len(layers) != gru.num_layers:
                raise ConfigError(f"{block} has {len(layers)} GRU layers, DFN3's {gru.num_layers}")
            for i, layer in enumerate(layers):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    _set(getattr(layer.gru, f"{name}_l0"), getattr(gru, f"{name}_l{i}").detach().numpy())
    with torch.no_grad():  # orders >= 5 hold DFN3's filter exactly; order 3 lacks its oldest taps
        base = model.order_predictor.base
        base.copy_(torch.tensor([0.0 if o >= DFN3_ORDER else -8.0 for o in cfg.df_orders]))
    return model


def _import_df_decoder(model: DFN4, df: _Graph, squeezed_fits: bool) -> None:
    cfg, dec = model.cfg, model.df_decoder
    channels, nb_df = 2 * sum(cfg.df_orders), cfg.dsp.nb_df
    pairs = _tap_map(cfg.df_orders, cfg.dsp.lookahead)
    if squeezed_fits:
        _load_linear(dec.temporal.linear_in, df.linears["df_gru.linear_in.0.weight"])
        _load_linear(dec.skip, df.linears["df_skip.weight"])
    # Output layer: DFN3's (G, H/G, bins_per_group * 10) -> ours (G, H/G, bins_per_group * K).
    theirs = df.linears["df_out.0.weight"]
    groups, rows, cols = theirs.shape
    per_group = cols // (2 * DFN3_ORDER)
    if (groups, per_group * groups) != (cfg.lin_groups, nb_df) or (squeezed_fits and rows != cfg.emb_dim // groups):
        raise ConfigError("DFN3's DF output layer does not fit this config")
    if squeezed_fits:
        out = np.zeros((groups, rows, per_group * channels), np.float32)
        for f in range(per_group):
            for j, k in pairs:
                out[:, :, f * channels + k] = theirs[:, :, f * 2 * DFN3_ORDER + j]
        _load_linear(dec.out, out)
    else:  # a narrower decoder: its output layer starts silent, the coefficients are the pathway's
        with torch.no_grad():
            dec.out.weight.zero_()
            dec.out.bias.zero_()
    # Pathway: grouped (2 groups) conv over 5 frames, then 1x1 with bias, ReLU.
    (grouped, _), (point, bias) = df.convs["df_convp"]
    half_theirs, half_ours = DFN3_ORDER, channels // 2
    place = {c: c if c < half_theirs else half_ours + c - half_theirs for c in range(2 * DFN3_ORDER)}
    conv_w = np.zeros((channels, *grouped.shape[1:]), np.float32)
    for c, ours in place.items():
        conv_w[ours] = grouped[c]
    point_w = np.zeros((channels, channels, 1, 1), np.float32)
    bias_w = np.zeros(channels, np.float32)
    for j, k in pairs:
        for c, ours in place.items():
            point_w[k, ours] = point[j, c]
        bias_w[k] = bias[j]
    _set(dec.pathway.conv.conv.weight, conv_w)
    _set(dec.pathway.point.weight, point_w)
    _set_norm(dec.pathway.norm, bias_w)


def dfn3_grus(files: Dfn3Files) -> dict[str, nn.GRU]:
    """DFN3's GRU stacks as batch-first torch GRUs, by the DFN4 temporal block they stand for."""
    grus = {}
    for block, (graph_name, layers) in TEMPORAL_BLOCKS.items():
        found = _Graph(files.graphs[graph_name]).grus
        if len(found) != layers:
            raise ConfigError(f"DFN3's {graph_name} has {len(found)} GRUs, {layers} expected")
        hidden = found[0][1].shape[-1]
        gru = nn.GRU(found[0][0].shape[-1], hidden, num_layers=layers, batch_first=True)
        for i, (w, r, b) in enumerate(found):
            # ONNX stacks the gates as (z, r, h), torch as (r, z, n); biases are [input | recurrent].
            def reorder(x: np.ndarray) -> np.ndarray:
                z, r_, h = np.split(x, 3, axis=0)
                return np.concatenate((r_, z, h), axis=0)

            _set(getattr(gru, f"weight_ih_l{i}"), reorder(w[0]))
            _set(getattr(gru, f"weight_hh_l{i}"), reorder(r[0]))
            _set(getattr(gru, f"bias_ih_l{i}"), reorder(b[0, : 3 * hidden]))
            _set(getattr(gru, f"bias_hh_l{i}"), reorder(b[0, 3 * hidden :]))
        grus[block] = gru
    return grus


class GruLayers(nn.Module):
    """A (multi-layer) torch GRU with the API of a SqueezedMamba's block: state "h" (B, L, H)."""

    def __init__(self, gru: nn.GRU):
        super().__init__()
        self.gru = gru

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        return {"h": torch.zeros(batch, self.gru.num_layers, self.gru.hidden_size, device=device, dtype=dtype)}

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        # the state is batch-first (B, layers, H) like every dfn4 state; nn.GRU wants (layers, B, H)
        h = None if state is None else state["h"].transpose(0, 1).contiguous()
        y, h = self.gru(x, h)
        return y, {"h": h.transpose(0, 1)}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        y, state = self.forward(x.unsqueeze(1), state)
        return y.squeeze(1), state


def with_dfn3_grus(model: DFN4, grus: dict[str, nn.GRU]) -> DFN4:
    """A copy of `model` whose temporal blocks run DFN3's GRUs: with `import_dfn3`'s weights, DFN3 itself."""
    teacher = copy.deepcopy(model)
    for block, gru in grus.items():
        squeezed = teacher.get_submodule(block)
        squeezed.layers = nn.ModuleList([GruLayers(copy.deepcopy(gru))])
    return teacher.eval()
