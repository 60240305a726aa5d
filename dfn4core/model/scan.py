"""The selective scan as one autograd node with a hand-written backward (the training path on the CPU).

Exact: the same recurrence as `mamba.reference_scan`, in the same order, without a graph node per frame.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

PARALLEL_GRAIN = 32768  # ATen's at::internal::GRAIN_SIZE: smaller elementwise ops stay on one thread
BLOCK_FRAMES = 16  # frames whose (B, Di, N) tensors are built and used while they sit in the cache


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
