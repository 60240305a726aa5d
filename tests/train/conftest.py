"""Fixtures of the training tests: the generated corpus of corpus.py."""

from pathlib import Path

import pytest

from corpus import corpus_config, write_corpus
from dfn4core.data.config import DataConfig


@pytest.fixture
def corpus(tmp_path) -> dict[str, Path]:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def small_data(corpus) -> DataConfig:
    return corpus_config(corpus, train_items=8, valid_items=2, segment_s=0.5, p_bandlimit=0.0)
