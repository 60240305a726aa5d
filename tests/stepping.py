"""Running a model hop by hop, as a stream does (shared by the model tests)."""

import torch

from dfn4core import DFN4


def step_through(model: DFN4, wave: torch.Tensor) -> torch.Tensor:
    """`model.step` over every hop of `wave` (B, T * hop) from a fresh state -> (B, T * hop)."""
    state, outs = model.init_state(wave.shape[0]), []
    for hop in wave.split(model.hop_size, dim=1):
        out, state = model.step(hop, state)
        outs.append(out)
    return torch.cat(outs, dim=1)
