"""Training data configuration: typed, frozen dataclasses read from a TOML file (`load_data_config`).

Every key of the TOML file is a field below; an unknown key is a ConfigError naming it and the
file. Relative paths resolve against the TOML file's folder.
"""

from __future__ import annotations

import configparser
import dataclasses
import functools
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from dfn4core.config import DspConfig, dataclass_from_dict
from dfn4core.errors import ConfigError

SPLITS = ("train", "valid")
Channel = Union[Literal["downmix", "first"], int]
PairedKind = Literal["voicebank", "folders"]
VOICEBANK_SUBSETS = ("trainset_28spk", "trainset_56spk", "testset")


@dataclass(frozen=True)
class MixSource:
    """On-the-fly mixing: clean speech + noise (+ room impulse responses), TOML `[[train.mix]]`.

    Each list entry is a folder (searched recursively for every format libsndfile reads), a
    manifest (`.csv` with a `path` column, or `.jsonl` with a "path" key per line; relative
    paths in it resolve against the manifest's folder), a single audio file, or a DeepFilterNet
    HDF5 file (`.hdf5`/`.h5`; its `speech`, `noise` or `rir` group is read, as the list says).

    Args:
        speech: clean speech; each item takes one speech file, chosen so that an epoch covers
            the files evenly.
        noise: noise, drawn at random per item (short files are looped).
        rir: room impulse responses, drawn at random when reverberation is applied; empty
            means no reverberation for this source.
        weight: share of this source in the split's items, relative to the other sources.
    """

    speech: tuple[Path, ...]
    noise: tuple[Path, ...]
    rir: tuple[Path, ...] = ()
    weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("speech", "noise", "rir"):
            object.__setattr__(self, name, _as_paths(getattr(self, name), name))
        if not self.speech or not self.noise:
            raise ConfigError("a mix source needs at least one 'speech' and one 'noise' entry")
        _check_weight(self.weight)


@dataclass(frozen=True)
class PairedSource:
    """A paired noisy/clean set, TOML `[[train.paired]]`; files are matched by name.

    Args:
        kind: "voicebank" (VoiceBank-DEMAND layout under `data_dir`) or "folders" (`noisy_dir`
            and `clean_dir`, matched by relative path without extension).
        data_dir: voicebank only: the folder holding `clean_<subset>_wav/` and `noisy_<subset>_wav/`.
        subset: voicebank only: "trainset_28spk" (default), "trainset_56spk" or "testset".
        noisy_dir: folders only: noisy files.
        clean_dir: folders only: clean files, same names as the noisy ones.
        weight: share of this source in the split's items, relative to the other sources.
    """

    kind: PairedKind
    data_dir: Path | None = None
    subset: str = "trainset_28spk"
    noisy_dir: Path | None = None
    clean_dir: Path | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("data_dir", "noisy_dir", "clean_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _as_path(value, name))
        if self.kind == "voicebank":
            if self.data_dir is None or self.noisy_dir or self.clean_dir:
                raise ConfigError("a voicebank source takes 'data_dir' (and 'subset'), not noisy_dir/clean_dir")
            if self.subset not in VOICEBANK_SUBSETS:
                raise ConfigError(f"voicebank 'subset' must be one of {VOICEBANK_SUBSETS}, got {self.subset!r}")
        elif self.kind == "folders":
            if self.noisy_dir is None or self.clean_dir is None or self.data_dir:
                raise ConfigError("a folders source takes 'noisy_dir' and 'clean_dir', not data_dir")
        else:
            raise ConfigError(f"paired 'kind' must be 'voicebank' or 'folders', got {self.kind!r}")
        _check_weight(self.weight)

    @property
    def dirs(self) -> tuple[Path, Path]:
        """(noisy_dir, clean_dir) of this source."""
        if self.kind == "voicebank":
            assert self.data_dir is not None
            return self.data_dir / f"noisy_{self.subset}_wav", self.data_dir / f"clean_{self.subset}_wav"
        assert self.noisy_dir is not None and self.clean_dir is not None
        return self.noisy_dir, self.clean_dir


@dataclass(frozen=True)
class SplitConfig:
    """The sources of one split, TOML `[train]` / `[valid]`.

    Args:
        mix: on-the-fly mixing sources (`[[train.mix]]`).
        paired: paired noisy/clean sources (`[[train.paired]]`).
        num_items: items (segments) per epoch; None = one per speech file of every mix source
            plus one per pair of every paired source. Items are shared out by weight.
    """

    mix: tuple[MixSource, ...] = ()
    paired: tuple[PairedSource, ...] = ()
    num_items: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mix", tuple(_build(MixSource, m, "mix") for m in self.mix))
        object.__setattr__(self, "paired", tuple(_build(PairedSource, p, "paired") for p in self.paired))
        if self.num_items is not None and (not _is_int(self.num_items) or self.num_items < 1):
            raise ConfigError(f"num_items must be a positive integer, got {self.num_items!r}")

    @property
    def sources(self) -> tuple[MixSource | PairedSource, ...]:
        return (*self.mix, *self.paired)


@dataclass(frozen=True)
class DataConfig:
    """Where training data comes from and how it is augmented (all audio at 48 kHz, mono).

    Args:
        train: sources of the training split (`[train]`).
        valid: sources of the validation split (`[valid]`); its items are fixed (epoch ignored).
        segment_s: item length in seconds; items hold round(segment_s * 48000) samples rounded
            down to a multiple of the 480-sample hop (`segment_size`).
        snrs_db: SNRs of on-the-fly mixes, one drawn uniformly per item; the SNR is that of the
            (reverberant) speech in the noisy input to the added noise.
        gain_db: [low, high] of a uniform random gain applied to noisy and clean alike; the item
            is scaled down if a peak would exceed 1.
        p_reverb: probability of reverberation (needs `rir` entries). The noisy input gets the
            full RIR, the clean target only the direct path and early reflections.
        early_reflections_ms: length of the RIR kept for the target, after its peak.
        p_eq: probability of a random EQ (1-3 peaking/shelf biquads), drawn separately for the
            speech (target included) and the noise.
        p_bandlimit: probability of band-limiting the clean speech before mixing (resampled
            down to a rate from `bandlimit_rates_hz` and back up): the target is band-limited
            too, so the model learns to pass narrow-band speech without inventing a top band.
        bandlimit_rates_hz: rates to band-limit to, one drawn uniformly.
        p_clip: probability of clipping the noisy input (never the target).
        p_speed: probability of a speed change (resampling: tempo and pitch together), drawn
            separately for the speech (target included) and the noise: new voices and noise
            textures from a small corpus. 0 (the default) draws nothing, so the items
            of a config without it are what they were before the setting existed.
        speed_range: [low, high] of the speed factor, drawn uniformly (0.9 = 10 % slower and lower).
        vad_threshold_db: a 20 ms frame of speech counts as active above this RMS level (dBFS).
        min_speech_ratio: a speech segment is accepted when at least this fraction of its frames
            is active; up to 5 segments are tried and the most active one is kept.
        seed: the seed every item derives from, with the epoch and the item's index.
        cache_dir: folder of the 48 kHz float32 cache (memory-mapped .npy) of audio that needs
            resampling or decoding (48 kHz WAV/FLAC/AIFF/CAF/W64/RF64 and 48 kHz pcm HDF5 are
            read in place). Entries are keyed by path, mtime and size; stale ones are never
            used and the folder may be deleted at any time. None = no cache (every read decodes
            and resamples again: small sets and tests only).
        channel: multichannel files: "downmix" (mean of channels), "first", or a channel index
            (mono files are used as they are; files with too few channels are skipped).
    """

    train: SplitConfig = field(default_factory=SplitConfig)
    valid: SplitConfig = field(default_factory=SplitConfig)
    segment_s: float = 3.0
    snrs_db: tuple[float, ...] = (-5.0, 0.0, 5.0, 10.0, 20.0, 40.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    p_reverb: float = 0.3
    early_reflections_ms: float = 50.0
    p_eq: float = 0.3
    p_bandlimit: float = 0.2
    bandlimit_rates_hz: tuple[int, ...] = (8000, 16000, 22050, 24000, 32000)
    p_clip: float = 0.05
    p_speed: float = 0.0
    speed_range: tuple[float, float] = (0.9, 1.1)
    vad_threshold_db: float = -50.0
    min_speech_ratio: float = 0.3
    seed: int = 0
    cache_dir: Path | None = None
    channel: Channel = "downmix"

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", _build(SplitConfig, self.train, "train"))
        object.__setattr__(self, "valid", _build(SplitConfig, self.valid, "valid"))
        object.__setattr__(self, "snrs_db", _numbers(self.snrs_db, "snrs_db"))
        object.__setattr__(self, "gain_db", _numbers(self.gain_db, "gain_db"))
        object.__setattr__(self, "speed_range", _numbers(self.speed_range, "speed_range"))
        rates = _numbers(self.bandlimit_rates_hz, "bandlimit_rates_hz")
        object.__setattr__(self, "bandlimit_rates_hz", tuple(int(r) for r in rates))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", _as_path(self.cache_dir, "cache_dir"))
        for name in ("segment_s", "early_reflections_ms", "vad_threshold_db"):
            _number(getattr(self, name), name)
        if self.segment_s <= 0:
            raise ConfigError(f"segment_s must be positive, got {self.segment_s}")
        if not self.snrs_db:
            raise ConfigError("snrs_db must not be empty")
        if len(self.gain_db) != 2 or self.gain_db[0] > self.gain_db[1]:
            raise ConfigError(f"gain_db must be [low, high] with low <= high, got {list(self.gain_db)}")
        if len(self.speed_range) != 2 or not 0 < self.speed_range[0] <= self.speed_range[1]:
            raise ConfigError(f"speed_range must be [low, high] with 0 < low <= high, got {list(self.speed_range)}")
        for name in ("p_reverb", "p_eq", "p_bandlimit", "p_clip", "p_speed", "min_speech_ratio"):
            if not 0.0 <= _number(getattr(self, name), name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.early_reflections_ms < 0:
            raise ConfigError(f"early_reflections_ms must be >= 0, got {self.early_reflections_ms}")
        if not self.bandlimit_rates_hz or not all(r > 0 for r in self.bandlimit_rates_hz):
            raise ConfigError(f"bandlimit_rates_hz must be positive rates, got {list(self.bandlimit_rates_hz)}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        channel_ok = self.channel in ("downmix", "first") or (_is_int(self.channel) and self.channel >= 0)
        if not channel_ok:
            raise ConfigError(f"channel must be 'downmix', 'first' or a channel index >= 0, got {self.channel!r}")

    def segment_size(self, dsp: DspConfig) -> int:
        """Samples per item at the model's rate: round(segment_s * sr), rounded down to a multiple of the hop."""
        return round(self.segment_s * dsp.sr) // dsp.hop_size * dsp.hop_size

    def check_rate(self, dsp: DspConfig) -> None:
        """Raises ConfigError when the settings do not fit the model's signal chain: an item shorter
        than one hop, or a band-limit rate at or above the model's rate."""
        if self.segment_size(dsp) < dsp.hop_size:
            raise ConfigError(f"segment_s must be at least one hop ({dsp.hop_size / dsp.sr} s), got {self.segment_s}")
        if not all(r < dsp.sr for r in self.bandlimit_rates_hz):
            raise ConfigError(f"bandlimit_rates_hz must be rates below {dsp.sr}, got {list(self.bandlimit_rates_hz)}")

    def split(self, name: str) -> SplitConfig:
        """The SplitConfig called `name` ("train" or "valid")."""
        if name not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {name!r}")
        return self.train if name == "train" else self.valid

    def to_dict(self) -> dict[str, Any]:
        """Plain, TOML-writable dict (paths as strings, tuples as lists, None values left out)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | Path | None = None) -> DataConfig:
        """Builds a DataConfig from a dict shaped like the TOML file; unknown keys are a ConfigError.

        Args:
            data: the parsed TOML (or `to_dict()` output).
            base_dir: folder relative paths resolve against; None = the current folder.
        """
        return _from_dict(cls, data, "", Path(base_dir or "."))


def load_data_config(path: str | Path) -> DataConfig:
    """Reads a data TOML file; relative paths in it resolve against its folder.

    Args:
        path: the TOML file (see examples/data.toml).

    Returns:
        The validated DataConfig.

    Raises:
        ConfigError: unreadable file, invalid TOML, unknown key or invalid value (names the file).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read data config ({err.strerror or err})") from err
    except tomllib.TOMLDecodeError as err:
        foreign = _deepfilternet_file(path.read_text(encoding="utf-8"))
        if foreign is not None:
            raise ConfigError(f"{path}: {foreign}; {HDF5_DOCS}") from err
        raise ConfigError(f"{path}: invalid TOML ({err})") from err
    try:
        return DataConfig.from_dict(data, base_dir=Path(os.path.abspath(path)).parent)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


HDF5_DOCS = (
    "dfn4 reads DeepFilterNet's HDF5 files themselves: list them in a data TOML "
    '(docs/training.md, section "DeepFilterNet HDF5 datasets")'
)


def _deepfilternet_file(text: str) -> str | None:
    """What a file that is not TOML is, when it is one of DeepFilterNet's: its JSON dataset.cfg or an
    INI file such as config.ini; None otherwise."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data and set(data) <= {"train", "valid", "test"}:
        return "this is DeepFilterNet's dataset.cfg (JSON: HDF5 files and their sampling factors), not a dfn4 data TOML"
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    if parser.sections():
        return f"this is an INI file (sections {', '.join(parser.sections()[:4])}; DeepFilterNet's), not a dfn4 data TOML"
    return None


_PATH_FIELDS = {"speech", "noise", "rir", "data_dir", "noisy_dir", "clean_dir", "cache_dir"}
_NESTED = {"train": SplitConfig, "valid": SplitConfig}
_LISTS = {"mix": MixSource, "paired": PairedSource}


def _from_dict(cls: type, data: Any, where: str, base: Path) -> Any:
    """`cls` from its table, nested tables and arrays of tables built too, paths resolved against `base`."""
    convert: dict[str, Any] = {key: functools.partial(_from_dict, sub, base=base) for key, sub in _NESTED.items()}
    convert.update({key: functools.partial(_from_tables, sub, base=base) for key, sub in _LISTS.items()})
    convert.update({key: lambda value, at: _resolve(value, base, at.rstrip(".")) for key in _PATH_FIELDS})
    return dataclass_from_dict(cls, data, where, convert=convert, typed=False)  # __post_init__ checks the values


def _from_tables(cls: type, value: Any, where: str, base: Path) -> tuple[Any, ...]:
    key = where.rstrip(".")
    if not isinstance(value, list):
        raise ConfigError(f"'{key}' must be an array of tables ([[{key}]])")
    return tuple(_from_dict(cls, v, f"{key}[{i}].", base) for i, v in enumerate(value))


def _resolve(value: Any, base: Path, key: str) -> Any:
    if isinstance(value, list):
        return [_resolve(v, base, key) for v in value]
    if not isinstance(value, (str, Path)):
        raise ConfigError(f"'{key}' must be a path or a list of paths, got {value!r}")
    p = Path(value).expanduser()
    return Path(os.path.abspath(p if p.is_absolute() else base / p))


def _build(cls: type, value: Any, name: str) -> Any:
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return _from_dict(cls, value, f"{name}.", Path("."))
    raise ConfigError(f"'{name}' must be a {cls.__name__} or a table, got {type(value).__name__}")


def _as_path(value: Any, name: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"'{name}' must be a path, got {value!r}")
    return Path(value)


def _as_paths(value: Any, name: str) -> tuple[Path, ...]:
    values = [value] if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"'{name}' must be a path or a list of paths, got {value!r}")
    return tuple(_as_path(v, name) for v in values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"'{name}' must be a finite number, got {value!r}")
    return float(value)


def _numbers(values: Any, name: str) -> tuple[float, ...]:
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"'{name}' must be a list of numbers, got {values!r}")
    return tuple(_number(v, name) for v in values)


def _check_weight(weight: Any) -> None:
    if _number(weight, "weight") <= 0:
        raise ConfigError(f"'weight' must be positive, got {weight}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
