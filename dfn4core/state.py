"""Streaming state: a flat, ordered mapping of dotted names to tensors, owned by the caller.

Modules hold no per-stream buffers. Each stateful module has `init_state(batch, device, dtype)`
returning its own `State`, and a `forward(x, state)` returning `(y, new_state)`; a parent prefixes
its children's names (`"enc.erb.conv0"`). `StreamState` wraps the model's whole state for the
public API and for ONNX (fixed-order named tensors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

State = dict[str, Tensor]


def sub(state: Mapping[str, Tensor], prefix: str) -> State:
    """The part of `state` under `prefix.`, with the prefix removed."""
    head = prefix + "."
    return {k[len(head) :]: v for k, v in state.items() if k.startswith(head)}


def prefixed(prefix: str, state: Mapping[str, Tensor]) -> State:
    """`state` with every name put under `prefix.`."""
    return {f"{prefix}.{k}": v for k, v in state.items()}


@dataclass
class StreamState:
    """The whole streaming state of a model for one batch of streams.

    `flatten()` and `names()` give the tensors in a fixed order (the order `init_state` made them),
    which is the order of the ONNX graph's state inputs and outputs.
    """

    tensors: State

    def names(self) -> list[str]:
        return list(self.tensors)

    def flatten(self) -> list[Tensor]:
        return list(self.tensors.values())

    @classmethod
    def unflatten(cls, names: Iterable[str], tensors: Iterable[Tensor]) -> StreamState:
        names, tensors = list(names), list(tensors)
        if len(names) != len(tensors):
            raise ValueError(f"{len(names)} names for {len(tensors)} tensors")
        return cls(dict(zip(names, tensors)))

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> StreamState:
        return StreamState({k: v.to(device=device, dtype=dtype) for k, v in self.tensors.items()})

    def clone(self) -> StreamState:
        return StreamState({k: v.clone() for k, v in self.tensors.items()})

    @property
    def batch_size(self) -> int:
        return next(iter(self.tensors.values())).shape[0]
