"""Audio files and resampling: the only module that touches audio files.

Reading (whole files or streamed blocks), atomic incremental writing, and soxr resampling
(one-shot and streaming). Audio arrays are float32 with shape (C, N).
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf
import soxr

from dfn4core.atomic import temp_path
from dfn4core.errors import AudioError

logger = logging.getLogger(__name__)

RESAMPLE_QUALITY = "HQ"
# A block holds block_s seconds of up to this many channels; with more channels it is shorter, so the
# memory of one block (model activations, resampler, writer) stays that of a stereo file whatever the
# channel count (full, 32 channels x 4 s: peak RSS 2.1 GB with whole blocks, 0.84 GB with this bound).
MAX_BLOCK_CHANNELS = 2
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})

# File extension -> libsndfile container; only those this libsndfile knows are used (AUDIO_EXTENSIONS).
_EXT_FORMATS = {
    "wav": "WAV", "wave": "WAV", "flac": "FLAC", "ogg": "OGG", "oga": "OGG", "opus": "OGG",
    "mp3": "MP3", "aiff": "AIFF", "aif": "AIFF", "aifc": "AIFF", "au": "AU", "snd": "AU",
    "caf": "CAF", "w64": "W64", "rf64": "RF64", "sph": "NIST", "nist": "NIST", "voc": "VOC",
    "avr": "AVR", "htk": "HTK", "sd2": "SD2", "paf": "PAF", "pvf": "PVF", "xi": "XI",
    "sds": "SDS", "wve": "WVE", "ircam": "IRCAM", "sf": "IRCAM", "svx": "SVX", "8svx": "SVX",
}
_AVAILABLE = set(sf.available_formats())
EXT_FORMATS = {ext: fmt for ext, fmt in _EXT_FORMATS.items() if fmt in _AVAILABLE}
AUDIO_EXTENSIONS = frozenset(EXT_FORMATS)


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says.

    Args:
        sr: sample rate in Hz.
        channels: number of channels.
        frames: samples per channel.
        format: libsndfile container name, e.g. "WAV", "FLAC".
        subtype: libsndfile sample encoding, e.g. "PCM_16", "FLOAT".
        duration_s: frames / sr.
        header_frames: samples per channel the header declares, when it declares more or fewer
            than the file holds (a truncated file); None when they agree.
    """

    sr: int
    channels: int
    frames: int
    format: str
    subtype: str
    duration_s: float
    header_frames: int | None = None


def _sf_message(err: Exception) -> str:
    msg = getattr(err, "error_string", None) or str(err)
    return " ".join(msg.split()).rstrip(".")


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file")


def _open_read(path: str | Path) -> sf.SoundFile:
    path = Path(path)
    _check_readable(path)
    try:
        f = sf.SoundFile(path)
    except (sf.SoundFileError, RuntimeError, ValueError) as err:
        raise AudioError(path, f"not an audio file or corrupt ({_sf_message(err)})") from err
    if f.frames <= 0:
        f.close()
        raise AudioError(path, "empty file (no audio frames)")
    return f


def audio_info(path: str | Path) -> AudioInfo:
    """Reads the header of an audio file.

    Args:
        path: any file libsndfile reads.

    Returns:
        The file's rate, channels, length, container and sample encoding.

    Raises:
        AudioError: missing, empty, unreadable, or not an audio file.
    """
    with _open_read(path) as f:
        header_frames = _declared_frames(f)
        return AudioInfo(f.samplerate, f.channels, f.frames, f.format, f.subtype, f.frames / f.samplerate, header_frames)


# libsndfile's log of a WAV/AIFF whose data chunk is cut short: "data : 288000 (should be 96000)".
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _declared_frames(f: sf.SoundFile) -> int | None:
    """Frames the header declares when libsndfile found fewer bytes of audio (it then reads what is there)."""
    found = _SHORT_CHUNK.search(f.extra_info)
    if found is None:
        return None
    declared, present = int(found.group(1)), int(found.group(2))
    return round(f.frames * declared / present) if present else None


def check_finite(block: np.ndarray, path: str | Path | None) -> None:
    """Raises AudioError if `block` holds a NaN or an infinite sample."""
    if not np.isfinite(block).all():
        raise AudioError(path, "contains NaN or infinite samples")


def block_frames(block_s: float, sr: int, channels: int) -> int:
    """Samples per channel of one block: block_s seconds, shortened beyond MAX_BLOCK_CHANNELS channels."""
    return max(1, round(block_s * sr * min(1.0, MAX_BLOCK_CHANNELS / channels)))


def iter_blocks(path: str | Path, block_frames: int) -> Iterator[np.ndarray]:
    """Streams an audio file in blocks, so memory stays constant for any length.

    Args:
        path: audio file.
        block_frames: samples per channel in each block (the last one may be shorter).

    Yields:
        float32 blocks; every block is checked for NaN and infinity.

    Shapes:
        each block: (C, n) with 0 < n <= block_frames.

    Raises:
        AudioError: the file cannot be opened or read, or holds non-finite samples.
    """
    if block_frames <= 0:
        raise ValueError(f"block_frames must be positive, got {block_frames}")
    with _open_read(path) as f:
        while True:
            try:
                data = f.read(block_frames, dtype="float32", always_2d=True)
            except (sf.SoundFileError, RuntimeError) as err:
                raise AudioError(path, f"read failed ({_sf_message(err)})") from err
            if len(data) == 0:
                return
            block = np.ascontiguousarray(data.T)
            check_finite(block, path)
            yield block


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Reads a whole (small) audio file; use iter_blocks for long files.

    Args:
        path: audio file.

    Returns:
        (audio, sr): float32 audio and its sample rate in Hz.

    Shapes:
        audio: (C, N).

    Raises:
        AudioError: the file cannot be read or holds non-finite samples.
    """
    with _open_read(path) as f:
        sr = f.samplerate
        try:
            data = f.read(dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as err:
            raise AudioError(path, f"read failed ({_sf_message(err)})") from err
    audio = np.ascontiguousarray(data.T)
    check_finite(audio, path)
    return audio, sr


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resamples with soxr (high quality); output length is round(N * sr_out / sr_in).

    Args:
        x: audio.
        sr_in: rate of x in Hz.
        sr_out: wanted rate in Hz.

    Returns:
        float32 audio at sr_out, same layout as x.

    Shapes:
        x: (C, N) or (N,) -> (C, M) or (M,).
    """
    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out:
        return x
    if x.ndim == 1:
        return soxr.resample(x, sr_in, sr_out, quality=RESAMPLE_QUALITY)
    y = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(y.reshape(-1, x.shape[0]).T)


class StreamResampler:
    """Streaming soxr resampler for (C, n) blocks; concatenated output equals `resample` of the whole.

    Args:
        sr_in: input rate in Hz.
        sr_out: output rate in Hz.
        channels: number of channels, all resampled together.
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int):
        self.sr_in, self.sr_out, self.channels = sr_in, sr_out, channels
        self._stream = soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality=RESAMPLE_QUALITY)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resamples the next block; (C, n) -> (C, m), m may be 0 while soxr fills its filter."""
        return self._run(block, last=False)

    def flush(self) -> np.ndarray:
        """Returns the samples soxr still holds; (C, m). The resampler is then ready for a new signal."""
        out = self._run(np.zeros((self.channels, 0), np.float32), last=True)
        self._stream.clear()
        return out

    def _run(self, block: np.ndarray, last: bool) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(block, dtype=np.float32).T)
        y = self._stream.resample_chunk(x, last=last)
        return np.ascontiguousarray(y.reshape(-1, self.channels).T)


def format_for_path(path: str | Path) -> str | None:
    """The libsndfile container an extension stands for ("x.flac" -> "FLAC"), or None if unknown."""
    return EXT_FORMATS.get(Path(path).suffix.lower().lstrip("."))


def can_write(format: str, subtype: str, sr: int, channels: int) -> bool:
    """Whether libsndfile can write this container/encoding at this rate and channel count."""
    try:
        with sf.SoundFile(io.BytesIO(), "w", sr, channels, subtype, format=format):
            return True
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError):
        return False


def output_format(info: AudioInfo, sr: int, channels: int, warn: bool = True) -> tuple[str, str]:
    """Chooses how to write audio derived from a file: keep its container and encoding if possible.

    Falls back to the container's default encoding, then to WAV (FLOAT for float input,
    else PCM_16) with a logged warning.

    Args:
        info: the input file's header.
        sr: output rate in Hz.
        channels: output channels.
        warn: log a warning when falling back (False when only planning the output's name).

    Returns:
        (format, subtype) for AudioWriter.
    """
    candidates = [(info.format, info.subtype)]
    default = sf.default_subtype(info.format) if info.format in _AVAILABLE else None
    if default and default != info.subtype:
        candidates.append((info.format, default))
    for fmt, subtype in candidates:
        if can_write(fmt, subtype, sr, channels):
            if subtype != info.subtype and warn:
                logger.warning("cannot write %s/%s at %d Hz; writing %s/%s", fmt, info.subtype, sr, fmt, subtype)
            return fmt, subtype
    fallback = ("WAV", "FLOAT" if info.subtype in FLOAT_SUBTYPES else "PCM_16")
    if warn:
        logger.warning("cannot write %s/%s at %d Hz; writing %s/%s", info.format, info.subtype, sr, *fallback)
    return fallback


class AudioWriter:
    """Writes (C, n) blocks to an audio file atomically.

    Blocks go to a hidden temporary file in the target's folder, which replaces the target only
    when the `with` block ends without an error; on error it is removed, so a failed run never
    leaves a half-written file and never clobbers an existing one.

    Args:
        path: target file; its folder is created if needed.
        sr: sample rate in Hz.
        channels: number of channels.
        format: libsndfile container; None = from the target's extension.
        subtype: sample encoding; None = the container's default. Non-float encodings are
            clipped to [-1, 1].
    """

    def __init__(self, path: str | Path, sr: int, channels: int, format: str | None = None, subtype: str | None = None):
        self.path = Path(path)
        self.sr, self.channels = sr, channels
        self.format = format or format_for_path(self.path)
        if self.format is None:
            raise AudioError(self.path, f"unknown audio file extension {self.path.suffix!r}")
        self.subtype = subtype or sf.default_subtype(self.format)
        self.frames = 0
        self._clip = self.subtype not in FLOAT_SUBTYPES
        self._tmp = temp_path(self.path)
        self._file: sf.SoundFile | None = None

    def __enter__(self) -> AudioWriter:
        if self.path.is_dir():
            raise AudioError(self.path, "is a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = sf.SoundFile(self._tmp, "x", self.sr, self.channels, self.subtype, format=self.format)
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError) as err:
            self._remove_tmp()
            reason = f"cannot write {self.format}/{self.subtype} at {self.sr} Hz ({_sf_message(err)})"
            raise AudioError(self.path, reason) from err
        return self

    def write(self, block: np.ndarray) -> None:
        """Appends a block; shape (C, n)."""
        if self._file is None:
            raise RuntimeError("AudioWriter.write outside its `with` block")
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected a ({self.channels}, n) block, got shape {block.shape}")
        if block.shape[1] == 0:
            return
        if self._clip:
            block = np.clip(block, -1.0, 1.0)
        try:
            self._file.write(block.T)
        except (sf.SoundFileError, RuntimeError, OSError) as err:
            raise AudioError(self.path, f"write failed ({_sf_message(err)})") from err
        self.frames += block.shape[1]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._file is not None:
                self._file.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
        except (sf.SoundFileError, RuntimeError, OSError) as err:
            if exc_type is None:
                raise AudioError(self.path, f"write failed ({_sf_message(err)})") from err
        finally:
            self._file = None
            self._remove_tmp()

    def _remove_tmp(self) -> None:
        try:
            self._tmp.unlink(missing_ok=True)
        except OSError:
            logger.warning("could not remove temporary file %s", self._tmp)


def write_audio(path: str | Path, audio: np.ndarray, sr: int, subtype: str | None = None) -> None:
    """Writes a whole array atomically; container from the extension.

    Args:
        path: target file.
        audio: samples in [-1, 1] for integer encodings.
        sr: sample rate in Hz.
        subtype: sample encoding; None = the container's default.

    Shapes:
        audio: (C, N) or (N,).
    """
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    with AudioWriter(path, sr, audio.shape[0], subtype=subtype) as w:
        w.write(audio)
