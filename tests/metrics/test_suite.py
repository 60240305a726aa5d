"""Metric names and groups, and scoring one signal with failures kept as reasons."""

import numpy as np
import pytest
from testaudio import make_noisy

from dfn4core.errors import ConfigError
from dfn4core.metrics.suite import ALL_METRICS, NON_INTRUSIVE, parse_metrics, score


def test_groups_expand_in_canonical_order():
    assert parse_metrics("dnsmos, composite,pesq,si_sdr") == (
        "pesq_wb",
        "si_sdr",
        "csig",
        "cbak",
        "covl",
        *NON_INTRUSIVE,
    )
    assert parse_metrics(["ESTOI", "stoi", "stoi"]) == ("stoi", "estoi")
    assert parse_metrics(None) == ALL_METRICS and parse_metrics(None, reference=False) == NON_INTRUSIVE


@pytest.mark.parametrize(
    "names, reference, message",
    [
        ("pesq,mosnet", True, "unknown metric 'mosnet'"),
        (" , ", True, "no metric given"),
        ("dnsmos,stoi", False, "no clean references, so only DNSMOS can be computed, not stoi"),
    ],
)
def test_bad_metric_lists(names, reference, message):
    with pytest.raises(ConfigError, match=message):
        parse_metrics(names, reference=reference)


def test_failures_become_reasons_and_composite_reuses_pesq(monkeypatch):
    clean = make_noisy(1.0, sr=16_000)[0].astype(np.float64)
    noisy = clean + 0.05 * np.random.default_rng(0).standard_normal(clean.size)
    values, missing = score(noisy, 16_000, ("pesq_wb", "si_sdr", "csig", "covl"), reference=clean)
    assert set(values) == {"pesq_wb", "si_sdr", "csig", "covl"} and missing == {}
    values, missing = score(noisy, 16_000, ("si_sdr", "ssnr"), reference=np.zeros_like(clean))
    assert values == {} and missing == {m: "reference is silent (peak below -100 dBFS)" for m in ("si_sdr", "ssnr")}
    values, missing = score(noisy, 16_000, ("stoi",))
    assert missing == {"stoi": "no clean reference"}
