"""The selective scan paths of `Mamba`: the sequential reference (ground truth), the exact chunked
scan, and the scan as one autograd node with a hand-written backward (the training path on the CPU).

All run the same recurrence; the fused one in the same order as `reference_scan`, without a graph
node per frame.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

PARALLEL_GRAIN = 32768  # ATen's at::internal::GRAIN_SIZE: smaller elementwise ops stay on one thread
BLOCK_FRAMES = 16  # frames whose (B, Di, N) tensors are built and used while they sit in the cache
CHUNK_FRAMES = 32  # chunk length of the two-level scan


def discretize(dt: Tensor, a: Tensor, b: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Zero-order-hold decay exp(dt*A) and input dt*B*u; shapes (..., Di), (Di, N), (..., N) -> (..., Di, N)."""
    return torch.exp(dt.unsqueeze(-1) * a), (dt * u).unsqueeze(-1) * b.unsqueeze(-2)


def reference_scan(decay: Tensor, inp: Tensor, c: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    """Sequential selective scan h_t = decay_t * h_{t-1} + inp_t, y_t = C_t . h_t (the ground truth).

    Args: decay exp(dt * A), inp dt * B * x and readout c per frame; h the state before the first frame.
    Returns: y and the state after the last frame.

    Shapes:
        decay, inp: (B, T, Di, N); c: (B, T, N); h: (B, Di, N) -> y (B, T, Di), h (B, Di, N).
    """
    ys = []
    # Unbind once: indexing the time axis inside the loop measured 4x slower.
    for decay_t, inp_t, c_t in zip(decay.unbind(1), inp.unbind(1), c.unbind(1)):
        h = torch.addcmul(inp_t, decay_t, h)
        ys.append(torch.matmul(h, c_t.unsqueeze(-1)))
    return torch.stack(ys, dim=1).squeeze(-1), h


def _chunk_loop(decay: list[Tensor], inp: list[Tensor], h: Tensor, c: list[Tensor] | None) -> tuple[Tensor, list[Tensor]]:
    """The recurrence over the frames of every chunk at once; readouts when `c` is given."""
    ys = []
    for i, (decay_l, inp_l) in enumerate(zip(decay, inp)):
        h = torch.addcmul(inp_l, decay_l, h)
        if c is not None:
            ys.append(torch.matmul(h, c[i].unsqueeze(-1)))
    return h, ys


def chunked_scan(decay: Tensor, inp: Tensor, c: Tensor, h: Tensor, chunk: int = CHUNK_FRAMES) -> tuple[Tensor, Tensor]:
    """Exact two-level scan: within chunks in parallel, then across chunks; same contract as `reference_scan`.

    Pass 1 runs every chunk from a zero state to get its local final state and total decay; pass 2
    carries the true start state across chunks (T / chunk steps); pass 3 reruns every chunk from its
    start state and reads out y. Frames padded to a multiple of `chunk` have dt = 0 (decay 1, input 0),
    so the final state is exact. All products of decays stay in [0, 1]: no log-space cumsum, no overflow.
    """
    batch, frames, d_inner, d_state = decay.shape
    n_chunks = -(-frames // chunk)
    pad = n_chunks * chunk - frames
    decay = F.pad(decay, (0, 0, 0, 0, 0, pad), value=1.0).view(batch, n_chunks, chunk, d_inner, d_state)
    inp = F.pad(inp, (0, 0, 0, 0, 0, pad)).view(batch, n_chunks, chunk, d_inner, d_state)
    c = F.pad(c, (0, 0, 0, pad)).view(batch, n_chunks, chunk, d_state)
    decays, inps, cs = decay.unbind(2), inp.unbind(2), c.unbind(2)  # each (B, n_chunks, Di, N)

    local, _ = _chunk_loop(decays[1:], inps[1:], inps[0], None)
    total_decay = decay.prod(dim=2)
    starts = [h]
    for decay_c, local_c in zip(total_decay.unbind(1), local.unbind(1)):
        starts.append(torch.addcmul(local_c, decay_c, starts[-1]))
    _, ys = _chunk_loop(decays, inps, torch.stack(starts[:-1], dim=1), cs)
    y = torch.stack(ys, dim=2).reshape(batch, n_chunks * chunk, d_inner)
    return y[:, :frames], starts[-1]


class SelectiveScan(torch.autograd.Function):
    """Discretise, scan and read out: y_t = C_t . h_t, h_t = exp(dt_t A) * h_{t-1} + dt_t u_t B_t.

    Forward runs the loop without autograd and keeps every state h_t (B*T*Di*N values, time-major so
    each frame is one contiguous slice); backward runs the reverse recurrence
    g_t = C_t gy_t + exp(dt_{t+1} A) * g_{t+1} and turns g into the gradients of dt, A, B, C, u and h_0
    directly, so the (B, T, Di, N) decay and input tensors never enter the autograd graph. Both passes
    work in blocks of BLOCK_FRAMES frames.

    Shapes:
        dt, u: (B, T, Di); a: (Di, N); b, c: (B, T, N); h0: (B, Di, N) -> y (B, T, Di), h (B, Di, N).
    """

    @staticmethod
    def forward(ctx, dt: Tensor, a: Tensor, b: Tensor, c: Tensor, u: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
        dt_t, b_t, c_t, u_t = (x.transpose(0, 1).contiguous() for x in (dt, b, c, u))  # time-major
        dtu = dt_t * u_t
        hs = dt_t.new_empty(*dt_t.shape, a.shape[-1])  # T, B, Di, N
        y = torch.empty_like(dt_t)
        h, rows = h0, _serial_rows(hs)
        for k in _blocks(hs.shape[0]):
            torch.mul(dtu[k].unsqueeze(-1), b_t[k].unsqueeze(-2), out=hs[k])  # the inputs, then the states
            for hs_p, decay_p, h_p in zip(hs[k].split(rows, 1), _decay(dt_t[k], a).split(rows, 1), h.split(rows, 0)):
                for h_t, decay_t in zip(hs_p.unbind(0), decay_p.unbind(0)):
                    h_p = h_t.addcmul_(decay_t, h_p)
            h = hs[k.stop - 1]
            y[k] = torch.matmul(hs[k], c_t[k].unsqueeze(-1)).squeeze(-1)
        ctx.save_for_backward(dt_t, a, b_t, c_t, u_t, h0, hs)
        return y.transpose(0, 1).contiguous(), h.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, gy: Tensor | None, g_last: Tensor | None) -> tuple[Tensor | None, ...]:
        dt_t, a, b_t, c_t, u_t, h0, hs = ctx.saved_tensors
        gy_t = torch.zeros_like(dt_t) if gy is None else gy.transpose(0, 1).contiguous()
        dtu = dt_t * u_t
        g_dt, g_u, g_b, g_c = (torch.empty_like(x) for x in (dt_t, u_t, b_t, c_t))
        g_a = torch.zeros_like(a)
        carry = torch.zeros_like(h0) if g_last is None else g_last.contiguous()  # dL/dh at the block's end
        rows = _serial_rows(hs)
        for k in reversed(_blocks(hs.shape[0])):
            g = _outer(gy_t[k], c_t[k])  # dL/dh_t through y_t alone, then through every later frame
            decay = _decay(dt_t[k], a)
            carries = []
            for g_p, decay_p, carry_p in zip(g.split(rows, 1), decay.split(rows, 1), carry.split(rows, 0)):
                g_list, decay_list = g_p.unbind(0), decay_p.unbind(0)
                g_list[-1].add_(carry_p)
                for t in range(len(g_list) - 2, -1, -1):
                    g_list[t].addcmul_(decay_list[t + 1], g_list[t + 1])
                carries.append(decay_list[0] * g_list[0])
            carry = torch.cat(carries)
            # g is now dL/d(input_t); g * decay_t * h_{t-1} is dL/d(dt_t A), elementwise.
            g_log = decay.mul_(g)
            g_log[1:].mul_(hs[k.start : k.stop - 1])
            g_log[0].mul_(hs[k.start - 1] if k.start else h0)
            g_dtu = torch.matmul(g, b_t[k].unsqueeze(-1)).squeeze(-1)  # dL/d(dt_t u_t)
            g_dt[k] = (g_log * a).sum(-1).addcmul_(g_dtu, u_t[k])
            g_u[k] = g_dtu.mul_(dt_t[k])
            g_a += (g_log * dt_t[k].unsqueeze(-1)).sum((0, 1))
            g_b[k] = torch.matmul(dtu[k].unsqueeze(-2), g).squeeze(-2)
            g_c[k] = torch.matmul(gy_t[k].unsqueeze(-2), hs[k]).squeeze(-2)
        return g_dt.transpose(0, 1), g_a, g_b.transpose(0, 1), g_c.transpose(0, 1), g_u.transpose(0, 1), carry


def _blocks(frames: int) -> list[slice]:
    return [slice(start, min(start + BLOCK_FRAMES, frames)) for start in range(0, frames, BLOCK_FRAMES)]


def _serial_rows(x: Tensor) -> int:
    """Batch rows per piece of one frame of x (T, B, Di, N) so that each update runs on the calling thread.

    ATen splits elementwise ops of PARALLEL_GRAIN or more elements across threads; with 2 threads on a
    machine where other jobs kept the cores busy, one frame's update (8 x 384 x 16) took 0.3-16 ms so,
    against 20-30 us in pieces under the grain (torch 2.13 CPU).
    """
    return max(1, (PARALLEL_GRAIN - 1) // (x.shape[2] * x.shape[3]))


def _outer(x: Tensor, y: Tensor) -> Tensor:
    """Contiguous x_i y_j per frame: (T, B, Di), (T, B, N) -> (T, B, Di, N)."""
    out = x.new_empty(*x.shape, y.shape[-1])
    return torch.mul(x.unsqueeze(-1), y.unsqueeze(-2), out=out)


def _decay(dt_t: Tensor, a: Tensor) -> Tensor:
    """exp(dt A) per frame: (T, B, Di), (Di, N) -> (T, B, Di, N)."""
    return torch.exp(dt_t.unsqueeze(-1) * a)


def selective_scan(dt: Tensor, a: Tensor, b: Tensor, c: Tensor, u: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
    """`SelectiveScan` applied: y (B, T, Di) without the D skip, and the state after the last frame."""
    return SelectiveScan.apply(dt, a, b, c, u, h0)
