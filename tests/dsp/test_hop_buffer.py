"""The hop buffer shared by the torch and onnxruntime enhancers: lengths, lag, dry mix, torch == numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfn4core.dsp.hop_buffer import HopBuffer

HOP, DELAY = 4, 6


def numpy_buffer(atten_lim_db, channels=2, delay=DELAY):
    return HopBuffer(HOP, delay, atten_lim_db, zeros=lambda n: np.zeros((channels, n), np.float32),
                     cat=lambda parts: np.concatenate(parts, axis=1))  # fmt: skip


def torch_buffer(atten_lim_db, channels=2, delay=DELAY):
    return HopBuffer(HOP, delay, atten_lim_db, zeros=lambda n: torch.zeros(channels, n),
                     cat=lambda parts: torch.cat(parts, dim=1))  # fmt: skip


def delayed(x, n):
    return np.concatenate([np.zeros((x.shape[0], n), x.dtype), x[:, : x.shape[1] - n]], axis=1)


def stream(buffer, x, sizes, enhance):
    out, i = [], 0
    for size in sizes:
        out.append(buffer.push(x[:, i : i + size], enhance))
        i += size
    return out


def test_every_chunk_gets_its_length_back_one_hop_late():
    x = np.random.default_rng(0).standard_normal((2, 30)).astype(np.float32)
    sizes = [1, 3, 0, 7, 4, 15]
    parts = stream(numpy_buffer(None), x, sizes, enhance=lambda hops: hops)  # identity model: no delay of its own
    assert [p.shape[1] for p in parts] == sizes
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), delayed(x, HOP))


@pytest.mark.parametrize("delay", [DELAY, 0])
def test_the_dry_mix_adds_the_input_delayed_like_the_model(delay):
    x = np.random.default_rng(1).standard_normal((2, 40)).astype(np.float32)
    buffer = numpy_buffer(20.0, delay=delay)
    y = np.concatenate(stream(buffer, x, [5, 9, 26], enhance=lambda hops: 0 * hops), axis=1)
    np.testing.assert_allclose(y, 0.1 * delayed(x, HOP + delay), atol=1e-7)  # 20 dB: a tenth of the input
    buffer.reset()
    np.testing.assert_allclose(buffer.push(x, lambda hops: 0 * hops), y, atol=1e-7)


def test_torch_and_numpy_give_the_same_samples():
    x = np.random.default_rng(2).standard_normal((2, 50)).astype(np.float32)
    sizes = [7, 1, 12, 30]
    a = stream(numpy_buffer(6.0), x, sizes, enhance=lambda hops: np.tanh(hops))
    b = stream(torch_buffer(6.0), torch.from_numpy(x), sizes, enhance=torch.tanh)
    np.testing.assert_allclose(np.concatenate(a, axis=1), torch.cat(b, dim=1).numpy(), atol=1e-6)
