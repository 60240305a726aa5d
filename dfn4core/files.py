"""File-level enhancement in constant memory: plan output paths, stream each file through the model.

Each file goes block by block: read -> resample to the model rate -> streaming enhancer -> resample
to the output rate -> write, so an hour-long file needs no more memory than a ten-second one.
The model is a torch DFN4 or any `Backend` (e.g. the onnxruntime `OnnxModel`); torch is imported
only for a torch model, so the ONNX backend runs without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from dfn4core.atomic import remove_stale_temps, same_file
from dfn4core.errors import AudioError, ConfigError, Dfn4Error
from dfn4core.io import (
    AudioInfo,
    AudioWriter,
    StreamResampler,
    audio_info,
    block_frames,
    iter_blocks,
    output_format,
)
from dfn4core.plan import check_rate, plan_outputs, with_format  # noqa: F401  (plan_outputs: the CLI's entry)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class FileResult:
    """One enhanced file.

    Args:
        in_path: the noisy input.
        out_path: the enhanced output as written.
        duration_s: length of the audio in seconds.
        seconds_taken: wall-clock time to enhance it.
        rtf: real-time factor, seconds_taken / duration_s (below 1 is faster than real time).
    """

    in_path: Path
    out_path: Path
    duration_s: float
    seconds_taken: float
    rtf: float
    status: ClassVar[str] = "ok"


@dataclass(frozen=True)
class FileFailure:
    """One file that could not be enhanced; `reason` is one line."""

    in_path: Path
    out_path: Path
    reason: str
    status: ClassVar[str] = "failed"


@dataclass(frozen=True)
class FileSkipped:
    """One file left alone because its output exists (and `overwrite` is off): a finished earlier run."""

    in_path: Path
    out_path: Path
    status: ClassVar[str] = "skipped"


def out_frames(frames: int, sr_in: int, sr_out: int) -> int:
    """Length at sr_out of `frames` samples at sr_in: frames * sr_out / sr_in rounded half up."""
    return (2 * frames * sr_out + sr_in) // (2 * sr_in)


def _check_output(in_path: Path, out_path: Path, overwrite: bool) -> None:
    if same_file(in_path, out_path):
        raise AudioError(out_path, "is the input file; an input is never overwritten")
    if out_path.is_dir():
        raise AudioError(out_path, "is a folder")
    if out_path.exists() and not overwrite:
        raise AudioError(out_path, "exists (use --overwrite)")


class StreamEnhancer(Protocol):
    """A streaming enhancer: (C, N) numpy chunks in, (C, N) out, `latency` samples late; flush() ends."""

    latency: int

    def process(self, chunk: np.ndarray) -> np.ndarray: ...

    def flush(self) -> np.ndarray: ...


class Backend(Protocol):
    """What the pipeline needs of a model: its rate and a factory of streaming enhancers."""

    sr: int

    def new_enhancer(self, channels: int, atten_lim_db: float | None) -> StreamEnhancer: ...


def torch_enhancer(model: torch.nn.Module, atten_lim_db: float | None, channels: int) -> Any:
    """The streaming `dfn4core.streaming.Enhancer` of a torch model (torch is imported here, not before)."""
    from dfn4core.streaming import Enhancer

    return Enhancer(model, atten_lim_db=atten_lim_db, channels=channels)


class TorchBackend:
    """A torch model as a Backend: numpy chunks go to its device and come back as float32 numpy.

    Args:
        model: a DFN4 in eval mode.
        make_enhancer: builds the streaming enhancer of a file from (model, atten_lim_db, channels).
    """

    def __init__(self, model: torch.nn.Module, make_enhancer: Callable[..., Any] = torch_enhancer):
        import torch

        self.model, self.sr, self.make_enhancer = model, model.cfg.dsp.sr, make_enhancer
        param = next(model.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")

    def new_enhancer(self, channels: int, atten_lim_db: float | None) -> _TorchStream:
        return _TorchStream(self.make_enhancer(self.model, atten_lim_db=atten_lim_db, channels=channels), self.device)


class _TorchStream:
    def __init__(self, enhancer: Any, device: torch.device):
        self.enhancer, self.device, self.latency = enhancer, device, enhancer.latency

    def process(self, chunk: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).to(self.device)
            return self.enhancer.process(x).detach().to("cpu", torch.float32).numpy()

    def flush(self) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.enhancer.flush().detach().to("cpu", torch.float32).numpy()


def as_backend(model: Any) -> Backend:
    """`model` itself when it is a Backend (has `new_enhancer`), else a torch model wrapped as one."""
    return model if hasattr(model, "new_enhancer") else TorchBackend(model)


class _Chain:
    """Per-file streaming stages: resample in, enhance (dropping its latency), resample out."""

    def __init__(self, backend: Backend, channels: int, sr_in: int, sr_out: int, atten_lim_db: float | None):
        sr_model = backend.sr
        self.channels = channels
        self.resample_in = StreamResampler(sr_in, sr_model, channels) if sr_in != sr_model else None
        self.resample_out = StreamResampler(sr_model, sr_out, channels) if sr_out != sr_model else None
        self.enhancer = backend.new_enhancer(channels, atten_lim_db)
        self.to_drop = self.enhancer.latency

    def process(self, block: np.ndarray) -> np.ndarray:
        x = self.resample_in.process(block) if self.resample_in else block
        y = self._enhance(self.enhancer.process(x))
        return self.resample_out.process(y) if self.resample_out else y

    def flush(self) -> np.ndarray:
        parts = []
        if self.resample_in is not None:
            parts.append(self._enhance(self.enhancer.process(self.resample_in.flush())))
        parts.append(self._enhance(self.enhancer.flush()))
        y = np.concatenate(parts, axis=1)
        if self.resample_out is None:
            return y
        return np.concatenate([self.resample_out.process(y), self.resample_out.flush()], axis=1)

    def _enhance(self, y: np.ndarray) -> np.ndarray:
        drop = min(self.to_drop, y.shape[1])
        self.to_drop -= drop
        return y[:, drop:]


class _LengthKeeper:
    """Writes exactly out_frames(frames_in) samples: holds back any excess, pads the end."""

    def __init__(self, writer: AudioWriter, sr_in: int, sr_out: int):
        self.writer, self.sr_in, self.sr_out = writer, sr_in, sr_out
        self.pending = np.zeros((writer.channels, 0), np.float32)

    def write(self, y: np.ndarray, frames_in: int, final: bool = False) -> None:
        limit = out_frames(frames_in, self.sr_in, self.sr_out)
        buf = np.concatenate([self.pending, y], axis=1) if self.pending.shape[1] else y
        n = max(0, min(limit - self.writer.frames, buf.shape[1]))
        self.writer.write(buf[:, :n])
        self.pending = buf[:, n:]
        if final and self.writer.frames < limit:
            self.writer.write(np.zeros((self.writer.channels, limit - self.writer.frames), np.float32))


def enhance_file(
    model: torch.nn.Module | Backend,
    in_path: str | Path,
    out_path: str | Path,
    *,
    sr_out: int | None = None,
    atten_lim_db: float | None = None,
    overwrite: bool = False,
    block_s: float = 10.0,
    on_progress: ProgressFn | None = None,
) -> FileResult:
    """Enhances one audio file in constant memory; the output lines up with the input.

    Every channel is enhanced (channels run as a batch). The output keeps the input's container
    and encoding where libsndfile can write them (else WAV, and the output gets a ".wav" suffix),
    and is written atomically: on any error nothing is left at `out_path`.

    Args:
        model: a DFN4 in eval mode (audio follows its device), or a Backend such as
            `dfn4core.export.runtime.OnnxModel`.
        in_path: noisy audio file, any rate and channel count libsndfile reads.
        out_path: where to write the enhanced audio.
        sr_out: output rate in Hz; None = the input's rate.
        atten_lim_db: limit of the noise attenuation in dB; None = no limit.
        overwrite: replace an existing `out_path` (never the input itself).
        block_s: seconds of input read per block.
        on_progress: called with (done_frames, total_frames) of the input after each block.

    Returns:
        The paths, duration and real-time factor.

    Raises:
        AudioError: unreadable or non-finite input, `out_path` is the input or exists without
            `overwrite`, or the output cannot be written.
        ConfigError: `sr_out` outside MIN_SR_HZ..MAX_SR_HZ, a negative `atten_lim_db`, or `block_s` <= 0.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    if block_s <= 0:
        raise ConfigError(f"block_s must be positive, got {block_s}")
    check_rate(sr_out)
    if atten_lim_db is not None and atten_lim_db < 0:
        raise ConfigError(f"atten_lim_db must be >= 0, got {atten_lim_db}")
    info = audio_info(in_path)
    sr_out = sr_out or info.sr
    fmt, subtype = output_format(info, sr_out, info.channels)
    out_path = with_format(out_path, info, fmt)
    _check_output(in_path, out_path, overwrite)
    logger.debug("%s: %s -> %s %s/%s %d Hz", in_path, info, out_path, fmt, subtype, sr_out)
    start = time.perf_counter()
    with AudioWriter(out_path, sr_out, info.channels, fmt, subtype) as writer:
        frames_in = _stream(as_backend(model), in_path, info, writer, sr_out, atten_lim_db, block_s, on_progress)
    seconds_taken = time.perf_counter() - start
    duration_s = frames_in / info.sr
    return FileResult(in_path, out_path, duration_s, seconds_taken, seconds_taken / max(duration_s, 1e-9))


def _stream(
    backend: Backend,
    in_path: Path,
    info: AudioInfo,
    writer: AudioWriter,
    sr_out: int,
    atten_lim_db: float | None,
    block_s: float,
    on_progress: ProgressFn | None,
) -> int:
    chain = _Chain(backend, info.channels, info.sr, sr_out, atten_lim_db)
    keeper = _LengthKeeper(writer, info.sr, sr_out)
    frames_in = 0
    for block in iter_blocks(in_path, block_frames(block_s, info.sr, info.channels)):
        frames_in += block.shape[1]
        keeper.write(_finite(chain.process(block), in_path), frames_in)
        if on_progress is not None:
            on_progress(frames_in, max(frames_in, info.frames))
    keeper.write(_finite(chain.flush(), in_path), frames_in, final=True)
    declared = info.header_frames or info.frames
    if frames_in != declared:
        logger.warning(
            "%s: truncated or damaged: the header says %d samples (%.2f s), read %d (%.2f s)",
            in_path, declared, declared / info.sr, frames_in, frames_in / info.sr,
        )  # fmt: skip
    return frames_in


def _finite(y: np.ndarray, in_path: Path) -> np.ndarray:
    if not np.isfinite(y).all():
        raise AudioError(in_path, "enhancement produced NaN or infinite samples")
    return y


def settled_outputs(pairs: Iterable[tuple[Path, Path]], overwrite: bool = False) -> list[FileSkipped | FileFailure]:
    """What enhance_files reports, found without reading any audio, for the pairs it will not enhance.

    An existing output without `overwrite` is a FileSkipped (kept); an output that may not be
    written (the input itself, a folder) is a FileFailure. Pairs left out are the ones to enhance,
    so when every pair is settled a caller can report at once, without loading a model.
    """
    settled = (_settled(Path(i), Path(o), overwrite) for i, o in pairs)
    return [r for r in settled if r is not None]


def _settled(in_path: Path, out_path: Path, overwrite: bool) -> FileSkipped | FileFailure | None:
    if not overwrite and out_path.is_file() and not same_file(in_path, out_path):
        return FileSkipped(in_path, out_path)
    try:
        _check_output(in_path, out_path, overwrite)
    except AudioError as err:
        return _failure(in_path, out_path, err)
    return None


def _failure(in_path: Path, out_path: Path, err: Dfn4Error) -> FileFailure:
    """A file's failure; the reason names the path unless it is the input's own."""
    reason = err.reason if isinstance(err, AudioError) and err.path == Path(in_path) else str(err)
    return FileFailure(in_path, out_path, reason)


def enhance_files(
    model: torch.nn.Module | Backend,
    pairs: Iterable[tuple[Path, Path]],
    *,
    overwrite: bool = False,
    on_file_start: Callable[[Path, AudioInfo], None] | None = None,
    on_progress: ProgressFn | None = None,
    on_file_end: Callable[[FileResult | FileFailure | FileSkipped], None] | None = None,
    **opts: Any,
) -> list[FileResult | FileFailure | FileSkipped]:
    """Enhances many files; a failure is recorded and never stops the others.

    An existing output is kept and its input skipped unless `overwrite`, so a rerun after an
    interruption finishes the rest. Temporary files that a killed run left in the output folders
    are removed first.

    Args:
        model: a DFN4 in eval mode, or a Backend (see enhance_file).
        pairs: (input, output) paths, e.g. from plan_outputs.
        overwrite: replace existing outputs (never an input).
        on_file_start: called with (input, its AudioInfo) before a readable file is enhanced.
        on_progress: called with (done_frames, total_frames) of the current file.
        on_file_end: called with each file's result, failure or skip.
        **opts: keyword options of enhance_file (sr_out, atten_lim_db, block_s).

    Returns:
        One FileResult, FileFailure or FileSkipped per pair, in order.
    """
    pairs = [(Path(i), Path(o)) for i, o in pairs]
    for folder in dict.fromkeys(out.parent for _, out in pairs):
        remove_stale_temps(folder)
    results: list[FileResult | FileFailure | FileSkipped] = []
    for in_path, out_path in pairs:
        result: FileResult | FileFailure | FileSkipped | None = _settled(in_path, out_path, overwrite)
        if result is None:
            result = _enhance_one(model, in_path, out_path, on_file_start, on_progress, overwrite=overwrite, **opts)
        if isinstance(result, FileFailure):
            logger.info("%s: failed: %s", in_path, result.reason)
        if on_file_end is not None:
            on_file_end(result)
        results.append(result)
    return results


def _enhance_one(
    model: Any, in_path: Path, out_path: Path, on_file_start: Callable | None, on_progress: ProgressFn | None, **opts: Any
) -> FileResult | FileFailure:
    try:
        info = audio_info(in_path)
        if on_file_start is not None:
            on_file_start(in_path, info)
        return enhance_file(model, in_path, out_path, on_progress=on_progress, **opts)
    except Dfn4Error as err:
        return _failure(in_path, out_path, err)
    except (RuntimeError, OSError, ValueError, MemoryError) as err:
        logger.debug("%s failed", in_path, exc_info=True)
        return FileFailure(in_path, out_path, f"unexpected error: {type(err).__name__}: {err}")
