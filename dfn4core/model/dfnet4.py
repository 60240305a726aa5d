"""DFN4: waveform in, enhanced waveform out, over any number of whole hops, with carried state.

`process(wave, state)` is the one implementation; `forward` runs it from a fresh state and `step`
runs it on one hop, so offline and streaming enhancement are the same computation.
At step k the model has seen input frame k and emits output frame k - L (L = lookahead): the
output wave lags the input by fft_size - hop_size + L * hop_size samples (`cfg.dsp.delay_size`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dfn4core.config import DspConfig, ModelConfig
from dfn4core.dsp.features import Features
from dfn4core.dsp.stft import Stft
from dfn4core.model.deep_filter import (
    AdaptiveOrderPredictor,
    DfDecoder,
    MultiResolutionDF,
)
from dfn4core.model.erb_decoder import ErbDecoder
from dfn4core.model.hybrid import HybridEncoder
from dfn4core.state import State, StreamState, prefixed, sub


@dataclass
class DFN4Output:
    """What one pass returns. T = number of hops; frame k of each field describes output frame k - L.

    Shapes: wave (B, T*hop), spec (B, T, F, 2), erb_gains (B, T, E), lsnr_db (B, T),
    df_weights (B, T, K orders), emb (B, T, D).
    """

    wave: Tensor
    spec: Tensor
    erb_gains: Tensor
    lsnr_db: Tensor
    df_weights: Tensor
    emb: Tensor


class DFN4(nn.Module):
    """DeepFilterNet4. Build with a config: `DFN4(ModelConfig.full())`, `.lite()`, `.tiny()`."""

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ModelConfig.full()
        dsp = cfg.dsp
        self.stft = Stft(dsp.fft_size, dsp.hop_size)
        self.features = Features(dsp, phase=cfg.views)
        self.encoder = HybridEncoder(cfg)
        self.erb_decoder = ErbDecoder(cfg)
        self.df_decoder = DfDecoder(cfg)
        self.order_predictor = AdaptiveOrderPredictor(cfg)
        self.mrdf = MultiResolutionDF(cfg.df_orders)
        # Past spectra kept for the DF taps and the lookahead delay.
        self.history_size = max(cfg.df_max_order - 1, dsp.lookahead, 1)
        # True: BatchNorms stay in eval mode in `train()` (fine-tuning a warm start, whose norms
        # hold statistics folded from DFN3, on small batches).
        self.freeze_norm = False

    def train(self, mode: bool = True) -> DFN4:
        """nn.Module.train; with `freeze_norm` set, the BatchNorms keep their statistics (eval mode)."""
        super().train(mode)
        if self.freeze_norm:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    @property
    def hop_size(self) -> int:
        return self.cfg.dsp.hop_size

    def init_state(self, batch: int = 1, device=None, dtype=None) -> StreamState:
        """The state before the first sample: zeros, and the feature norms' initial values."""
        if device is None or dtype is None:
            ref = next(self.parameters())
            device, dtype = device or ref.device, dtype or ref.dtype
        n_freqs = self.cfg.dsp.n_freqs
        tensors: State = {
            **prefixed("stft", self.stft.init_state(batch, device, dtype)),
            **prefixed("features", self.features.init_state(batch, device, dtype)),
            **prefixed("encoder", self.encoder.init_state(batch, device, dtype)),
            **prefixed("erb_decoder", self.erb_decoder.init_state(batch, device, dtype)),
            **prefixed("df_decoder", self.df_decoder.init_state(batch, device, dtype)),
            "spec_history": torch.zeros(batch, self.history_size, n_freqs, 2, device=device, dtype=dtype),
        }
        return StreamState(tensors)

    def process(self, wave: Tensor, state: StreamState) -> tuple[DFN4Output, StreamState]:
        """Enhance T whole hops, continuing from `state`.

        Args:
            wave: (B, T * hop_size) samples at cfg.dsp.sr.
            state: from `init_state` or the previous call.
        Returns:
            The output (wave delayed by cfg.dsp.delay_size) and the new state.
        """
        if wave.dim() != 2 or wave.shape[1] == 0 or wave.shape[1] % self.hop_size:
            raise ValueError(f"wave must be (batch, n * {self.hop_size}) with n >= 1, got {tuple(wave.shape)}")
        st, dsp = state.tensors, self.cfg.dsp
        spec, frames, analysis = self.stft.analysis(wave, st["stft.analysis"])
        erb, df, phase, feat_state = self.features(spec, sub(st, "features"))
        emb, lsnr, skips, enc_state = self.encoder(erb, df, phase, frames, sub(st, "encoder"))
        gains, erb_dec_state = self.erb_decoder(emb, skips, sub(st, "erb_decoder"))
        coefs, df_dec_state = self.df_decoder(emb, skips.df0, sub(st, "df_decoder"))
        weights = self.order_predictor(emb, lsnr)

        enhanced, past = filter_spectrum(
            spec, st["spec_history"], gains @ self.features.erb_expand, self.mrdf, coefs, weights, dsp
        )
        out_wave, synthesis = self.stft.synthesis(enhanced, st["stft.synthesis"])

        new_state = StreamState(
            {
                "stft.analysis": analysis,
                "stft.synthesis": synthesis,
                **prefixed("features", feat_state),
                **prefixed("encoder", enc_state),
                **prefixed("erb_decoder", erb_dec_state),
                **prefixed("df_decoder", df_dec_state),
                "spec_history": past,
            }
        )
        return DFN4Output(out_wave, enhanced, gains, lsnr, weights, emb), new_state

    def forward(self, wave: Tensor) -> DFN4Output:
        """Enhance whole hops from a fresh state. Shapes: (B, T * hop) -> DFN4Output."""
        return self.process(wave, self.init_state(wave.shape[0], wave.device, wave.dtype))[0]

    def step(self, frame: Tensor, state: StreamState) -> tuple[Tensor, StreamState]:
        """Enhance one hop. Shapes: frame (B, hop) -> (B, hop), delayed by cfg.dsp.delay_size."""
        out, state = self.process(frame, state)
        return out.wave, state


def filter_spectrum(
    spec: Tensor, past: Tensor, bin_gains: Tensor, mrdf: MultiResolutionDF, coefs: Tensor, weights: Tensor,
    dsp: DspConfig,
) -> tuple[Tensor, Tensor]:
    """The enhanced spectrum of T steps: deep filtering below nb_df bins, gains above, both delayed
    by the lookahead; the same for DFN4 and DFN3 (`dfn4core.model.dfn3`).

    Shapes: spec (B, T, F, 2), past (B, R, F, 2) the R spectra before it, bin_gains (B, T, F),
    coefs/weights as MultiResolutionDF takes them -> enhanced (B, T, F, 2) and the new past.
    """
    steps, size = spec.shape[1], past.shape[1]
    history = torch.cat((past, spec), dim=1)  # B, R + T, F, 2
    delayed = history[:, size - dsp.lookahead : size - dsp.lookahead + steps]
    masked = delayed * bin_gains.unsqueeze(-1)
    low = mrdf(history[:, :, : dsp.nb_df], coefs, weights)
    return torch.cat((low, masked[:, :, dsp.nb_df :]), dim=2), history[:, -size:]
