import torch

from dfn4core import ModelConfig
from dfn4core.dsp.complex import complex_mul
from dfn4core.model.deep_filter import AdaptiveOrderPredictor, MultiResolutionDF, deep_filter, filter_taps


def test_deep_filter_is_a_complex_fir_over_past_frames():
    steps, order, past = 6, 3, 4
    history = torch.randn(1, past + steps, 5, 2)
    coefs = torch.randn(1, steps, 5, order, 2)  # bin-major: (B, T, F, O, 2)
    out = deep_filter(filter_taps(history, steps, order), coefs)
    h, c = torch.view_as_complex(history), torch.view_as_complex(coefs)
    for t in range(steps):
        newest = past + t
        expected = sum(c[0, t, :, i] * h[0, newest - order + 1 + i] for i in range(order))
        torch.testing.assert_close(torch.view_as_complex(out[0, t].contiguous()), expected)


def test_multi_resolution_df_weights_the_orders():
    history = torch.randn(2, 6 + 4, 8, 2)
    coefs = torch.randn(2, 4, 8, 3 + 5, 2)  # per bin: order 3's taps, then order 5's
    first, second = coefs[:, :, :, :3], coefs[:, :, :, 3:]
    only_first = torch.tensor([1.0, 0.0]).expand(2, 4, 2)
    mrdf = MultiResolutionDF((3, 5))
    torch.testing.assert_close(mrdf(history, coefs, only_first), deep_filter(filter_taps(history, 4, 3), first))
    half = torch.full((2, 4, 2), 0.5)
    expected = 0.5 * deep_filter(filter_taps(history, 4, 3), first) + 0.5 * deep_filter(filter_taps(history, 4, 5), second)
    torch.testing.assert_close(mrdf(history, coefs, half), expected)


def test_multi_resolution_df_is_the_weighted_sum_of_each_orders_filter():
    """One filter of the largest order with the weighted coefficients placed on its newest taps
    equals filtering with each order and weighting the outputs, frame by frame."""
    torch.manual_seed(0)
    orders, steps = (3, 5, 7), 6
    history = torch.randn(2, 6 + steps, 8, 2)
    coefs = [torch.randn(2, steps, 8, o, 2) for o in orders]
    weights = torch.softmax(torch.randn(2, steps, 3), dim=-1)
    expected = sum(deep_filter(filter_taps(history, steps, o), c) * weights[:, :, k, None, None]
                   for k, (o, c) in enumerate(zip(orders, coefs)))  # fmt: skip
    mrdf = MultiResolutionDF(orders)
    torch.testing.assert_close(mrdf(history, torch.cat(coefs, dim=3), weights), expected)
    traced = torch.jit.trace(mrdf, (history, torch.cat(coefs, dim=3), weights))  # as in the ONNX export
    torch.testing.assert_close(traced(history, torch.cat(coefs, dim=3), weights), expected)


def test_order_predictor_starts_uniform_and_learns_from_lsnr():
    cfg = ModelConfig.tiny()
    predictor = AdaptiveOrderPredictor(cfg)
    emb, lsnr = torch.randn(2, 5, cfg.emb_width), torch.linspace(-15, 35, 10).reshape(2, 5)
    weights = predictor(emb, lsnr)
    torch.testing.assert_close(weights, torch.full_like(weights, 1 / len(cfg.df_orders)))
    # Train it to prefer the long filter at low SNR and the short one at high SNR.
    opt = torch.optim.Adam(predictor.parameters(), lr=0.05)
    target = (lsnr < 10).long()
    for _ in range(150):
        loss = torch.nn.functional.nll_loss(predictor(emb, lsnr).log().flatten(0, 1), target.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (predictor(emb, lsnr).argmax(-1) == target).all()


def test_deep_filter_complex_path_equals_the_written_out_product():
    """Outside an ONNX export float tensors multiply as complex; the export and bf16 write the
    product out (`complex_mul`): the same sums."""
    taps, coefs = torch.randn(2, 4, 8, 5, 2), torch.randn(2, 4, 8, 5, 2)
    written_out = complex_mul(taps, coefs).sum(3)
    torch.testing.assert_close(deep_filter(taps, coefs), written_out)
    strided = torch.randn(2, 4, 5, 8, 2).transpose(2, 3)  # as filter_taps gives them: viewed, not copied
    torch.testing.assert_close(deep_filter(strided, coefs), complex_mul(strided, coefs).sum(3))
    odd = torch.randn(2, 4, 8, 5, 3)[..., 1:]  # strides that allow no complex view: copied
    torch.testing.assert_close(deep_filter(odd, coefs), complex_mul(odd, coefs).sum(3))
    half = deep_filter(taps.bfloat16(), coefs.bfloat16()).float()
    torch.testing.assert_close(half, written_out, atol=0.1, rtol=0.05)
