"""Start a smaller DFN4 from a trained larger one: the weights a distillation run begins from.

A `lite` student distilled from scratch spends most of a CPU budget relearning what the `full`
teacher's convolutions already know. Both variants share the conv layout (conv_ch, DSP, linear
groups), so `shrink` copies every parameter whose shape matches and cuts the rest down:

- **Temporal blocks** (GRU only): the student keeps, in every group of the grouped linear layers
  around a block, the hidden units whose outgoing weights are largest (the input layer's units by
  the GRU's input weights, the GRU's units by the output layer's, or by the DF decoder's output
  layer). A block with fewer layers keeps the teacher's first layers and its last one, so the
  output layer still reads the layer it was trained on; a block with none (the lite's ERB
  decoder) keeps the input layer's units as above and the output layer's weights on the units it
  read most.
- **DF decoder**: the coefficients of the student's orders, which must be the teacher's first
  orders (lite (3, 5) of full (3, 5, 7)); of each of the conv pathway's two groups, the channels
  with the largest weights onto those coefficients; the order predictor's rows of those orders.
- **Everything else of another shape** (the waveform view, the attention of a narrower
  `attn_dim`) keeps its fresh init, with the attention's output layer at zero so the extra views
  start silent, as in `dfn4core.model.dfn3_import`.

The result does not compute the teacher (a GRU of fewer units and layers cannot); it is where a
distillation starts (`recipes/default/warm_start.py --teacher`, `dfn4 distill --init`). How far
the lite came back from it on a CPU budget is in docs/models.md ("The lite: where it stands").
"""

from __future__ import annotations

import dataclasses
import logging

import torch
from torch import Tensor

from dfn4core.config import ModelConfig
from dfn4core.errors import ConfigError
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.layers import GroupedLinear
from dfn4core.model.mamba import GRUBlock, SqueezedMamba

logger = logging.getLogger(__name__)

VIEW_FIELDS = ("wave_ch", "wave_kernel", "attn_dim", "attn_heads")  # config of the views alone
GATES = 3  # rows of a torch GRU's weights: (r, z, n), each hidden_size long


def shrink(teacher: DFN4, student: DFN4) -> DFN4:
    """Loads `teacher`'s weights into the smaller `student` (in place) as described above; returns it.

    Raises:
        ConfigError: the two cannot share weights (another DSP config, conv width, linear groups
            or DF pathway; Mamba blocks; the student's DF orders not the teacher's first ones;
            a student wider or deeper than the teacher).
    """
    t_cfg, s_cfg = teacher.cfg, student.cfg
    same = ("dsp", "conv_ch", "lin_groups", "enc_lin_groups", "df_lin_groups", "df_pathway_kernel", "temporal")
    if differ := [name for name in same if getattr(t_cfg, name) != getattr(s_cfg, name)]:
        raise ConfigError(f"shrink needs the same {', '.join(differ)} in teacher and student")
    if s_cfg.temporal != "gru":
        raise ConfigError("shrink cuts GRU temporal blocks only (temporal = 'gru')")
    if t_cfg.df_orders[: len(s_cfg.df_orders)] != s_cfg.df_orders:
        raise ConfigError(f"the student's DF orders {s_cfg.df_orders} must begin the teacher's {t_cfg.df_orders}")
    if s_cfg.emb_dim > t_cfg.emb_dim:
        raise ConfigError(f"the student's emb_dim {s_cfg.emb_dim} exceeds the teacher's {t_cfg.emb_dim}")

    source = teacher.state_dict()
    with torch.no_grad():
        copied = 0
        for name, value in student.state_dict().items():
            if name in source and source[name].shape == value.shape:
                value.copy_(source[name])
                copied += value.numel()
        for block in ("encoder.temporal", "erb_decoder.temporal"):  # each read by its own linear_out
            _shrink_temporal(teacher.get_submodule(block), student.get_submodule(block), block)
        df_units = _shrink_temporal(  # read by the DF decoder's output layer
            teacher.df_decoder.temporal, student.df_decoder.temporal, "df_decoder.temporal", teacher.df_decoder.out
        )
        _shrink_df_decoder(teacher, student, df_units)
        if s_cfg.views and (
            not t_cfg.views or student.encoder.attention.out.weight.shape != teacher.encoder.attention.out.weight.shape
        ):
            student.encoder.attention.out.weight.zero_()
            student.encoder.attention.out.bias.zero_()
    logger.info("shrink: %d of %d parameters copied unchanged", copied, sum(p.numel() for p in student.parameters()))
    return student


def drop_views(model: DFN4) -> DFN4:
    """The same network without the hybrid encoder's waveform and phase views (`views = False`).

    Every other weight is copied; the config's widths of the views take their defaults. The result
    computes `model` exactly where CrossDomainAttention's output layer is zero (a warm start before
    training) and differs by what that layer adds otherwise; the size of that layer's weights is
    logged.
    """
    if not model.cfg.views:
        raise ConfigError("the model has no waveform and phase views to drop")
    out = model.encoder.attention.out
    logger.info(
        "drop_views: the attention's output layer had max |weight| %.3g, max |bias| %.3g",
        out.weight.abs().max().item(),
        out.bias.abs().max().item(),
    )
    # The views' widths are unused without them: their defaults, so that configs compare equal
    # (the lite cut from a full with views is then `ModelConfig.lite()`).
    unused = {f.name: f.default for f in dataclasses.fields(model.cfg) if f.name in VIEW_FIELDS}
    return _without(model, dataclasses.replace(model.cfg, views=False, **unused))


def drop_erb_temporal(model: DFN4) -> DFN4:
    """The same network without the ERB decoder's temporal layers (`erb_dec_layers = 0`).

    The ERB decoder's input layer then feeds its output layer directly, so the ERB gains see time
    only through the encoder's temporal block. Every other weight is copied. The result does not
    compute `model` (the dropped GRU layers added their own context): it is where a distillation
    starts (docs/models.md, "The lite: where it stands", for what the layers were worth).
    """
    if model.cfg.erb_dec_layers == 0:
        raise ConfigError("the model's ERB decoder has no temporal layers to drop")
    return _without(model, dataclasses.replace(model.cfg, erb_dec_layers=0))


def _without(model: DFN4, cfg: ModelConfig) -> DFN4:
    """A DFN4 of `cfg`, a subset of `model`'s layers, with `model`'s weights of those layers."""
    student = DFN4(cfg).to(next(model.parameters()).device)
    student.freeze_norm = model.freeze_norm
    kept = student.state_dict().keys()
    student.load_state_dict({k: v for k, v in model.state_dict().items() if k in kept})
    return student.train(model.training)


def top_units(importance: Tensor, groups: int, keep: int) -> Tensor:
    """Indices of the `keep` largest entries of each of `groups` equal consecutive groups, ascending."""
    per_group = importance.reshape(groups, -1)
    if keep > per_group.shape[1]:
        raise ConfigError(f"cannot keep {keep} of {per_group.shape[1]} units per group")
    best = per_group.topk(keep, dim=1).indices.sort(dim=1).values
    return (best + torch.arange(groups).unsqueeze(1) * per_group.shape[1]).flatten()


def _grouped_rows(layer: GroupedLinear) -> Tensor:
    """The weight of a grouped linear layer as one (input, output) matrix of its groups' blocks: row
    i is input unit i's outgoing weights (zeros outside its group)."""
    return torch.block_diag(*layer.weight)


def _gru_layers(block: SqueezedMamba, name: str) -> list[torch.nn.GRU]:
    if not all(isinstance(layer, GRUBlock) for layer in block.layers):
        raise ConfigError(f"{name}: shrink cuts GRU blocks only")
    return [layer.gru for layer in block.layers]


def _shrink_temporal(
    src: SqueezedMamba, dst: SqueezedMamba, name: str, reader: GroupedLinear | None = None
) -> Tensor:
    """Cuts one SqueezedMamba of GRUs; returns the teacher's indices of the kept output units.

    `reader` is the layer that reads the block's output: its linear_out unless given (the DF
    decoder's output layer for its block, which has none)."""
    src_grus, dst_grus = _gru_layers(src, name), _gru_layers(dst, name)
    if len(dst_grus) > len(src_grus):
        raise ConfigError(f"{name}: the student has more layers ({len(dst_grus)}) than the teacher ({len(src_grus)})")
    if not src_grus:
        raise ConfigError(f"{name}: the teacher has no temporal layers to cut")
    kept_layers = [*src_grus[: len(dst_grus) - 1], src_grus[-1]] if dst_grus else []
    hidden = dst.linear_in.weight.shape[0] * dst.linear_in.weight.shape[2]
    in_groups = src.linear_in.groups
    reader = reader if reader is not None else src.linear_out
    if reader is None:
        raise ConfigError(f"{name}: no layer reads the block's output to rank its units by")
    # The block's output units: those of the teacher's last layer that the reader weighs most.
    read_most = top_units(_grouped_rows(reader).norm(dim=1), reader.groups, hidden // reader.groups)
    # GRU input units: by the input weights of the first layer kept (of the teacher's first where
    # none is), within linear_in's groups.
    first = kept_layers[0] if kept_layers else src_grus[0]
    inputs = top_units(first.weight_ih_l0.norm(dim=0), in_groups, hidden // in_groups)
    _cut_grouped(src.linear_in, dst.linear_in, None, inputs)
    if not dst_grus:
        # No layers: linear_in feeds the reader directly (not the same quantity as the teacher's
        # last layer's output: a start for distillation).
        inputs = read_most
    for i, (s, d) in enumerate(zip(kept_layers, dst_grus)):
        if i == len(dst_grus) - 1:
            units = read_most
        else:  # by the next kept layer's input weights
            units = top_units(kept_layers[i + 1].weight_ih_l0.norm(dim=0), in_groups, hidden // in_groups)
        _cut_gru(s, d, inputs, units)
        inputs = units
    if src.linear_out is not None:
        _cut_grouped(src.linear_out, dst.linear_out, inputs, None)
    return inputs


def _cut_gru(src: torch.nn.GRU, dst: torch.nn.GRU, inputs: Tensor, units: Tensor) -> None:
    rows = torch.cat([gate * src.hidden_size + units for gate in range(GATES)])
    dst.weight_ih_l0.copy_(src.weight_ih_l0[rows][:, inputs])
    dst.weight_hh_l0.copy_(src.weight_hh_l0[rows][:, units])
    dst.bias_ih_l0.copy_(src.bias_ih_l0[rows])
    dst.bias_hh_l0.copy_(src.bias_hh_l0[rows])


def _cut_grouped(src: GroupedLinear, dst: GroupedLinear, inputs: Tensor | None, outputs: Tensor | None) -> None:
    """dst = src restricted to the given input and output units (None: all), group by group."""
    if src.groups != dst.groups:
        raise ConfigError(f"grouped layers of {src.groups} and {dst.groups} groups")
    groups, rows, cols = src.weight.shape
    weight = src.weight
    if inputs is not None:
        weight = torch.stack([weight[g, inputs[inputs // rows == g] - g * rows] for g in range(groups)])
    if outputs is not None:
        weight = torch.stack([weight[g][:, outputs[outputs // cols == g] - g * cols] for g in range(groups)])
    dst.weight.copy_(weight)
    if dst.bias is not None:
        dst.bias.copy_(src.bias if outputs is None else src.bias[outputs])


def _shrink_df_decoder(teacher: DFN4, student: DFN4, units: Tensor) -> None:
    """The DF decoder's skip, output layer, pathway and the order predictor for the student's orders."""
    src, dst = teacher.df_decoder, student.df_decoder
    nb_df = teacher.cfg.dsp.nb_df
    t_ch, s_ch = 2 * sum(teacher.cfg.df_orders), 2 * sum(student.cfg.df_orders)
    _cut_grouped(src.skip, dst.skip, None, units)
    # Output layer: the kept hidden units (rows) and, per bin, the student's orders' channels (columns).
    columns = (torch.arange(nb_df).unsqueeze(1) * t_ch + torch.arange(s_ch)).flatten()
    _cut_grouped(src.out, dst.out, units, columns)
    # Pathway: of each of the conv's two groups, the channels the 1x1 conv weighs most for the
    # student's coefficients; the 1x1 conv and its norm restricted to those and to the coefficients.
    point = src.pathway.point.weight[:s_ch, :, 0, 0]
    channels = top_units(point.norm(dim=0), groups=2, keep=s_ch // 2)
    dst.pathway.conv.conv.weight.copy_(src.pathway.conv.conv.weight[channels])
    dst.pathway.point.weight.copy_(src.pathway.point.weight[:s_ch][:, channels])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst.pathway.norm, name).copy_(getattr(src.pathway.norm, name)[:s_ch])
    k = len(student.cfg.df_orders)
    predictor_s, predictor_t = student.order_predictor, teacher.order_predictor
    predictor_s.base.copy_(predictor_t.base[:k])
    predictor_s.logits.weight.copy_(predictor_t.logits.weight[:k])
    predictor_s.logits.bias.copy_(predictor_t.logits.bias[:k])
