"""Index of audio files (folders, manifests, DeepFilterNet HDF5) and mono 48 kHz reads from them.

48 kHz files in a container libsndfile seeks cheaply are read in place. Everything else is
decoded and resampled once (dfn4core.io, streamed block by block) into a float32 .npy cache of
shape (N, C), keyed by path, mtime and size, and memory-mapped, so a segment costs one slice.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile as sf

from dfn4core.data import hdf5
from dfn4core.data.config import Channel
from dfn4core.errors import AudioError, ConfigError
from dfn4core.io import AUDIO_EXTENSIONS, AudioInfo, StreamResampler, audio_info, check_finite, iter_blocks, resample

logger = logging.getLogger(__name__)

DIRECT_FORMATS = frozenset({"WAV", "WAVEX", "W64", "RF64", "AIFF", "CAF", "FLAC"})
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})
HDF5_SUFFIXES = frozenset({".hdf5", ".h5"})
CACHE_VERSION = 1  # bump when the cached representation changes
CACHE_BLOCK = 1 << 16  # frames decoded per step while caching a file


@dataclass(frozen=True)
class AudioRef:
    """One audio item: a file, or a dataset `key` inside a DeepFilterNet HDF5 file."""

    path: Path
    key: str | None = None

    def __str__(self) -> str:
        return str(self.path) if self.key is None else f"{self.path}:{self.key}"


class Audio(Protocol):
    """Mono 48 kHz audio that can be read in pieces."""

    frames: int

    def read(self, start: int, stop: int) -> np.ndarray:
        """float32 samples [start, stop), shape (stop - start,) (shorter at the end)."""
        ...


def to_mono(block: np.ndarray, channel: Channel) -> np.ndarray:
    """(C, n) -> (n,): mean of channels for "downmix", else channel 0 / the given index (mono: as is)."""
    if block.shape[0] == 1:
        return block[0]
    if channel == "downmix":
        return block.mean(axis=0)
    return block[0 if channel == "first" else int(channel)]


class ArrayAudio:
    """Audio in an array-like: ndarray, memory map or h5py dataset.

    Args:
        data: the samples, (C, N), (N, C) or (N,).
        channel: channel policy (see DataConfig.channel).
        scale: factor to float in [-1, 1] (e.g. 1/32768 for int16 pcm).
        channels_first: whether 2-D data is (C, N) (else (N, C), as in the cache).
    """

    def __init__(self, data: Any, channel: Channel = "downmix", scale: float = 1.0, channels_first: bool = True):
        self.data, self.channel, self.scale, self.channels_first = data, channel, np.float32(scale), channels_first
        self.frames = int(data.shape[-1] if channels_first or data.ndim == 1 else data.shape[0])

    def read(self, start: int, stop: int) -> np.ndarray:
        if self.data.ndim == 1:
            block = np.asarray(self.data[start:stop], dtype=np.float32)[None]
        elif self.channels_first:
            block = np.asarray(self.data[:, start:stop], dtype=np.float32)
        else:
            block = np.asarray(self.data[start:stop], dtype=np.float32).T
        return to_mono(block * self.scale if self.scale != 1 else block, self.channel)


class FileAudio:
    """A 48 kHz audio file read in place, one seek per segment."""

    def __init__(self, path: Path, frames: int, channel: Channel):
        self.path, self.frames, self.channel = path, frames, channel

    def read(self, start: int, stop: int) -> np.ndarray:
        try:
            with sf.SoundFile(self.path) as f:
                f.seek(start)
                block = np.ascontiguousarray(f.read(stop - start, dtype="float32", always_2d=True).T)
        except (sf.SoundFileError, RuntimeError, OSError) as err:
            raise AudioError(self.path, f"read failed ({err})") from err
        check_finite(block, self.path)
        return to_mono(block, self.channel)


class AudioStore:
    """Opens AudioRefs as mono Audio at rate `sr`, through the disk cache; remembers unreadable items.

    Args:
        cache_dir: folder of the float32 cache; None = decode and resample on every open.
        channel: channel policy for multichannel audio.
        sr: the rate every file is resampled to (the model's `DspConfig.sr`).
    """

    def __init__(self, cache_dir: Path | None, channel: Channel = "downmix", *, sr: int):
        self.cache_dir, self.channel, self.sr = cache_dir, channel, sr
        self._hdf5 = hdf5.Hdf5Reader()
        self._bad: set[AudioRef] = set()

    def open(self, ref: AudioRef) -> Audio:
        """Opens `ref`; an unreadable one is logged once and raises AudioError every time.

        Raises:
            AudioError: the audio cannot be read, or lacks the configured channel.
        """
        if ref in self._bad:
            raise AudioError(str(ref), "unreadable (see earlier warning)")
        try:
            return self._open(ref)
        except AudioError as err:
            self._bad.add(ref)
            logger.warning("skipping unreadable audio: %s", err)
            raise

    def is_readable(self, ref: AudioRef) -> bool:
        """Cheap check for indexing: a cache hit, or a readable header (else logged, False)."""
        cached = self.cache_path(ref)
        if cached is not None and cached.exists():
            return True
        try:
            info = audio_info(ref.path)
            self._check_channels(info.channels, ref)
            return True
        except AudioError as err:
            self._bad.add(ref)
            logger.warning("skipping unreadable audio: %s", err)
            return False

    def cache_path(self, ref: AudioRef) -> Path | None:
        """Cache file of `ref` (it may not exist yet), or None without a cache or a readable stat."""
        if self.cache_dir is None:
            return None
        try:
            st = ref.path.stat()
        except OSError:
            return None
        ident = f"{CACHE_VERSION}|{ref.path.resolve()}|{ref.key}|{st.st_mtime_ns}|{st.st_size}|{self.sr}"
        digest = hashlib.sha1(ident.encode()).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.npy"

    def _open(self, ref: AudioRef) -> Audio:
        if ref.key is not None:
            dataset, codec, sr = self._hdf5.dataset(ref.path, ref.key)
            self._check_channels(dataset.shape[0] if codec == "pcm" and dataset.ndim == 2 else 1, ref)
            if codec == "pcm" and sr == self.sr:
                return ArrayAudio(dataset, self.channel, hdf5.pcm_scale(dataset.dtype))
            cached = self.cache_path(ref)
            if cached is not None and cached.exists():
                return self._load_cached(cached, ref)
            audio = resample(hdf5.decode(dataset, codec, str(ref)), sr, self.sr)
            self._check_channels(audio.shape[0], ref)
            return self._store(ref, cached, audio.shape[1], audio.shape[0], lambda f: _write_rows(f, audio))
        cached = self.cache_path(ref)
        if cached is not None and cached.exists():
            return self._load_cached(cached, ref)
        info = audio_info(ref.path)
        self._check_channels(info.channels, ref)
        if info.sr == self.sr and info.format in DIRECT_FORMATS:
            return FileAudio(ref.path, info.frames, self.channel)
        frames = math.floor(info.frames * self.sr / info.sr + 0.5)  # soxr's output length (round half up)
        return self._store(ref, cached, frames, info.channels, lambda f: _write_resampled(f, ref.path, info, frames, self.sr))

    def _store(self, ref: AudioRef, cached: Path | None, frames: int, channels: int, fill: Callable) -> Audio:
        """Writes `fill`'s rows into the cache and maps them; without a (writable) cache, keeps them in memory."""
        if cached is not None:
            try:
                _save_atomic(cached, frames, channels, fill)
                logger.debug("cached %s at %d Hz as %s", ref, self.sr, cached)
                return self._load_cached(cached, ref)
            except OSError as err:
                logger.warning("cannot write cache entry %s (%s); reading %s uncached", cached, err, ref)
        buffer = _MemoryRows(np.zeros((frames, channels), np.float32))
        fill(buffer)
        return ArrayAudio(buffer.rows, self.channel, channels_first=False)

    def _load_cached(self, cached: Path, ref: AudioRef) -> Audio:
        try:
            data = np.load(cached, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise AudioError(cached, f"corrupt cache entry of {ref}; delete it ({err})") from err
        self._check_channels(data.shape[1], ref)
        return ArrayAudio(data, self.channel, channels_first=False)

    def _check_channels(self, channels: int, ref: AudioRef) -> None:
        if isinstance(self.channel, int) and channels > 1 and self.channel >= channels:
            raise AudioError(str(ref), f"has {channels} channels, channel {self.channel} was asked for")


class _MemoryRows:
    """In-memory stand-in for a cache file: `write` fills rows of a (frames, C) array in order."""

    def __init__(self, rows: np.ndarray):
        self.rows, self.pos = rows, 0

    def write(self, data: bytes) -> None:
        block = np.frombuffer(data, "<f4").reshape(-1, self.rows.shape[1])
        self.rows[self.pos : self.pos + len(block)] = block
        self.pos += len(block)


def _write_rows(f: Any, block: np.ndarray, room: int | None = None) -> int:
    """Writes a (C, n) block as n frame-major rows (at most `room`); returns the rows written."""
    n = block.shape[1] if room is None else min(block.shape[1], room)
    f.write(np.ascontiguousarray(block[:, :n].T, dtype="<f4").tobytes())
    return n


def _write_resampled(f: Any, path: Path, info: AudioInfo, frames: int, sr: int) -> None:
    """Streams a file through StreamResampler into exactly `frames` rows (zero-padded if the header overstated)."""
    stream = StreamResampler(info.sr, sr, info.channels)
    done = 0
    for block in iter_blocks(path, CACHE_BLOCK):
        done += _write_rows(f, stream.process(block), frames - done)
    done += _write_rows(f, stream.flush(), frames - done)
    if done < frames:
        _write_rows(f, np.zeros((info.channels, frames - done), np.float32))


def _save_atomic(path: Path, frames: int, channels: int, fill: Callable) -> None:
    """Writes a (frames, channels) float32 .npy under a unique temporary name, then renames it.

    Concurrent workers never see half a file. Plain writes (not a memory map), so a full disk
    is an OSError rather than a crash.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    try:
        with open(tmp, "wb") as f:
            header = {"descr": "<f4", "fortran_order": False, "shape": (frames, channels)}
            np.lib.format.write_array_header_1_0(f, header)
            fill(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def scan_folder(folder: Path) -> list[Path]:
    """Audio files under `folder`, recursively, sorted; hidden files and folders are left out."""
    files = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(root) / n for n in names if not n.startswith(".") and _is_audio_name(n)]
    return sorted(files)


def _is_audio_name(name: str) -> bool:
    return Path(name).suffix.lower().lstrip(".") in AUDIO_EXTENSIONS


def read_manifest(path: Path) -> list[Path]:
    """Paths listed in a `.csv` (a `path` column) or `.jsonl` (a "path" key per line) manifest.

    Relative paths resolve against the manifest's folder.

    Raises:
        ConfigError: unreadable manifest, no `path` column, or a malformed line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read manifest ({err.strerror or err})") from err
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if "path" not in (reader.fieldnames or []):
            raise ConfigError(f"{path}: a CSV manifest needs a 'path' column (has: {reader.fieldnames})")
        entries = [row["path"] for row in reader]
    else:
        entries = [_jsonl_path(line, path, i) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    return [Path(e) if Path(e).is_absolute() else path.parent / e for e in entries if e and e.strip()]


def _jsonl_path(line: str, manifest: Path, lineno: int) -> str:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{manifest}:{lineno}: invalid JSON ({err.msg})") from err
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise ConfigError(f"{manifest}:{lineno}: each line needs a \"path\" string")
    return entry["path"]


def build_index(entries: Sequence[Path], role: str, store: AudioStore) -> tuple[AudioRef, ...]:
    """Lists the readable audio of folders, manifests, audio files and HDF5 files.

    Args:
        entries: folders, manifests (.csv/.jsonl), audio files or DeepFilterNet HDF5 files.
        role: "speech", "noise" or "rir"; also the HDF5 group read.
        store: checks each file (unreadable ones are logged and skipped).

    Returns:
        The AudioRefs, in a fixed order (entries in order, each sorted).

    Raises:
        ConfigError: an entry does not exist, or nothing readable is left.
    """
    refs: list[AudioRef] = []
    skipped = 0
    for entry in entries:
        candidates = _expand(entry, role)
        readable = [ref for ref in candidates if ref.key is not None or store.is_readable(ref)]
        skipped += len(candidates) - len(readable)
        refs += readable
    if skipped:
        logger.warning("%s: skipped %d unreadable file(s) of %d", role, skipped, skipped + len(refs))
    if not refs:
        raise ConfigError(f"no readable {role} audio in {', '.join(map(str, entries))}")
    logger.info("%s: %d item(s) from %d entr%s", role, len(refs), len(entries), "y" if len(entries) == 1 else "ies")
    return tuple(refs)


def _expand(entry: Path, role: str) -> list[AudioRef]:
    suffix = entry.suffix.lower()
    if entry.is_dir():
        return [AudioRef(p) for p in scan_folder(entry)]
    if not entry.exists():
        raise ConfigError(f"{role} entry {entry} does not exist")
    if suffix in HDF5_SUFFIXES:
        return [AudioRef(entry, key) for key in hdf5.list_datasets(entry, role)]
    if suffix in MANIFEST_SUFFIXES:
        return [AudioRef(p) for p in read_manifest(entry)]
    return [AudioRef(entry)]
