"""Mamba selective state-space blocks: Mamba, MambaBlock, GRUBlock and SqueezedMamba.

The reference scan (a plain loop over time; `scan.py` holds every scan path) is the ground truth;
`step` is the streaming update.
Measured (torch 2.13 CPU, 1 thread, d_model 256, T 1000, batch 1, no grad): block 36 ms with the reference scan, 52-76 ms chunked, GRU 36 ms; so "auto" picks chunked only off the CPU.
With gradients on the CPU "auto" picks "fused" (`scan.SelectiveScan`, hand-written backward): see benchmarks/scan.py.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dfn4core.errors import ConfigError
from dfn4core.model.layers import GroupedLinear, RMSNorm
from dfn4core.model.scan import chunked_scan, discretize, reference_scan, selective_scan
from dfn4core.state import State, prefixed, sub

logger = logging.getLogger(__name__)

SCAN_PATHS = ("auto", "reference", "fused", "chunked", "kernel")
SCAN_BLOCK_FRAMES = 64  # frames discretised at once by the reference path
AUTO_CHUNKED_MIN_FRAMES = 256  # "auto" considers the chunked scan from this many frames on


def _import_kernels() -> tuple:
    """mamba_ssm's selective_scan_fn and causal_conv1d_fn (None when causal-conv1d is missing)."""
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    try:
        from causal_conv1d import causal_conv1d_fn
    except ImportError:
        causal_conv1d_fn = None
    return selective_scan_fn, causal_conv1d_fn


class Mamba(nn.Module):
    """Selective SSM block with the parameter names and shapes of `mamba_ssm.Mamba` (v1).

    Args:
        d_model: input and output width D.
        d_state: SSM state size N.
        d_conv: kernel size of the causal depthwise conv.
        expand: inner width Di = expand * d_model.
        dt_rank: rank of the dt projection; "auto" is ceil(d_model / 16).
        dt_min, dt_max, dt_init_floor: range of the initial dt (log-uniform), as in mamba_ssm.
        conv_bias: whether the conv has a bias.
        bias: whether in_proj and out_proj have biases.
        scan: default scan path, one of "auto", "reference", "fused", "chunked", "kernel".
    """

    def __init__(
        self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank: int | str = "auto",
        dt_min: float = 0.001, dt_max: float = 0.1, dt_init_floor: float = 1e-4,
        conv_bias: bool = True, bias: bool = False, scan: str = "auto",
    ):  # fmt: skip
        super().__init__()
        _check_scan(scan)
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.scan = scan
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1, bias=conv_bias
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        self._init_dt(dt_min, dt_max, dt_init_floor)
        self._logged_paths: set[str] = set()
        self._kernels: tuple | None = None

    def _init_dt(self, dt_min: float, dt_max: float, dt_init_floor: float) -> None:
        """mamba_ssm's init: uniform dt_proj weight, bias = softplus^-1 of a log-uniform dt."""
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        log_dt = torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt).clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        """Zero state: "conv" (B, Di, d_conv - 1), the last conv inputs; "ssm" (B, Di, N)."""
        return {
            "conv": torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device, dtype=dtype),
            "ssm": torch.zeros(batch, self.d_inner, self.d_state, device=device, dtype=dtype),
        }

    def forward(self, x: Tensor, state: State | None = None, scan: str | None = None) -> tuple[Tensor, State]:
        """Run the block over T frames, starting from `state` (zeros when None).

        Args:
            x: input frames.
            state: from `init_state` or a previous call; None means the zero state.
            scan: scan path for this call; None uses the constructor's.

        Returns:
            The output frames and the state after the last frame.

        Shapes:
            x: (B, T, D) -> y: (B, T, D).
        """
        path = self._resolve_scan(scan or self.scan, x, state)
        if path == "reference" and x.shape[1] == 1 and state is not None:
            y, new_state = self.step(x[:, 0], state)  # one frame: the streaming update is cheaper
            return y.unsqueeze(1), new_state
        u, z = self.in_proj(x).chunk(2, dim=-1)
        if path == "kernel":
            y, new_state = self._kernel_forward(u, z)
        else:
            if state is None:
                state = self.init_state(x.shape[0], x.device, x.dtype)
            u, conv = self._conv(u, state["conv"])
            u = F.silu(u)
            y, ssm = self._scan(u, state["ssm"], path)
            y, new_state = self._gate(y, u, z), {"conv": conv, "ssm": ssm}
        return self.out_proj(y), new_state

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One frame of the recurrence (streaming); equals `forward` frame by frame.

        Shapes:
            x: (B, D) -> y: (B, D).
        """
        u, z = self.in_proj(x).chunk(2, dim=-1)
        window = torch.cat((state["conv"], u.unsqueeze(-1)), dim=-1)  # B, Di, d_conv
        u = (window * self.conv1d.weight.squeeze(1)).sum(-1)
        if self.conv1d.bias is not None:
            u = u + self.conv1d.bias
        u = F.silu(u)
        dt, b, c = self._ssm_params(u)
        decay, inp = discretize(dt, -torch.exp(self.A_log), b, u)
        h = torch.addcmul(inp, decay, state["ssm"])
        y = torch.matmul(h, c.unsqueeze(-1)).squeeze(-1)
        return self.out_proj(self._gate(y, u, z)), {"conv": window[..., 1:], "ssm": h}

    def _conv(self, u: Tensor, buf: Tensor) -> tuple[Tensor, Tensor]:
        """Causal depthwise conv continuing from `buf`: (B, T, Di) -> (B, T, Di), new buffer."""
        frames = u.shape[1]
        u = torch.cat((buf, u.transpose(1, 2)), dim=-1)  # B, Di, d_conv - 1 + T
        y = F.conv1d(u, self.conv1d.weight, self.conv1d.bias, groups=self.d_inner)
        return y.transpose(1, 2), u[..., frames:]  # B, T, Di; the last d_conv - 1 inputs

    def _ssm_params(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """dt (..., Di), B and C (..., N) from the conv output u (..., Di)."""
        dt, b, c = self.x_proj(u).split((self.dt_rank, self.d_state, self.d_state), dim=-1)
        return F.softplus(self.dt_proj(dt)), b, c

    def _scan(self, u: Tensor, h: Tensor, path: str) -> tuple[Tensor, Tensor]:
        """Selective scan of u (B, T, Di) from state h (B, Di, N), without the D skip and the gate."""
        dt, b, c = self._ssm_params(u)
        a = -torch.exp(self.A_log)
        if path == "fused":
            return selective_scan(dt, a, b, c, u, h)
        if path == "chunked":
            return chunked_scan(*discretize(dt, a, b, u), c, h)
        # Discretising per block bounds memory and halved the time (no page faults on huge tensors).
        ys = []
        for dt_k, u_k, b_k, c_k in zip(*(t.split(SCAN_BLOCK_FRAMES, dim=1) for t in (dt, u, b, c))):
            y_k, h = reference_scan(*discretize(dt_k, a, b_k, u_k), c_k, h)
            ys.append(y_k)
        return torch.cat(ys, dim=1), h

    def _gate(self, y: Tensor, u: Tensor, z: Tensor) -> Tensor:
        return (y + u * self.D) * F.silu(z)

    def _resolve_scan(self, scan: str, x: Tensor, state: State | None) -> str:
        """The path this call runs ("auto" resolved); logs each path once per instance."""
        _check_scan(scan)
        if scan == "kernel":
            self._require_kernel(x, state)
        elif scan == "auto":
            if x.is_cuda and x.shape[1] > 1 and self._load_kernels() is not None and _is_zero(state):
                scan = "kernel"
            elif x.device.type != "cpu" and x.shape[1] >= AUTO_CHUNKED_MIN_FRAMES and not torch.is_grad_enabled():
                scan = "chunked"  # ~10x fewer kernel launches (not measured on a GPU); slower on the CPU
            elif x.device.type == "cpu" and torch.is_grad_enabled():
                scan = "fused"  # one autograd node instead of several per frame
            else:
                scan = "reference"
        if scan not in self._logged_paths:
            self._logged_paths.add(scan)
            logger.info("Mamba scan path: %s", scan)
        return scan

    def _load_kernels(self) -> tuple | None:
        """The mamba_ssm kernels, or None when not installed (tried once per instance)."""
        if self._kernels is None:
            try:
                self._kernels = _import_kernels()
            except ImportError as err:
                self._kernels = ()
                logger.info("mamba_ssm kernels unavailable: %s", err)
        return self._kernels or None

    def _require_kernel(self, x: Tensor, state: State | None) -> None:
        if not x.is_cuda:
            raise ConfigError(f"scan='kernel' needs CUDA tensors, got device {x.device}")
        if self._load_kernels() is None:
            raise ConfigError("scan='kernel' needs the optional mamba-ssm package (pip install 'dfn4[cuda]')")
        if not _is_zero(state):
            raise ConfigError("scan='kernel' starts from the zero state only; use 'reference' or 'chunked'")

    def _kernel_forward(self, u: Tensor, z: Tensor) -> tuple[Tensor, State]:
        """mamba_ssm's fused selective scan from the zero state: (B, T, Di) x 2 -> (B, T, Di), state."""
        selective_scan_fn, causal_conv1d_fn = self._load_kernels()
        frames = u.shape[1]
        buf = torch.zeros(u.shape[0], self.d_inner, self.d_conv - 1, device=u.device, dtype=u.dtype)
        if causal_conv1d_fn is None:
            u, conv = self._conv(u, buf)
            u = F.silu(u)
        else:
            conv = torch.cat((buf, u.transpose(1, 2)), dim=-1)[..., frames:]
            weight = self.conv1d.weight.squeeze(1)
            u = causal_conv1d_fn(_channels_first(u), weight, self.conv1d.bias, activation="silu")
            u = u.transpose(1, 2)  # back to B, T, Di
        dt, b, c = self.x_proj(u).split((self.dt_rank, self.d_state, self.d_state), dim=-1)
        y, ssm = selective_scan_fn(
            _channels_first(u), _channels_first(dt @ self.dt_proj.weight.t()), -torch.exp(self.A_log.float()),
            _channels_first(b), _channels_first(c), self.D.float(), z=_channels_first(z),
            delta_bias=self.dt_proj.bias.float(), delta_softplus=True, return_last_state=True,
        )  # fmt: skip
        return y.transpose(1, 2), {"conv": conv, "ssm": ssm.to(u.dtype)}  # y: B, T, Di


def _is_zero(state: State | None) -> bool:
    """True for no state or an all-zero one (a fresh stream, as `DFN4.forward` passes)."""
    return state is None or not any(bool(t.any()) for t in state.values())


def _channels_first(x: Tensor) -> Tensor:
    return x.transpose(1, 2).contiguous()  # (B, T, C) -> (B, C, T), the layout of the CUDA kernels


def _check_scan(scan: str) -> None:
    if scan not in SCAN_PATHS:
        raise ConfigError(f"unknown scan path {scan!r}; expected one of {SCAN_PATHS}")


class MambaBlock(nn.Module):
    """Pre-RMSNorm residual Mamba block: x + Mamba(norm(x)); names `norm`, `mixer` as mamba_ssm's Block.

    Shapes:
        x: (B, T, D) -> (B, T, D); `step`: (B, D) -> (B, D).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, scan: str = "auto"):
        super().__init__()
        self.norm = RMSNorm(d_model)
        self.mixer = Mamba(d_model, d_state=d_state, d_conv=d_conv, expand=expand, scan=scan)

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        return self.mixer.init_state(batch, device, dtype)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        y, state = self.mixer(self.norm(x), state)
        return x + y, state

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        y, state = self.mixer.step(self.norm(x), state)
        return x + y, state


class GRUBlock(nn.Module):
    """One GRU layer with MambaBlock's API, as a layer of DFN3's SqueezedGRU_S (no norm, no residual);
    state "h" (B, D), batch first. The `temporal="gru"` ablation, and the layout that holds DFN3's
    GRUs exactly (`dfn4core.model.dfn3_import`).

    Shapes:
        x: (B, T, D) -> (B, T, D); `step`: (B, D) -> (B, D).
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model
        self.gru = nn.GRU(d_model, d_model, batch_first=True)
        # One frame through nn.GRU too (exported: one ONNX GRU node, the float streaming graph's
        # choice, 110 fewer nodes in the full's hop) instead of the written-out cell (`_cell`).
        self.gru_node = False

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        return {"h": torch.zeros(batch, self.d_model, device=device, dtype=dtype)}

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if x.shape[1] == 1 and not self.gru_node:  # one frame (every streaming hop): the cell, written out
            h = x.new_zeros(x.shape[0], self.d_model) if state is None else state["h"]
            h = self._cell(x.squeeze(1), h)
            return h.unsqueeze(1), {"h": h}
        h = None if state is None else state["h"].unsqueeze(0).contiguous()
        y, h = self.gru(x, h)
        return y, {"h": h.squeeze(0)}

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        h = self._cell(x, state["h"])
        return h, {"h": h}

    def _cell(self, x: Tensor, h: Tensor) -> Tensor:
        """One frame of the GRU as its two matmuls and the gate arithmetic (torch's equations).

        The same numbers as nn.GRU on one frame. Written out so that the exported step graph has
        plain Gemm nodes, which the INT8 graph stores as 8-bit weights (`dfn4core.export.onnx_int8`);
        onnxruntime's GRU node keeps float weights, and at one frame per call its time is spent
        reading them. Shapes: x (B, D), h (B, D) -> (B, D).
        """
        sizes = (2 * self.d_model, self.d_model)  # gates r and z, then n
        gi_rz, gi_n = F.linear(x, self.gru.weight_ih_l0, self.gru.bias_ih_l0).split(sizes, dim=-1)
        gh_rz, gh_n = F.linear(h, self.gru.weight_hh_l0, self.gru.bias_hh_l0).split(sizes, dim=-1)
        r, z = torch.sigmoid(gi_rz + gh_rz).chunk(2, dim=-1)
        n = torch.tanh(gi_n + r * gh_n)
        return n + z * (h - n)


class SqueezedMamba(nn.Module):
    """Grouped linear in, residual Mamba (or GRU) blocks, optional grouped linear out: SqueezedGRU_S's successor.

    Args:
        input_size: input width I.
        hidden_size: width of the temporal blocks.
        output_size: output width O; None keeps hidden_size and skips the output layer.
        num_layers: number of blocks, named `layers.0`, `layers.1`, ...
        linear_groups: groups of the grouped linear layers.
        d_state, d_conv, expand: Mamba settings.
        temporal: "mamba" or "gru".
        skip: add the input to the output (needs I == O).
        scan: scan path of the Mamba blocks.

    Shapes:
        x: (B, T, I) -> (B, T, O); `step`: (B, I) -> (B, O).
    """

    def __init__(
        self, input_size: int, hidden_size: int, output_size: int | None = None, num_layers: int = 1,
        linear_groups: int = 8, d_state: int = 16, d_conv: int = 4, expand: int = 2,
        temporal: str = "mamba", skip: bool = False, scan: str = "auto",
    ):  # fmt: skip
        super().__init__()
        if temporal not in ("mamba", "gru"):
            raise ConfigError(f"temporal must be 'mamba' or 'gru', got {temporal!r}")
        out_dim = hidden_size if output_size is None else output_size
        if skip and out_dim != input_size:
            raise ConfigError(f"skip needs input_size == output size, got {input_size} and {out_dim}")
        self.skip = skip
        self.linear_in = GroupedLinear(input_size, hidden_size, linear_groups)
        self.layers = nn.ModuleList(
            MambaBlock(hidden_size, d_state, d_conv, expand, scan=scan) if temporal == "mamba" else GRUBlock(hidden_size)
            for _ in range(num_layers)
        )
        self.linear_out = None if output_size is None else GroupedLinear(hidden_size, output_size, linear_groups)

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        state: State = {}
        for i, layer in enumerate(self.layers):
            state.update(prefixed(f"layers.{i}", layer.init_state(batch, device, dtype)))
        return state

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        return self._run(x, state, step=False)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return self._run(x, state, step=True)

    def _run(self, x: Tensor, state: State | None, step: bool) -> tuple[Tensor, State]:
        y = F.relu(self.linear_in(x))
        new_state: State = {}
        for i, layer in enumerate(self.layers):
            layer_state = None if state is None else sub(state, f"layers.{i}")
            y, layer_state = layer.step(y, layer_state) if step else layer(y, layer_state)
            new_state.update(prefixed(f"layers.{i}", layer_state))
        if self.linear_out is not None:
            y = F.relu(self.linear_out(y))
        return (y + x if self.skip else y), new_state
