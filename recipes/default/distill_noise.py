"""Extra noise for the lite's teacher-only distillation: babble of the real training voices, and
generated hum, engine and stationary noise.

The real training noise of four categories is a few files (recipes/default/README.md, "Real
validation set"): hum 2 files (6 s in all), machinery 7 (30 s), babble 6 (2 min), stationary 5
(2 min). The lite fitted the full on training mixtures far better than on the real validation
pairs (its output 14.2 dB from the full's on fresh training mixtures, 9.8 dB on 30 validation
pairs), worst in babble and hum. Distillation needs no clean reference, so the inputs may come
from anywhere the full behaves well; these files widen the four thin categories:

- babble: 3-8 talkers of the *training* speech manifest (real voices, never a validation
  speaker), each a run of that voice's files with short pauses, at levels 0 to -8 dB;
- hum: `signals.hum` (mains 50/60/100/120 Hz and harmonics) and hums of a random 25-400 Hz
  fundamental;
- machinery: `signals.engine` (firing pulses through a resonance, over rumble);
- stationary: `signals.colored_noise` (slopes brown to violet, half of them slowly modulated).

Generated noise alone misled the 0.1 recipe (its validation set was made of the same generators);
here it only adds inputs beside the real noise, and the real validation set still judges. Tried
once (2026-12-01, 400 CPU steps with a weight of 0.5 per kind beside the seven real categories):
no gain, and its own categories scored worse (recipes/default/README.md, "The lite").

    python recipes/default/distill_noise.py            # ~/dfn4-corpus/distill_noise/, manifests/distill_noise_*.csv
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_corpus import seed_of, write_manifest, write_wav  # noqa: E402
from signals import SR, colored_noise, engine, hum  # noqa: E402

from dfn4core.io import read_audio, resample  # noqa: E402

logger = logging.getLogger("distill_noise")
KINDS = ("babble", "hum", "machinery", "stationary")
TALKERS = (3, 9)  # talkers per babble file: 3..8
TALKER_LEVEL_DB = (-8.0, 0.0)
PAUSE_S = 0.5  # at most this much silence between one talker's files


def talker(rng: np.random.Generator, files: list[str], n: int) -> np.ndarray:
    """One voice for n samples: its files, in random order, with short pauses (the first one from a
    random point, so the voices do not all start together); unit RMS."""
    out, pos = np.zeros(n), 0
    while pos < n:
        x, sr = read_audio(files[int(rng.integers(len(files)))])
        x = resample(x.mean(axis=0), sr, SR)
        x = x[int(rng.integers(len(x))) if pos == 0 else 0 :][: n - pos]
        out[pos : pos + len(x)] = x
        pos += len(x) + int(rng.integers(0, int(PAUSE_S * SR)))
    return out / (np.std(out) + 1e-9)


def babble(rng: np.random.Generator, n: int, voices: dict[str, list[str]]) -> np.ndarray:
    names = sorted(voices)
    chosen = rng.choice(len(names), size=min(int(rng.integers(*TALKERS)), len(names)), replace=False)
    return sum(talker(rng, voices[names[i]], n) * 10 ** (rng.uniform(*TALKER_LEVEL_DB) / 20) for i in chosen)


def any_hum(rng: np.random.Generator, n: int) -> np.ndarray:
    """Half mains hum (`signals.hum`), half a hum of a random 25-400 Hz fundamental."""
    if rng.random() < 0.5:
        return hum(rng, n)
    return hum(rng, n, f0=float(np.exp(rng.uniform(np.log(25.0), np.log(400.0)))))


def training_voices(manifest: Path) -> dict[str, list[str]]:
    voices: dict[str, list[str]] = defaultdict(list)
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            voices[row.get("voice") or row["path"]].append(str(manifest.parent / row["path"]))  # relative: to the manifest
    return dict(voices)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=Path("~/dfn4-corpus"))
    p.add_argument("--files", type=int, default=60, help="files per kind")
    p.add_argument("--seconds", type=float, default=6.0, help="length of each file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    corpus = args.corpus.expanduser()
    speech = corpus / "manifests" / "train_real_speech.csv"
    if not speech.exists():
        raise SystemExit(f"{speech}: missing; run recipes/default/real_audio.py first")
    voices = training_voices(speech)
    n = int(args.seconds * SR)
    makers = {
        "babble": lambda rng: babble(rng, n, voices),
        "hum": lambda rng: any_hum(rng, n),
        "machinery": lambda rng: engine(rng, n),
        "stationary": lambda rng: colored_noise(rng, n),
    }
    for kind in KINDS:
        rows = []
        for i in range(args.files):
            path = corpus / "distill_noise" / kind / f"{kind}_{i:04d}.wav"
            if not path.exists():
                x = makers[kind](np.random.default_rng(seed_of(args.seed, "distill-noise", kind, i)))
                write_wav(path, 0.5 * x / (np.max(np.abs(x)) + 1e-9), SR)
            rows.append({"path": str(path), "source": f"distill-{kind}", "voice": "", "seconds": args.seconds, "sr": SR})
        write_manifest(corpus / "manifests" / f"distill_noise_{kind}.csv", rows)
        logger.info("%s: %d files of %.1f s", kind, len(rows), args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
