"""Paired noisy/clean sets: the VoiceBank-DEMAND layout, or any two folders matched by file name."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dfn4core.data.config import PairedSource
from dfn4core.data.mixing import fit_length
from dfn4core.data.sources import AudioRef, AudioStore, scan_folder
from dfn4core.errors import ConfigError

logger = logging.getLogger(__name__)

MAX_LISTED = 20  # unmatched names shown in the warning; the counts are always complete


def _by_name(folder: Path) -> dict[str, Path]:
    """Audio files under `folder` keyed by relative path without extension ("sub/p226_001")."""
    files: dict[str, Path] = {}
    for path in scan_folder(folder):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in files:
            logger.warning("%s: %s and %s share a name; using the first", folder, files[key].name, path.name)
            continue
        files[key] = path
    return files


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f", ... ({len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else "")


def match_pairs(noisy_dir: Path, clean_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs files of two folders by relative path without extension; unmatched ones are logged.

    Args:
        noisy_dir: folder of noisy files (searched recursively).
        clean_dir: folder of clean files with the same names (any audio extension).

    Returns:
        (noisy, clean) paths, sorted by name.

    Raises:
        ConfigError: a folder is missing.
    """
    for folder in (noisy_dir, clean_dir):
        if not folder.is_dir():
            raise ConfigError(f"paired data folder {folder} does not exist")
    noisy, clean = _by_name(noisy_dir), _by_name(clean_dir)
    only_noisy = sorted(set(noisy) - set(clean))
    only_clean = sorted(set(clean) - set(noisy))
    if only_noisy or only_clean:
        logger.warning(
            "%s / %s: %d pair(s) matched; %d noisy file(s) without a clean one [%s]; "
            "%d clean file(s) without a noisy one [%s]",
            noisy_dir, clean_dir, len(set(noisy) & set(clean)),
            len(only_noisy), _listing(only_noisy), len(only_clean), _listing(only_clean),
        )
    return [(noisy[k], clean[k]) for k in sorted(set(noisy) & set(clean))]


class PairedSet:
    """The readable pairs of a PairedSource, and random aligned segments of them.

    Args:
        source: where the pairs are.
        store: opens files at the model's rate through the cache.

    Raises:
        ConfigError: missing folders or no readable pair.
    """

    def __init__(self, source: PairedSource, store: AudioStore):
        self.source, self.store = source, store
        noisy_dir, clean_dir = source.dirs
        pairs = [(AudioRef(n), AudioRef(c)) for n, c in match_pairs(noisy_dir, clean_dir)]
        self.pairs = tuple(p for p in pairs if store.is_readable(p[0]) and store.is_readable(p[1]))
        if len(self.pairs) < len(pairs):
            logger.warning("%s: skipped %d pair(s) with an unreadable file", noisy_dir, len(pairs) - len(self.pairs))
        if not self.pairs:
            raise ConfigError(f"no readable noisy/clean pairs in {noisy_dir} and {clean_dir}")
        logger.info("paired %s: %d pairs", source.kind, len(self.pairs))

    @property
    def size(self) -> int:
        """Items this source contributes to an epoch by default: one per pair."""
        return len(self.pairs)

    def item(self, j: int, rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A random aligned segment of pair `j`; short files are zero-padded.

        Returns:
            (noisy, clean, noise = noisy - clean), each (length,) float32.

        Raises:
            AudioError: a file of the pair cannot be read.
        """
        noisy_ref, clean_ref = self.pairs[j]
        noisy_audio, clean_audio = self.store.open(noisy_ref), self.store.open(clean_ref)
        frames = min(noisy_audio.frames, clean_audio.frames)
        start = int(rng.integers(0, frames - length + 1)) if frames > length else 0
        stop = min(start + length, frames)
        noisy = fit_length(noisy_audio.read(start, stop), length).astype(np.float32)
        clean = fit_length(clean_audio.read(start, stop), length).astype(np.float32)
        return noisy, clean, noisy - clean
