"""What a DFN4 costs, counted rather than timed: parameters, MACs per second of audio, algorithmic latency.

MACs: `torch.utils.flop_counter.FlopCounterMode` over `model(wave)` on 1 s (MACs = flops / 2; it
sees mm, bmm, addmm and convolutions, not torch.fft or elementwise ops), plus two analytic
elementwise terms it cannot see: the selective scan and the deep filter.
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from dfn4core.benchmark.timing import make_audio
from dfn4core.config import ModelConfig
from dfn4core.dsp.dft import FactoredRealDft
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.mamba import Mamba

BLOCKS = ("features", "encoder", "erb_decoder", "df_decoder", "order_predictor", "mrdf")
SCAN_MACS_PER_ELEMENT = 3  # dt*A, (dt*u)*B and the decay*h + input addcmul; exp() not counted
COMPLEX_MAC = 4  # real MACs of one complex multiply-accumulate


def count_params(model: DFN4) -> dict[str, int]:
    """Total parameters and those of each top-level block."""
    per_block = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    return {"total": sum(p.numel() for p in model.parameters()), **per_block}


def _scan_macs_per_hop(model: DFN4) -> int:
    """Elementwise selective-scan MACs per hop (the C.h readout is a matmul and is counted)."""
    return sum(SCAN_MACS_PER_ELEMENT * m.d_inner * m.d_state for m in model.modules() if isinstance(m, Mamba))


def _df_macs_per_hop(model: DFN4) -> int:
    """The combined filter's complex taps times coefficients (one filter of the largest order), plus
    the weighting of every order's coefficients (their placement on its taps is a counted matmul)."""
    cfg = model.cfg
    return COMPLEX_MAC * cfg.df_max_order * cfg.dsp.nb_df + 2 * sum(cfg.df_orders) * cfg.dsp.nb_df


@torch.no_grad()
def count_macs(model: DFN4) -> dict[str, float]:
    """MACs per second of audio: FlopCounterMode over model(wave) of 1 s plus the analytic terms.

    Returns:
        network (the headline: without the STFT), its parts (network_counted,
        scan_elementwise_analytic, deep_filter_analytic), per-block counted MACs, and the STFT +
        ISTFT as FFTs (torch path) and as the factored DFT matmuls (ONNX path), all analytic.
    """
    dsp = model.cfg.dsp
    wave = make_audio(1.0, dsp.sr)
    hops = wave.shape[1] // dsp.hop_size
    with FlopCounterMode(display=False, depth=None) as counter:
        model(wave)
    counted = counter.get_total_flops() / 2
    per_module = counter.get_flop_counts()
    top = type(model).__name__
    blocks = {f"block.{b}": sum(per_module.get(f"{top}.{b}", {}).values()) / 2 for b in BLOCKS}
    n = dsp.fft_size
    scan, deep_filter = _scan_macs_per_hop(model) * hops, _df_macs_per_hop(model) * hops
    network = counted + scan + deep_filter
    dft = FactoredRealDft(n).macs() * hops  # the two-stage real DFT of the ONNX graph, both ways
    return {
        "network": network,
        "network_counted": counted,
        "scan_elementwise_analytic": scan,
        "deep_filter_analytic": deep_filter,
        "fft_analytic": 2 * 2 * (n / 2) * math.log2(n) * hops,
        "dft_analytic": dft,
        "total_with_dft": network + dft,
        **blocks,
    }


def latency(cfg: ModelConfig) -> dict[str, float]:
    """Algorithmic latency (window plus lookahead) and the output delay of the hop stream, in samples and ms."""
    dsp = cfg.dsp
    return {"samples": dsp.latency_size, "ms": 1e3 * dsp.latency_size / dsp.sr,
            "stream_delay_samples": dsp.delay_size, "stream_delay_ms": 1e3 * dsp.delay_size / dsp.sr}
