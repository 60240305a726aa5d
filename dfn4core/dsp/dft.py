"""rfft / irfft of one frame size as two stages of small real matmuls (Cooley-Tukey, N = N1 * N2).

For runtimes without a fast FFT op (the ONNX graph): a plain real DFT of a 960-sample frame is a
960 x 962 matrix, 3.7 MB of weights read on every hop for each direction. Split as N1 = 32 by
N2 = 30, the same transform is a (64 x 32) matmul then 32 small (60 x 32) matmuls with the twiddle
factors folded in: about 7x fewer multiply-adds and weights that fit in L1/L2 cache.

Index maps (row-major reshapes): time n = N2 * n1 + n2, frequency k = k1 + N1 * k2, so

    X[k1 + N1 k2] = sum_n2 e^{-2 pi i n2 k2 / N2} e^{-2 pi i n2 k1 / N} sum_n1 x[N2 n1 + n2] e^{-2 pi i n1 k1 / N1}

and only the k2 with k1 + N1 k2 <= N/2 are computed. The inverse runs the same stages backwards and
keeps the real part, with irfft's conventions (Hermitian bins counted twice, imaginary parts of the
DC and Nyquist bins ignored, 1/N scale).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def split_size(n: int) -> tuple[int, int]:
    """(N1, N2) with N1 * N2 == n and N1 the divisor of n closest to sqrt(n) from above (1 for a prime)."""
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    n1 = min(divisors, key=lambda d: (abs(math.log(d / math.sqrt(n))), -d)) if n > 1 else 1
    return n1, n // n1


class FactoredRealDft(nn.Module):
    """`forward`: (..., N) real -> (..., N//2 + 1, 2) like rfft; `inverse`: back, like irfft(n=N).

    Shapes of the stored matrices (N1, N2 = split_size(N), K2 = ceil(F / N1), F = N//2 + 1):
    first (2 N1, N1), fwd_twiddled (N1, 2 N2, 2 K2), inv_twiddled (N1, 2 K2, 2 N2), last (2 N1, N1).
    """

    def __init__(self, size: int):
        super().__init__()
        self.size, self.n_freqs = size, size // 2 + 1
        self.n1, self.n2 = split_size(size)
        self.k2 = -(-self.n_freqs // self.n1)
        first, fwd, inv, last = self._matrices()
        for name, value in (("first", first), ("fwd_twiddled", fwd), ("inv_twiddled", inv), ("last", last)):
            self.register_buffer(name, value.float(), persistent=False)

    def _matrices(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n, n1, n2, k2 = self.size, self.n1, self.n2, self.k2
        f64 = dict(dtype=torch.float64)
        r1 = torch.arange(n1, **f64)
        # Stage 1 (length-N1 DFT over n1 of a real input): rows k1 (cos) then k1 (-sin).
        ang1 = 2 * math.pi * torch.outer(r1, r1) / n1  # k1, n1
        first = torch.cat((torch.cos(ang1), -torch.sin(ang1)))
        # Stage 2 per k1: twiddle e^{-2 pi i n2 k1 / N} then the length-N2 DFT over n2, only k2 < K2.
        kk1 = r1[:, None, None]
        nn2 = torch.arange(n2, **f64)[None, :, None]
        kk2 = torch.arange(k2, **f64)[None, None, :]
        ang = -2 * math.pi * (nn2 * kk1 / n + nn2 * kk2 / n2)  # k1, n2, k2
        c, s = torch.cos(ang), torch.sin(ang)
        # [re, im](n2) -> [re, im](k2): (a + ib)(c + is) = (ac - bs) + i(as + bc)
        fwd = torch.cat((torch.cat((c, s), dim=2), torch.cat((-s, c), dim=2)), dim=1)  # k1, 2 n2, 2 k2
        # Inverse stage 2 per k1: sum over k2 of Y e^{+2 pi i n2 k2 / N2} e^{+2 pi i n2 k1 / N}, with the
        # Hermitian weights (2, or 1 for DC / Nyquist, 0 past N/2) and irfft's 1/N folded in.
        k = (kk1 + n1 * kk2).squeeze(1)  # k1, k2: the frequency index
        weight = torch.where(k == 0, 1.0, 2.0) * (k < self.n_freqs)
        if n % 2 == 0:
            weight = torch.where(k == n // 2, 1.0, weight)
        weight = (weight / n)[:, :, None]  # k1, k2, 1
        ang_inv = 2 * math.pi * (kk2.transpose(1, 2) * nn2.transpose(1, 2) / n2 + nn2.transpose(1, 2) * kk1 / n)
        ci, si = torch.cos(ang_inv) * weight, torch.sin(ang_inv) * weight  # k1, k2, n2
        inv = torch.cat((torch.cat((ci, si), dim=2), torch.cat((-si, ci), dim=2)), dim=1)  # k1, 2 k2, 2 n2
        # Inverse stage 1: real part of sum over k1 of Z e^{+2 pi i n1 k1 / N1}: cos for re, -sin for im.
        last = torch.cat((torch.cos(ang1), -torch.sin(ang1)), dim=1).T  # 2 k1, n1 (ang1 is symmetric)
        return first, fwd, inv, last

    def macs(self) -> int:
        """Multiply-adds of one forward plus one inverse transform of a frame (both stages each)."""
        n1, n2, k2 = self.n1, self.n2, self.k2
        return 2 * (2 * n1 * n1 * n2 + 4 * n1 * n2 * k2)

    def forward(self, x: Tensor) -> Tensor:
        """rfft of the last dimension as (..., F, 2) [re, im]."""
        lead = x.shape[:-1]
        n1, n2, k2 = self.n1, self.n2, self.k2
        x = x.reshape(-1, n1, n2)  # b, n1, n2
        a = (self.first @ x).reshape(-1, 2, n1, n2)  # b, [re|im], k1, n2
        a = a.permute(0, 2, 1, 3).reshape(-1, n1, 1, 2 * n2)  # b, k1, 1, [re|im] n2
        y = (a @ self.fwd_twiddled).reshape(-1, n1, 2, k2)  # b, k1, [re|im], k2
        y = y.permute(0, 3, 1, 2).reshape(-1, k2 * n1, 2)[:, : self.n_freqs]  # b, k = k1 + N1 k2, 2
        return y.reshape(*lead, self.n_freqs, 2)

    def inverse(self, spec: Tensor) -> Tensor:
        """irfft(n=N) of (..., F, 2) [re, im] as (..., N) real."""
        lead = spec.shape[:-2]
        n1, n2, k2 = self.n1, self.n2, self.k2
        y = spec.reshape(-1, self.n_freqs, 2)
        y = torch.cat((y, y.new_zeros(y.shape[0], k2 * n1 - self.n_freqs, 2)), dim=1)  # pad to K2 * N1 bins
        y = y.reshape(-1, k2, n1, 2).permute(0, 2, 3, 1).reshape(-1, n1, 1, 2 * k2)  # b, k1, 1, [re|im] k2
        z = (y @ self.inv_twiddled).reshape(-1, n1, 2, n2)  # b, k1, [re|im], n2
        z = z.permute(0, 3, 2, 1).reshape(-1, n2, 2 * n1)  # b, n2, [re|im] k1
        x = (z @ self.last).transpose(1, 2)  # b, n1, n2
        return x.reshape(*lead, self.size)
