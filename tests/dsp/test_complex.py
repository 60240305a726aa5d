import pytest
import torch

from dfn4core.dsp.complex import complex_mul, mul_conj, product_matrix


def _complex(x):
    return torch.view_as_complex(x.contiguous())


def test_complex_mul_matches_torch_complex():
    a, b = torch.randn(5, 7, 2), torch.randn(5, 7, 2)
    expected = torch.view_as_real(_complex(a) * _complex(b))
    torch.testing.assert_close(complex_mul(a, b), expected)


def test_mul_conj_eager_and_traced():
    """a * conj(b): written out in eager torch, as a matmul and one product in a traced graph."""
    a, b = torch.randn(3, 5, 1, 2), torch.randn(3, 5, 2, 2)
    expected = torch.view_as_real(torch.view_as_complex(a) * torch.view_as_complex(b).conj())
    torch.testing.assert_close(mul_conj(a, b), expected)
    traced = torch.jit.trace(mul_conj, (a, b))
    assert any(node.kind() == "aten::matmul" for node in traced.graph.nodes())  # the traced form
    torch.testing.assert_close(traced(a, b), expected)


@pytest.mark.parametrize("conj", [False, True])
def test_product_matrix_multiplies_from_the_left(conj):
    a, b = torch.randn(6, 2), torch.randn(6, 2)
    matrices = (b @ product_matrix(conj)).unflatten(-1, (2, 2))
    by_matrix = (a.unsqueeze(-2) @ matrices).squeeze(-2)
    expected = mul_conj(a, b) if conj else complex_mul(a, b)
    torch.testing.assert_close(by_matrix, expected)
    assert product_matrix(conj, like=torch.zeros(1, dtype=torch.float64)).dtype == torch.float64
