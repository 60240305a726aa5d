"""Evaluation sets: which noisy file goes with which clean reference (VoiceBank-DEMAND, DNS, pairs, blind).

Files are matched by a key (the file stem, or DNS's `fileid_N`); a file without a partner, or one
whose key repeats, is kept in `EvalSet.unmatched` with its reason rather than dropped silently.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from dfn4core.errors import ConfigError
from dfn4core.io import AUDIO_EXTENSIONS

logger = logging.getLogger(__name__)

SET_NAMES = ("voicebank", "dns", "pairs", "blind")
VOICEBANK_FILES = 824  # test utterances of speakers p232 and p257
VOICEBANK_DIRS = {
    "clean": ("clean_testset_wav", "clean_testset_wav_16k"),
    "noisy": ("noisy_testset_wav", "noisy_testset_wav_16k"),
}
DNS_FILEID = re.compile(r"fileid_(\d+)")
VOICEBANK_SOURCE = (
    "the VoiceBank-DEMAND test set is published on the University of Edinburgh DataShare as "
    '"Noisy speech database for training speech enhancement algorithms and TTS models" '
    "(Valentini-Botinhao, 2017; https://datashare.ed.ac.uk/handle/10283/2791): unzip clean_testset_wav.zip and "
    "noisy_testset_wav.zip into one folder, DIR/clean_testset_wav/ and DIR/noisy_testset_wav/ (824 files each), "
    "and pass --data-dir DIR"
)


@dataclass(frozen=True)
class Item:
    """One noisy file and its clean reference (None in a blind set); `key` matches them."""

    key: str
    noisy: Path
    clean: Path | None = None


@dataclass(frozen=True)
class Unmatched:
    """A file left out of the set, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class EvalSet:
    """Noisy/clean pairs to score.

    Args:
        name: one of SET_NAMES.
        items: matched files, sorted by key.
        unmatched: files that could not be matched.
        match_by: "stem" or "fileid": how keys are read from file names (also for enhanced outputs).
    """

    name: str
    items: tuple[Item, ...]
    unmatched: tuple[Unmatched, ...] = ()
    match_by: str = "stem"

    @property
    def has_reference(self) -> bool:
        return self.name != "blind"


def file_key(path: Path, match_by: str) -> str | None:
    """The matching key of a file: its stem, or "fileid_N" for DNS (None if its name has none)."""
    if match_by == "stem":
        return path.stem
    found = DNS_FILEID.findall(path.stem)
    return f"fileid_{found[-1]}" if found else None


def index_folder(folder: str | Path, match_by: str = "stem") -> tuple[dict[str, Path], list[Unmatched]]:
    """The audio files of a folder (not its subfolders, hidden files skipped) by key.

    Returns:
        (key -> file, files left out: no key, or the same key as an earlier file).

    Raises:
        ConfigError: `folder` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder")
    by_key: dict[str, Path] = {}
    left_out: list[Unmatched] = []
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or not f.is_file() or f.suffix.lower().lstrip(".") not in AUDIO_EXTENSIONS:
            continue
        key = file_key(f, match_by)
        if key is None:
            left_out.append(Unmatched(f, "no fileid_N in its name"))
        elif key in by_key:
            left_out.append(Unmatched(f, f"same key {key!r} as {by_key[key].name}"))
        else:
            by_key[key] = f
    return by_key, left_out


def paired_set(name: str, noisy_dir: str | Path, clean_dir: str | Path, match_by: str = "stem") -> EvalSet:
    """Pairs the files of two folders by key; files without a partner are listed as unmatched."""
    noisy, left_out = index_folder(noisy_dir, match_by)
    clean, clean_left_out = index_folder(clean_dir, match_by)
    left_out += clean_left_out
    left_out += [
        Unmatched(p, f"no clean reference with key {k!r} in {clean_dir}") for k, p in noisy.items() if k not in clean
    ]
    left_out += [
        Unmatched(p, f"no noisy file with key {k!r} in {noisy_dir}") for k, p in clean.items() if k not in noisy
    ]
    items = tuple(Item(k, noisy[k], clean[k]) for k in sorted(noisy) if k in clean)
    if not items:
        raise ConfigError(f"no noisy file in {noisy_dir} has a clean reference in {clean_dir}")
    return EvalSet(name, items, tuple(left_out), match_by)


def voicebank_set(data_dir: str | Path) -> EvalSet:
    """VoiceBank-DEMAND test set: `clean_testset_wav/` and `noisy_testset_wav/` (48 kHz or a 16 kHz copy,
    also accepted with a `_16k` suffix), matched by file name; warns unless there are 824 pairs."""
    data_dir = Path(data_dir)
    found = {}
    for role, names in VOICEBANK_DIRS.items():
        dirs = [data_dir / n for n in names if (data_dir / n).is_dir()]
        if not dirs:
            raise ConfigError(f"{data_dir}: no {' or '.join(n + '/' for n in names)} folder; {VOICEBANK_SOURCE}")
        found[role] = dirs[0]
    eval_set = paired_set("voicebank", found["noisy"], found["clean"])
    if len(eval_set.items) != VOICEBANK_FILES:
        logger.warning("voicebank: %d pairs found, the test set has %d", len(eval_set.items), VOICEBANK_FILES)
    return eval_set


def dns_set(data_dir: str | Path) -> EvalSet:
    """DNS-Challenge synthetic test set: `noisy/` and `clean/` matched by the `fileid_N` in each name."""
    data_dir = Path(data_dir)
    return paired_set("dns", data_dir / "noisy", data_dir / "clean", match_by="fileid")


def blind_set(noisy_dir: str | Path) -> EvalSet:
    """Noisy files without references (DNSMOS only)."""
    noisy, left_out = index_folder(noisy_dir)
    if not noisy:
        raise ConfigError(f"{noisy_dir}: no audio files")
    return EvalSet("blind", tuple(Item(k, noisy[k]) for k in sorted(noisy)), tuple(left_out))


def load_set(
    name: str,
    *,
    data_dir: str | Path | None = None,
    noisy_dir: str | Path | None = None,
    clean_dir: str | Path | None = None,
) -> EvalSet:
    """Builds a set by name: voicebank and dns need `data_dir`, pairs `noisy_dir` and `clean_dir`,
    blind `noisy_dir`.

    Raises:
        ConfigError: unknown name, a missing or superfluous folder argument, a folder that does not
            exist, or no file matched.
    """
    given = {"data_dir": data_dir, "noisy_dir": noisy_dir, "clean_dir": clean_dir}
    needs = {
        "voicebank": ("data_dir",),
        "dns": ("data_dir",),
        "pairs": ("noisy_dir", "clean_dir"),
        "blind": ("noisy_dir",),
    }
    if name not in needs:
        raise ConfigError(f"unknown set {name!r}; choose from {', '.join(SET_NAMES)}")
    missing = [k for k in needs[name] if given[k] is None]
    extra = [k for k, v in given.items() if v is not None and k not in needs[name]]
    if missing or extra:
        wanted = " and ".join("--" + k.replace("_", "-") for k in needs[name])
        source = f"; {VOICEBANK_SOURCE}" if name == "voicebank" and missing else ""
        raise ConfigError(f"--set {name} takes {wanted}, and no other folder{source}")
    if name == "voicebank":
        return voicebank_set(data_dir)  # type: ignore[arg-type]
    if name == "dns":
        return dns_set(data_dir)  # type: ignore[arg-type]
    if name == "pairs":
        return paired_set("pairs", noisy_dir, clean_dir)  # type: ignore[arg-type]
    return blind_set(noisy_dir)  # type: ignore[arg-type]
