"""DeepFilterNet's prepared HDF5 datasets, read directly with h5py (optional extra `dfn4[hdf5]`).

A file holds one group (`speech`, `noise` or `rir`) with one dataset per original audio file.
File attributes give `codec` ("pcm": an int16/float32 array of shape (C, N); "flac"/"vorbis":
a uint8 array holding a whole encoded file) and `sr`.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import soundfile as sf

from dfn4core.errors import AudioError, ConfigError

logger = logging.getLogger(__name__)

CODECS = ("pcm", "flac", "vorbis")


def require_h5py() -> ModuleType:
    """Imports h5py, or raises a ConfigError saying how to install it."""
    try:
        import h5py
    except ImportError as err:
        raise ConfigError("reading DeepFilterNet HDF5 data needs h5py: pip install 'dfn4[hdf5]'") from err
    return h5py


def list_datasets(path: Path, group: str) -> list[str]:
    """Names ("group/name") of the audio datasets in `group` of a DeepFilterNet HDF5 file, sorted.

    Raises:
        ConfigError: h5py missing, the file is not readable HDF5, has no such group, or an unknown codec.
    """
    h5py = require_h5py()
    try:
        with h5py.File(path, "r") as f:
            codec = _attr_str(f.attrs.get("codec", "pcm"))
            if codec not in CODECS:
                raise ConfigError(f"{path}: unknown codec {codec!r} (known: {', '.join(CODECS)})")
            if group not in f:
                raise ConfigError(f"{path}: no '{group}' group (groups: {', '.join(f.keys()) or 'none'})")
            items = f[group].items()
            return sorted(f"{group}/{name}" for name, obj in items if isinstance(obj, h5py.Dataset))
    except OSError as err:
        raise ConfigError(f"{path}: not a readable HDF5 file ({err})") from err


def pcm_scale(dtype: np.dtype) -> float:
    """Factor from stored pcm samples to float in [-1, 1]: 1 / 2**(bits-1) for integers, 1 for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return 1.0
    if dtype.kind == "i":
        return 1.0 / 2 ** (8 * dtype.itemsize - 1)
    raise ValueError(f"unsupported pcm dtype {dtype}")


def decode(dataset: Any, codec: str, name: str) -> np.ndarray:
    """Decodes a whole dataset to float32 audio.

    Args:
        dataset: an h5py dataset (or any array-like).
        codec: "pcm", "flac" or "vorbis".
        name: for error messages.

    Returns:
        float32 audio at the file's rate.

    Shapes:
        return: (C, N).

    Raises:
        AudioError: undecodable bytes, unsupported dtype, or non-finite samples.
    """
    data = np.asarray(dataset[()])
    if codec == "pcm":
        try:
            audio = data.astype(np.float32) * np.float32(pcm_scale(data.dtype))
        except ValueError as err:
            raise AudioError(name, str(err)) from err
        audio = audio[None] if audio.ndim == 1 else audio
    else:
        try:
            decoded, _ = sf.read(io.BytesIO(data.tobytes()), dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, ValueError) as err:
            raise AudioError(name, f"cannot decode {codec} data ({err})") from err
        audio = np.ascontiguousarray(decoded.T)
    if audio.ndim != 2 or audio.shape[1] == 0 or not np.isfinite(audio).all():
        raise AudioError(name, f"bad audio (shape {audio.shape}, or non-finite samples)")
    return audio


class Hdf5Reader:
    """Keeps HDF5 files open, one handle per file and process (handles never cross a fork or pickle)."""

    def __init__(self) -> None:
        self._files: dict[Path, Any] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def dataset(self, path: Path, key: str) -> tuple[Any, str, int]:
        """The dataset `key` of `path`, with the file's codec and sample rate.

        Raises:
            AudioError: the file or dataset cannot be read.
        """
        try:
            f = self._file(path)
            return f[key], _attr_str(f.attrs.get("codec", "pcm")), int(f.attrs["sr"])
        except (OSError, KeyError, ValueError) as err:
            raise AudioError(f"{path}:{key}", f"cannot read HDF5 dataset ({err})") from err

    def _file(self, path: Path) -> Any:
        if self._pid != os.getpid():  # forked: the parent's handles are not ours to use
            self._files, self._pid = {}, os.getpid()
        if path not in self._files:
            self._files[path] = require_h5py().File(path, "r")
        return self._files[path]


def _attr_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
