"""Output planning for file enhancement: which files are inputs, and the final path of each output.

Every output path is decided, and checked against the inputs and the other outputs, before anything
is written: an input is never overwritten and no two inputs share an output.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from dfn4core.atomic import same_file
from dfn4core.errors import AudioError, ConfigError
from dfn4core.io import AUDIO_EXTENSIONS, AudioInfo, audio_info, output_format

logger = logging.getLogger(__name__)

MIN_SR_HZ, MAX_SR_HZ = 8_000, 384_000  # output rates accepted: telephone band to the highest common rate


def check_rate(sr_out: int | None) -> None:
    """Raises ConfigError unless `sr_out` is None or within MIN_SR_HZ..MAX_SR_HZ."""
    if sr_out is not None and not MIN_SR_HZ <= sr_out <= MAX_SR_HZ:
        raise ConfigError(f"output rate {sr_out} Hz is outside {MIN_SR_HZ}..{MAX_SR_HZ} Hz")


def with_format(out_path: Path, info: AudioInfo, fmt: str) -> Path:
    """`out_path`, or its ".wav" twin when the input's container cannot be written (output_format fell back)."""
    return out_path if fmt == info.format else out_path.with_suffix(".wav")


def _final_output(in_path: Path, out_path: Path, sr_out: int | None) -> Path:
    """The path enhance_file will write for `out_path`, after any format fallback."""
    try:
        info = audio_info(in_path)
    except AudioError:
        return out_path  # an unreadable input fails later with its reason; nothing is written for it
    fmt, _ = output_format(info, sr_out or info.sr, info.channels, warn=False)
    return with_format(out_path, info, fmt)


class _Planned(NamedTuple):
    inp: Path
    named: Path  # the output named after the input
    final: Path  # `named` after any format fallback
    in_folder: bool  # found in an input folder (not given by name)


def _audio_files(folder: Path, recursive: bool, out_dir: Path) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    # An output folder strictly inside the input folder holds earlier outputs, not inputs.
    skip = out_dir.resolve() if folder.resolve() in out_dir.resolve().parents else None
    files = []
    for f in found:
        rel = f.relative_to(folder).parts
        hidden = any(part.startswith(".") for part in rel)
        if hidden or not f.is_file() or f.suffix.lower().lstrip(".") not in AUDIO_EXTENSIONS:
            continue
        if skip is not None and skip in f.resolve().parents:
            continue
        files.append(f)
    return sorted(files)


def _check_suffix(suffix: str) -> None:
    if any(sep in suffix for sep in ("/", "\\", "\0")):
        raise ConfigError(f"suffix {suffix!r} must be part of a file name: no path separators")


def plan_outputs(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    suffix: str = "",
    recursive: bool = False,
    sr_out: int | None = None,
) -> list[tuple[Path, Path]]:
    """Pairs each input file with the output path that will be written, before anything is written.

    Folders are expanded to the audio files in them (by extension, hidden files skipped), in all
    subfolders if `recursive`, keeping the relative subfolders under `out_dir`. Files given
    explicitly are used whatever their extension. A file found in a folder that is the output of
    another input (an earlier run's output in the input tree) is not an input. Output paths are
    final: a format that cannot be written at `sr_out` already has its ".wav" name.

    Args:
        inputs: files and folders.
        out_dir: folder for the outputs.
        suffix: added to each output's stem ("a.wav" -> "a{suffix}.wav"); no path separators.
        recursive: descend into subfolders of folder inputs.
        sr_out: output rate in Hz (None: each input's), which decides any format fallback.

    Returns:
        (input, output) pairs, in the order given, each folder's files sorted.

    Raises:
        AudioError: an input does not exist, an output would replace an input, or two inputs
            map to one output.
        ConfigError: a suffix with a path separator, or `sr_out` outside MIN_SR_HZ..MAX_SR_HZ.
    """
    _check_suffix(suffix)
    check_rate(sr_out)
    out_dir = Path(out_dir)
    found: list[tuple[Path, Path, bool]] = []
    for inp in map(Path, inputs):
        if inp.is_dir():
            files = _audio_files(inp, recursive, out_dir)
            if not files:
                logger.warning("%s: no audio files found", inp)
            found += [(f, out_dir / f.relative_to(inp).parent / f"{f.stem}{suffix}{f.suffix}", True) for f in files]
        elif inp.exists():
            found.append((inp, out_dir / f"{inp.stem}{suffix}{inp.suffix}", False))
        else:
            raise AudioError(inp, "no such file or folder")
    planned = [_Planned(inp, named, _final_output(inp, named, sr_out), in_folder) for inp, named, in_folder in found]
    writers: dict[Path, set[Path]] = {}  # an output (as named and as final, resolved) -> the inputs writing it
    for p in planned:
        for out in (p.named.resolve(), p.final.resolve()):
            writers.setdefault(out, set()).add(p.inp.resolve())
    # A file found in a folder that another input writes is an earlier output, not an input.
    kept = [p for p in planned if not (p.in_folder and writers.get(p.inp.resolve(), set()) - {p.inp.resolve()})]
    if len(kept) < len(planned):
        logger.info("%d files in the input folders are outputs of other inputs: not enhanced", len(planned) - len(kept))
    _check_plan(kept)
    return [(p.inp, p.final) for p in kept]


def _check_plan(planned: list[_Planned]) -> None:
    inputs = {p.inp.resolve(): p.inp for p in planned}
    seen: dict[Path, Path] = {}
    for inp, named, final, _ in planned:
        for out in (named, final):
            other = inputs.get(out.resolve())
            if other is not None and same_file(other, inp):
                raise AudioError(inp, f"its output {out} would replace it (an input is never overwritten): "
                                      "choose another --out-dir or a --suffix")  # fmt: skip
            if other is not None:
                raise AudioError(out, f"is an input and would be the output of {inp}")
        if final.resolve() in seen:
            raise AudioError(final, f"would be written twice, from {seen[final.resolve()]} and {inp}")
        seen[final.resolve()] = inp
