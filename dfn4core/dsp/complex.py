"""Complex arithmetic on real tensors whose trailing dim of 2 holds (real, imaginary).

ONNX has no complex type, so the model's complex products are written out on real tensors. Two
forms: elementwise (`complex_mul`, `mul_conj`: the fastest in eager torch) and as a real matrix
product (`product_matrix`): a * b = a @ M(b), where M(b) is the (2 x 2) real matrix of b acting on
a = (re, im) from the left; flattened, M(b) = b @ product_matrix(). A traced graph that multiplies
many a by the same b, or sums the products, does it in fewer nodes that way.
"""

from __future__ import annotations

import torch
from torch import Tensor

# a * b = (a0 b0 - a1 b1, a0 b1 + a1 b0) = a @ [[b0, b1], [-b1, b0]];
# a * conj(b) = (a0 b0 + a1 b1, a1 b0 - a0 b1) = a @ [[b0, -b1], [b1, b0]].
_PRODUCT = ((1.0, 0.0, 0.0, 1.0), (0.0, 1.0, -1.0, 0.0))
_PRODUCT_CONJ = ((1.0, 0.0, 0.0, 1.0), (0.0, -1.0, 1.0, 0.0))


def product_matrix(conj: bool = False, like: Tensor | None = None) -> Tensor:
    """(2, 4): maps b = (re, im) to M(b) (of conj(b) where `conj`), flattened (in, out) row-major,
    so that a * b = a @ (b @ product_matrix()).unflatten(-1, (2, 2)). On `like`'s device and dtype."""
    rows = _PRODUCT_CONJ if conj else _PRODUCT
    return torch.tensor(rows) if like is None else like.new_tensor(rows)


def complex_mul(a: Tensor, b: Tensor) -> Tensor:
    """a * b."""
    re = a[..., 0] * b[..., 0] - a[..., 1] * b[..., 1]
    im = a[..., 0] * b[..., 1] + a[..., 1] * b[..., 0]
    return torch.stack((re, im), dim=-1)


def mul_conj(a: Tensor, b: Tensor) -> Tensor:
    """a * conj(b).

    Eager: written out. Traced: b's matrices by one matmul, then one product and one sum with a
    (5 graph nodes instead of 11; the same sums).
    """
    if torch.jit.is_tracing():
        conj = (b @ product_matrix(conj=True, like=b)).unflatten(-1, (2, 2))  # ..., in, out
        return (a.unsqueeze(-1) * conj).sum(-2)
    re = a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]
    im = a[..., 1] * b[..., 0] - a[..., 0] * b[..., 1]
    return torch.stack((re, im), dim=-1)
