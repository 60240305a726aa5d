"""Real recorded speech and noise of Debian packages: catalogue, split, and a validation set that predicts real use.

Stages (see recipes/default/README.md, "Real validation set"):
  lists   catalogues the speech and noise files of the packages in SPEECH_RULES / NOISE_RULES, splits them
          (speech by speaker group, noise by file group, about 1 in 5 per category) and writes
          lists/real_{speech,noise,dropped}.csv and manifests/train_real_{speech,noise}.csv
          (and train_real_noise_<category>.csv per noise category)
  render  renders valid_real/{clean,noisy}/NNNNN.wav (48 kHz float) and valid_real/pairs.csv from the
          validation split: every noise category x every SNR, balanced, deterministic from --seed

Audio inside game archives (0 A.D.'s public.zip, Trigger Rally's data.zip, Warzone 2100's base.wz) is
copied byte for byte to DIR/real/<package>/<member> when kept, so that every listed path is a file.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import re
import struct
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from build_corpus import NOISE_PKGS as CORPUS_NOISE_PKGS  # recipes/default/build_corpus.py
from build_corpus import run_stages, seed_of, write_manifest

logger = logging.getLogger("real_audio")

SR = 48_000
STAGES = ("lists", "render", "check")
AUDIO_EXTS = (".wav", ".ogg", ".flac", ".mp3")
ARCHIVES = {  # package -> its zip archives holding audio
    "0ad-data": ("/usr/share/games/0ad/mods/public/public.zip",),
    "trigger-rally-data": ("/usr/share/games/trigger-rally/data.zip",),
    "warzone2100-data": ("/usr/share/games/warzone2100/base.wz",),
}
MIN_SPEECH_S, MIN_NOISE_S = 1.0, 2.0
SILENT_DBFS = -60.0  # a file whose RMS is below this (or whose peak is below -40 dBFS) is silent
WIDE_BAND_HZ = 16_000
CATEGORIES = ("stationary", "nature", "traffic", "babble", "music", "machinery", "hum")
SNRS_DB = (-5, 0, 5, 10, 15, 20)
VALID_NOISE_SHARE = 0.2

# ---------------------------------------------------------------- rules
# Speech: (package, regex on the path or archive member, speaker, group). The first match wins; a file
# that matches no rule is not speech (sound effects, music, grunts). `group` is the unit of the split:
# speakers that may share a voice actor (one cast, one persona) are one group, so no voice is in both splits.
HEDGEWARS_NONVERBAL = r"(?:Ow|Ooff|Laugh|PoisonCough|PoisonMoan|Hmm|Jump|Firepunch|Nooo|Uh-oh|Oops|Ouch|Drat)\d*"
SPEECH_RULES = (
    # Fish Fillets: dialog files are <level-prefix>-<character>-<line>.ogg; m = small fish, v = big fish,
    # the two main characters, voiced in each language by its own actors. Minor characters are left out
    # (their actors are not credited, and may voice a fish too).
    ("fillets-ng-data-cs", r"/sound/[^/]+/cs/(?:[a-z0-9]+-)?([mv])-[^/]+\.ogg$", "fillets-cs-{0}", "fillets-cs"),
    ("fillets-ng-data-nl", r"/sound/[^/]+/nl/(?:[a-z0-9]+-)?([mv])-[^/]+\.ogg$", "fillets-nl-{0}", "fillets-nl"),
    # KLettres: letters and syllables read by a native speaker of each language.
    ("klettres-data", r"/klettres/([A-Za-z_]+)/(?:alpha|syllab)/[^/]+\.ogg$", "klettres-{0}", "klettres-{0}"),
    # Hedgewars voice packs (one persona each); Default* and Russian* share a persona across languages, so
    # each family is one group. Robot (vocoded) and Singer (sung) are not plain speech; grunts are dropped.
    ("hedgewars-data", rf"/voices/(?!Robot/|Singer/)(([A-Za-z]+)[A-Za-z_]*)/(?!{HEDGEWARS_NONVERBAL}\.ogg)[^/]+\.ogg$",
     "hedgewars-{0}", "hedgewars-{1}"),
    # PocketSphinx test data: a LibriVox reader (Sense and Sensibility) and the 'cards' speaker, 16 kHz.
    ("pocketsphinx-testdata", r"/test/data/(librivox|cards)/[^/]+\.wav$", "pocketsphinx-{0}", "pocketsphinx-{0}"),
    # Trigger Rally's co-drivers and 0 A.D.'s unit voices (archives); the 0 A.D. actors may voice several
    # civilisations, so all of them are one group.
    ("trigger-rally-data", r"^sounds/codriver/(\w+)/[^/]+\.wav$", "trigger-{0}", "trigger-{0}"),
    ("0ad-data", r"^audio/voice/(\w+)/civ/civ_(female|male)_[^/]+\.ogg$", "0ad-{0}-{1}", "0ad-voices"),
)
SPEECH_PKGS = tuple(dict.fromkeys(r[0] for r in SPEECH_RULES))

# Noise: (package, regex, category or None). The first match wins; None drops the file with the rule's
# reason; a file that matches no rule is dropped as "not listed" (interface sounds, impacts, weapons,
# synthetic effects). Speech inside these packages (GPWS/TCAS call-outs, the airport PA, unit voices,
# screams, hedgewars voices) is dropped by the first rules of each package.
FG = r"^/usr/share/games/flightgear/"
STK = r"^/usr/share/games/supertuxkart/data/"
TORCS = r"^/usr/share/games/torcs/data/"
NOISE_RULES = (
    ("flightgear-data-base", FG + r"Sounds/(mk-viii|tcas)/", None, "speech (call-outs)"),
    ("flightgear-data-base", FG + r".*(checklist|coughing)", None, "speech / voice"),
    ("flightgear-data-base", FG + r"Sounds/(fan)\.wav$", "stationary", ""),
    ("flightgear-data-base", FG + r"Aircraft/c172p/Sounds/tires-rolling-(asphalt|gravel)\.wav$", "stationary", ""),
    ("flightgear-data-base", FG + r"Sounds/(wind|wind1|wind-8khz|rain|rain-windshield|thunder\d?|wasp|wave)\.wav$",
     "nature", ""),
    ("flightgear-data-base", FG + r"Aircraft/c172p/Sounds/water-(fast|still)\.wav$", "nature", ""),
    ("flightgear-data-base", FG + r"Sounds/(R-1535Slow|engine-prop|exhaust_\w+|helicopter|jet|p51d_\w+|prop|rattleroll|"
     r"rotor|rotor-2blade|rumble|rumble-rough|turbine_\w+|turboprop1|starter_\w+)\.wav$", "traffic", ""),
    ("flightgear-data-base", FG + r"Aircraft/c172p/Sounds/engine(-idle|-cut)?\.wav$", "traffic", ""),
    ("flightgear-data-base", FG + r"Aircraft/c172p/Sounds/(flaps-motor|repair)\.wav$", "machinery", ""),
    ("flightgear-data-base", FG + r"Sounds/(avionics-400Hz|whine)\.wav$", "hum", ""),
    ("flightgear-data-base", FG + r"Aircraft/c172p/Sounds/gyro\.wav$", "hum", ""),
    ("supertuxkart-data", STK + r".*(WilhelmScream|ugh|wee|nolok_speech|sara_airport_pa)\.ogg$", None, "speech / voice"),
    ("supertuxkart-data", STK + r"sfx/static-radio\.ogg$", "stationary", ""),
    ("supertuxkart-data", STK + r"(sfx/(exotic-birds(_2)?|rain|river_loop|waterfall_loop_2|thunder)|"
     r"tracks/black_forest/cow|tracks/scotland/sheep)\.ogg$", "nature", ""),
    ("supertuxkart-data", STK + r"(sfx/(airplane_jetEngine|car_accel|car_revup|engine_large|engine_small|skid)|"
     r"karts/[^/]+/skid|.*/steamLocomotive)\.ogg$", "traffic", ""),
    ("supertuxkart-data", STK + r"sfx/(lenautile_restaurant|goal_scored)\.ogg$", "babble", ""),
    ("supertuxkart-data", STK + r"sfx/(machine_sound|metal_clang)\.ogg$", "machinery", ""),
    ("supertuxkart-data", STK + r"(music/[^/]+|tracks/[^/]+/(Battle_Theme_1|Gran_Paradiso[^/]*|beneath_the_rabbit_hole|"
     r"intro2))\.ogg$", "music", ""),
    ("torcs-data", TORCS + r"sound/(crash\d|boom|bottom_crash|backfire|gear_change1|locked|axle|skid)\.wav$", None,
     "impact / one-shot"),
    ("torcs-data", TORCS + r"sound/road-ride\.wav$", "stationary", ""),
    ("torcs-data", TORCS + r"sound/[^/]+\.wav$", "traffic", ""),
    ("torcs-data", TORCS + r"music/[^/]+\.ogg$", "music", ""),
    ("trigger-rally-data", r"^sounds/codriver/", None, "speech (co-driver)"),
    ("trigger-rally-data", r"^sounds/gravel\.wav$", "stationary", ""),
    ("trigger-rally-data", r"^sounds/wind\.wav$", "nature", ""),
    ("trigger-rally-data", r"^sounds/engine\.wav$", "traffic", ""),
    ("0ad-data", r"^audio/voice/", None, "speech (unit voices)"),
    ("0ad-data", r"^audio/ambient/building/amb_trade_", "babble", ""),  # market: voices and clatter
    ("0ad-data", r"^audio/ambient/(dayscape|water|weather)/|^audio/ambient/building/amb_(farm|port)_|"
     r"^audio/actor/fauna/animal/", "nature", ""),
    ("0ad-data", r"^audio/actor/ship/(ship_move|smove_\d+|warship_move_\d+)\.ogg$", "traffic", ""),
    ("0ad-data", r"^audio/resource/(construction|lumbering|mining)/", "machinery", ""),
    ("0ad-data", r"^audio/music/", "music", ""),
    ("warzone2100-data", r"^sequenceaudio/factory\.ogg$", "machinery", ""),
    ("warzone2100-data", r"^audio/sfx/building/powerhum\.ogg$", "hum", ""),
    ("wesnoth-1.16-music", r"/music/[^/]+\.ogg$", "music", ""),
    ("fillets-ng-data", r"/sound/engine/en/mot-x-motor\.ogg$", "machinery", ""),
)
NOISE_PKGS = tuple(dict.fromkeys(r[0] for r in NOISE_RULES))
LICENCES = {  # from /usr/share/doc/<pkg>/copyright (the files used)
    "fillets-ng-data": "GPL-2", "fillets-ng-data-cs": "GPL-2", "fillets-ng-data-nl": "GPL-2",
    "klettres-data": "GPL-2+", "hedgewars-data": "GFDL-1.3 (Data/Sounds)", "pocketsphinx-testdata": "BSD-2",
    "flightgear-data-base": "GPL-2+", "supertuxkart-data": "GPL-3+", "torcs-data": "GPL-2+",
    "trigger-rally-data": "GPL-2+ / CC0 (sounds)", "0ad-data": "CC BY-SA 3.0", "warzone2100-data": "GPL-2+",
    "wesnoth-1.16-music": "GPL-2+",
}


# ---------------------------------------------------------------- analysis
def mono(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1) if x.ndim == 2 else x


def frame_db(x: np.ndarray, sr: int, frame_s: float = 0.02) -> np.ndarray:
    n = max(1, int(frame_s * sr))
    m = len(x) // n
    if m == 0:
        return np.array([10 * np.log10(np.mean(x**2) + 1e-12)])
    return 10 * np.log10(np.mean(x[: m * n].reshape(m, n) ** 2, axis=1) + 1e-12)


def active_mask(x: np.ndarray, sr: int, frame_s: float = 0.02) -> np.ndarray:
    """Active 20 ms frames: above the 95th-percentile frame level - 30 dB, and above -70 dBFS."""
    db = frame_db(x, sr, frame_s)
    return db > max(np.percentile(db, 95) - 30.0, -70.0)


def active_power(x: np.ndarray, sr: int) -> float:
    """Mean power over the active 20 ms frames (the speech level that the SNR is measured against)."""
    n = int(0.02 * sr)
    m = len(x) // n
    if m == 0:
        return float(np.mean(x**2))
    frames = x[: m * n].reshape(m, n)
    act = active_mask(x, sr)
    return float(np.mean(frames[act] ** 2)) if act.any() else float(np.mean(x**2))


def bandwidth_hz(x: np.ndarray, sr: int, drop_db: float = 60.0) -> float:
    """Highest frequency whose smoothed power (active frames, 200 Hz smoothing) is within drop_db of the peak.

    A band-limited source (e.g. 8 kHz content in a 44.1 kHz file) falls far below that above its cut-off;
    a full-band one keeps its content (or its recording noise) up to Nyquist.
    """
    n_fft, hop = 2048, 1024
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    if len(frames) > 3000:  # long files: 3000 frames spread over the file
        frames = frames[np.linspace(0, len(frames) - 1, 3000).astype(int)]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    level = 10 * np.log10(power.sum(axis=1) + 1e-20)
    spec = power[level > level.max() - 30].mean(axis=0)
    k = max(1, round(200 / (sr / n_fft)))
    db = 10 * np.log10(np.convolve(spec, np.ones(k) / k, mode="same") + 1e-30)
    above = np.nonzero(db > db.max() - drop_db)[0]
    return float(np.fft.rfftfreq(n_fft, 1 / sr)[above[-1]])


@dataclass
class Candidate:
    package: str
    path: str  # file on disk, or archive path
    member: str  # archive member ("" for plain files)
    label: str  # speaker or noise category ("" when dropped)
    group: str
    reason: str = ""  # why dropped


def package_files(pkg: str) -> list[str]:
    out = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
    if out.returncode != 0:
        logger.warning("package %s is not installed: run install.sh", pkg)
        return []
    return sorted(p for p in out.stdout.splitlines() if p.lower().endswith(AUDIO_EXTS) and Path(p).is_file())


def archive_members(pkg: str) -> list[tuple[str, str]]:
    found = []
    for archive in ARCHIVES.get(pkg, ()):
        if Path(archive).exists():
            with zipfile.ZipFile(archive) as z:
                found += [(archive, m) for m in sorted(z.namelist()) if m.lower().endswith(AUDIO_EXTS)]
    return found


def candidates(kind: str) -> list[Candidate]:
    """Every audio file of the packages of `kind`, labelled by the first matching rule (or dropped)."""
    rules = SPEECH_RULES if kind == "speech" else NOISE_RULES
    out = []
    for pkg in SPEECH_PKGS if kind == "speech" else NOISE_PKGS:
        items = [(p, "") for p in package_files(pkg)] + archive_members(pkg)
        for path, member in items:
            key, cand = member or path, None
            for rule in (r for r in rules if r[0] == pkg):
                m = re.search(rule[1], key)
                if not m:
                    continue
                if kind == "speech":
                    cand = Candidate(pkg, path, member, rule[2].format(*m.groups()), rule[3].format(*m.groups()))
                elif rule[2] is None:
                    cand = Candidate(pkg, path, member, "", "", reason=rule[3])
                else:
                    cand = Candidate(pkg, path, member, rule[2], noise_group(pkg, key))
                break
            out.append(cand or Candidate(pkg, path, member, "", "", reason="not listed"))
    return out


def noise_group(pkg: str, key: str) -> str:
    """Files whose names differ only by a number (rain_11, rain_12; thunder1..3) are takes of one recording."""
    stem = re.sub(r"[-_ ]*\d+$", "", Path(key).stem.lower())
    return f"{pkg}:{stem}"


def read_bytes(c: Candidate) -> bytes:
    if c.member:
        with zipfile.ZipFile(c.path) as z:
            return z.read(c.member)
    return Path(c.path).read_bytes()


def analyse(c: Candidate, kind: str, out: Path) -> dict:
    """Reads one candidate; returns its row (with `reason` set when it is dropped)."""
    row = {"package": c.package, "origin": f"{c.path}!{c.member}" if c.member else c.path,
           "label": c.label, "group": c.group, "reason": c.reason}
    if c.reason:
        return row
    data = read_bytes(c)
    row["sha1"] = hashlib.sha1(data).hexdigest()
    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        return {**row, "reason": f"unreadable ({err})"}
    x = mono(x)
    seconds = len(x) / sr
    if len(x) == 0:
        return {**row, "seconds": 0.0, "sr": sr, "reason": "too short"}
    rms_db = 10 * np.log10(np.mean(x**2) + 1e-12)
    row.update(seconds=round(seconds, 3), sr=sr, channels=sf.info(io.BytesIO(data)).channels,
               rms_dbfs=round(float(rms_db), 1))
    if seconds < (MIN_SPEECH_S if kind == "speech" else MIN_NOISE_S):
        return {**row, "reason": "too short"}
    if rms_db < SILENT_DBFS or np.max(np.abs(x)) < 0.01:
        return {**row, "reason": "silent"}
    row["bandwidth_hz"] = round(bandwidth_hz(x, sr))
    if kind == "speech":
        row["active_dbfs"] = round(10 * np.log10(active_power(x, sr) + 1e-12), 1)
    path = Path(c.path)
    if c.member:  # archive member: copied byte for byte so that it has a path of its own
        path = out / "real" / c.package / c.member
        if not path.exists() or hashlib.sha1(path.read_bytes()).hexdigest() != row["sha1"]:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
    row["path"] = str(path)
    return row


# ---------------------------------------------------------------- splits
def split_speech(rows: list[dict], seed: int, valid_share: float) -> dict[str, str]:
    """group -> split. Groups of 30 s or more are eligible for validation. Each source family (fillets,
    klettres, hedgewars, ...: the part of the group before the first '-') with two or more eligible groups
    gives round(valid_share x its groups), at least one, in the seed's order; then wide-band groups (median
    bandwidth >= 16 kHz) are added in that order until validation holds at least two."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    order = sorted(groups, key=lambda g: seed_of(seed, "speech-split", g))
    wide = {g: np.median([r["bandwidth_hz"] for r in groups[g]]) >= WIDE_BAND_HZ for g in groups}
    eligible = [g for g in order if sum(r["seconds"] for r in groups[g]) >= 30.0]
    split = dict.fromkeys(groups, "train")
    families: dict[str, list[str]] = {}
    for g in order:
        families.setdefault(g.split("-")[0], []).append(g)
    for members in families.values():
        pool = [g for g in members if g in eligible]
        if len(pool) >= 2:
            for g in pool[: max(1, round(valid_share * len(members)))]:
                split[g] = "valid"
    for g in eligible:
        if sum(split[h] == "valid" and wide[h] for h in groups) >= 2:
            break
        if wide[g]:
            split[g] = "valid"
    return split


def split_noise(rows: list[dict], seed: int, share: float, forced_train: set[str]) -> dict[str, str]:
    """file group -> split: per category, groups in the seed's order go to validation while the category's
    valid files stay within round(share x files) (at least one group; the smallest when none fits)."""
    split = {}
    for cat in CATEGORIES:
        groups: dict[str, int] = {}
        for r in rows:
            if r["label"] == cat:
                groups[r["group"]] = groups.get(r["group"], 0) + 1
        target = max(1, round(share * sum(groups.values())))
        order = sorted((g for g in groups if g not in forced_train), key=lambda g: seed_of(seed, "noise-split", g))
        n_valid = 0
        for g in order:
            if n_valid + groups[g] <= target:
                split[g], n_valid = "valid", n_valid + groups[g]
        if n_valid == 0 and order and len(groups) > 1:
            g = min(order, key=lambda g: (groups[g], order.index(g)))
            split[g] = "valid"
        for g in groups:
            split.setdefault(g, "train")
    return split


def merge_duplicates(rows: list[dict]) -> None:
    """Byte-identical files (the same recording shipped twice) share one group, so never straddle splits."""
    first: dict[str, str] = {}
    for r in rows:
        r["group"] = first.setdefault(r["sha1"], r["group"])


def corpus_noise_hashes() -> set[str]:
    """sha1 of the noise files that build_corpus.py trains on (those of its packages installed here)."""
    hashes = set()
    for pkg in CORPUS_NOISE_PKGS:
        out = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
        for p in out.stdout.splitlines() if out.returncode == 0 else []:
            if p.lower().endswith(AUDIO_EXTS) and Path(p).is_file():
                hashes.add(hashlib.sha1(Path(p).read_bytes()).hexdigest())
    return hashes


# ---------------------------------------------------------------- stage: lists
LIST_COLUMNS = ["path", "package", "label", "group", "split", "seconds", "sr", "channels", "bandwidth_hz",
                "rms_dbfs", "active_dbfs", "origin", "sha1"]


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def stage_lists(args: argparse.Namespace) -> None:
    kept: dict[str, list[dict]] = {}
    dropped = []
    for kind in ("speech", "noise"):
        t0 = time.time()
        rows = [analyse(c, kind, args.out) for c in candidates(kind)]
        kept[kind] = [r for r in rows if not r["reason"]]
        dropped += [{**r, "kind": kind} for r in rows if r["reason"]]
        logger.info("%s: %d files kept, %d dropped, %.0f s", kind, len(kept[kind]),
                    sum(1 for r in rows if r["reason"]), time.time() - t0)
    speech, noise = unique(kept["speech"]), kept["noise"]
    groups = split_speech(speech, args.seed, args.valid_speaker_share)
    for r in speech:
        r["split"] = groups[r["group"]]
    merge_duplicates(noise)
    corpus = corpus_noise_hashes()
    forced = {r["group"] for r in noise if r["sha1"] in corpus}
    if forced:
        logger.info("noise: %d groups hold files that build_corpus.py trains on: train only", len(forced))
    groups = split_noise(noise, args.seed, VALID_NOISE_SHARE, forced)
    for r in noise:
        r["split"] = groups[r["group"]]
    noise = unique(noise)
    for r in speech:
        r["speaker"] = r["label"]
    for r in noise:
        r["category"] = r["label"]
    lists = args.out / "lists"
    write_csv(lists / "real_speech.csv", speech, [c if c != "label" else "speaker" for c in LIST_COLUMNS])
    write_csv(lists / "real_noise.csv", noise, [c if c != "label" else "category" for c in LIST_COLUMNS])
    write_csv(lists / "real_dropped.csv", dropped, ["kind", "origin", "package", "label", "reason", "seconds", "sr"])
    for kind, rows in (("speech", speech), ("noise", noise)):
        manifest = [{"path": manifest_path(args.out, r["path"]), "source": r["package"], "voice": r["label"],
                     "seconds": r["seconds"], "sr": r["sr"]} for r in rows if r["split"] == "train"]
        write_manifest(args.out / "manifests" / f"train_real_{kind}.csv", manifest)
        if kind == "noise":  # one per category too, to weight a category in a data config (data_real_nature.toml)
            for category in sorted({m["voice"] for m in manifest}):
                write_manifest(args.out / "manifests" / f"train_real_noise_{category}.csv",
                               [m for m in manifest if m["voice"] == category])
    summary = {"seed": args.seed, "packages": package_versions(), "speech": summarise(speech), "noise": summarise(noise),
               "dropped": {f"{d['kind']}: {d['reason'].split(' (')[0]}": 0 for d in dropped}}
    for d in dropped:
        summary["dropped"][f"{d['kind']}: {d['reason'].split(' (')[0]}"] += 1
    (lists / "real_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    logger.info("lists: %s", json.dumps({k: summary[k]["splits"] for k in ("speech", "noise")}))


def unique(rows: list[dict]) -> list[dict]:
    """The same bytes listed twice (two paths): the first is kept, so no file is counted or drawn twice."""
    seen: set[str] = set()
    return [r for r in rows if not (r["sha1"] in seen or seen.add(r["sha1"]))]


def manifest_path(out: Path, path: str) -> str:
    p = Path(path)
    return str(Path("..") / p.relative_to(out)) if p.is_relative_to(out) else str(p)


def summarise(rows: list[dict]) -> dict:
    out: dict = {"splits": {}, "labels": {}}
    for r in rows:
        s = out["splits"].setdefault(r["split"], {"files": 0, "hours": 0.0, "labels": set()})
        s["files"] += 1
        s["hours"] += float(r["seconds"]) / 3600
        s["labels"].add(r["label"])
        lab = out["labels"].setdefault(r["label"], {"split": set(), "files": 0, "seconds": 0.0, "bandwidth_hz": []})
        lab["split"].add(r["split"])
        lab["files"] += 1
        lab["seconds"] += float(r["seconds"])
        lab["bandwidth_hz"].append(float(r["bandwidth_hz"]))
    for s in out["splits"].values():
        s["hours"], s["labels"] = round(s["hours"], 3), len(s["labels"])
    for lab in out["labels"].values():
        lab["split"] = "/".join(sorted(lab["split"]))
        lab["seconds"] = round(lab["seconds"], 1)
        lab["bandwidth_hz"] = round(float(np.median(lab["bandwidth_hz"])))
    return out


def package_versions() -> dict[str, str]:
    pkgs = list(dict.fromkeys((*SPEECH_PKGS, *NOISE_PKGS)))
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}\n", *pkgs], capture_output=True, text=True)
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


# ---------------------------------------------------------------- stage: render
def load_48k(path: str, start_s: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """Mono float32 at 48 kHz, optionally a window [start_s, start_s + seconds) of the file."""
    info = sf.info(path)
    start = int(start_s * info.samplerate)
    frames = -1 if seconds is None else int(np.ceil(seconds * info.samplerate)) + 1
    x, sr = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
    x = mono(x)
    return x if sr == SR else soxr.resample(x, sr, SR, quality="HQ").astype(np.float32)


def trim_silence(x: np.ndarray, margin_s: float = 0.05) -> np.ndarray:
    act = np.nonzero(active_mask(x, SR, 0.01))[0]
    if len(act) == 0:
        return x
    n, m = int(0.01 * SR), int(margin_s * SR)
    return x[max(0, act[0] * n - m) : min(len(x), (act[-1] + 1) * n + m)]


def fade(x: np.ndarray, n: int = int(0.01 * SR)) -> np.ndarray:
    n = min(n, len(x) // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        x = x.copy()
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def speech_segment(rng: np.random.Generator, files: list[dict], order: list[int], cursor: int,
                   length_s: float) -> tuple[np.ndarray, list[str], int]:
    """Utterances of one speaker, silences trimmed, joined with 0.15-0.4 s pauses until about length_s seconds
    (one utterance longer than that is cut, with a 10 ms fade); a 0.1-0.3 s lead-in of silence."""
    target = int(length_s * SR)
    parts = [np.zeros(int(rng.uniform(0.1, 0.3) * SR), np.float32)]
    used, total = [], len(parts[0])
    while total < target - int(0.5 * SR):
        r = files[order[cursor % len(order)]]
        cursor += 1
        x = trim_silence(load_48k(r["path"]))
        x = fade(x[: target - total])
        parts += [x, np.zeros(int(rng.uniform(0.15, 0.4) * SR), np.float32)]
        used.append(r["path"])
        total += len(x) + len(parts[-1])
    clean = np.concatenate(parts)[:target]
    return np.pad(clean, (0, max(0, int(4.0 * SR) - len(clean)))), used, cursor


def fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


def noise_segment(rng: np.random.Generator, r: dict, n: int) -> tuple[np.ndarray, float]:
    """n samples of a noise file at 48 kHz: a window of it (the louder half of 8 random offsets, so a window
    is never a silent gap of a sparse recording), or the whole file looped with 50 ms crossfades."""
    seconds, need = float(r["seconds"]), n / SR
    if seconds >= need + 0.05:
        offsets = rng.uniform(0, seconds - need - 0.02, size=8)
        windows = [fit(load_48k(r["path"], o, need), n) for o in offsets]
        levels = np.array([np.mean(w**2) for w in windows])
        pick = rng.choice(np.nonzero(levels >= np.median(levels))[0])
        return windows[pick], float(offsets[pick])
    x, xf = load_48k(r["path"]), int(0.05 * SR)
    out = x.copy()
    ramp = np.linspace(0, 1, xf, dtype=np.float32)
    while len(out) < n:
        out = np.concatenate([out[:-xf], out[-xf:] * ramp[::-1] + x[:xf] * ramp, x[xf:]])
    start = int(rng.integers(0, len(out) - n + 1))
    return out[start : start + n], start / SR


def write_float_wav(path: Path, x: np.ndarray, sr: int = SR) -> None:
    """Mono 32-bit float WAV (format 3, with its fact chunk), written atomically. Written here rather than by
    libsndfile, whose PEAK chunk holds the time of writing: the same seed gives byte-identical files."""
    data = np.ascontiguousarray(x, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHHH", 3, 1, sr, sr * 4, 4, 32, 0)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<II", 4, len(x))
            + b"data" + struct.pack("<I", len(data)) + data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    tmp.replace(path)


def stage_render(args: argparse.Namespace) -> None:
    lists = args.out / "lists"
    speech = [r for r in read_csv(lists / "real_speech.csv") if r["split"] == "valid"]
    noise = [r for r in read_csv(lists / "real_noise.csv") if r["split"] == "valid"]
    by_speaker: dict[str, list[dict]] = {}
    for r in speech:
        by_speaker.setdefault(r["speaker"], []).append(r)
    speakers = sorted(by_speaker)
    by_cat = {c: sorted((r for r in noise if r["category"] == c), key=lambda r: r["path"]) for c in CATEGORIES}
    missing = [c for c, rs in by_cat.items() if not rs]
    if missing or not speakers:
        raise SystemExit(f"no validation speech or noise for {missing or 'speech'}: run --stage lists first")
    # cells: every category x every SNR, in turn, so that every 42 consecutive pairs cover all cells once
    # (any prefix of the set is balanced; the first cells get one more when --pairs does not divide)
    cells = [(c, s) for s in SNRS_DB for c in CATEGORIES]
    plan = [cells[i % len(cells)] for i in range(args.pairs)]
    # speakers and noise files in round robin (each in a seeded order), so every one is used about equally
    rng0 = np.random.default_rng(seed_of(args.seed, "render-order"))
    speaker_of = [speakers[i] for i in rng0.permutation(np.arange(args.pairs) % len(speakers))]
    file_order = {s: list(np.random.default_rng(seed_of(args.seed, "utterances", s)).permutation(len(by_speaker[s])))
                  for s in speakers}
    cursor = dict.fromkeys(speakers, 0)
    noise_count = dict.fromkeys(CATEGORIES, 0)
    noise_order = {c: list(np.random.default_rng(seed_of(args.seed, "noise-order", c)).permutation(len(rs)))
                   for c, rs in by_cat.items()}
    folder = args.out / "valid_real"
    rows = []
    t0 = time.time()
    for i, (cat, snr) in enumerate(plan):
        rng = np.random.default_rng(seed_of(args.seed, "pair", i))
        spk = speaker_of[i]
        clean, used, cursor[spk] = speech_segment(rng, by_speaker[spk], file_order[spk], cursor[spk],
                                                  rng.uniform(args.min_s, args.max_s))
        nrow = by_cat[cat][noise_order[cat][noise_count[cat] % len(by_cat[cat])]]
        noise_count[cat] += 1
        noise, offset = noise_segment(rng, nrow, len(clean))
        level_db = rng.uniform(-33.0, -21.0)  # active speech level, dBFS
        clean *= np.float32(10 ** (level_db / 20) / np.sqrt(active_power(clean, SR) + 1e-12))
        p_noise = float(np.mean(noise.astype(np.float64) ** 2)) + 1e-12
        noise *= np.float32(np.sqrt(active_power(clean, SR) / (p_noise * 10 ** (snr / 10))))
        noisy = clean + noise
        peak = float(max(np.max(np.abs(noisy)), np.max(np.abs(clean))))
        guard = min(1.0, 0.89 / peak)  # peaks at most -1 dBFS: the pair is scaled down together, SNR unchanged
        clean, noisy = clean * np.float32(guard), noisy * np.float32(guard)
        name = f"{i:05d}"
        for sub, x in (("clean", clean), ("noisy", noisy)):  # noisy last: marks the pair complete
            write_float_wav(folder / sub / f"{name}.wav", x)
        bw = bandwidth_hz(clean, SR)  # of the rendered clean file: the widest of its utterances
        rows.append({"file": f"{name}.wav", "speaker": spk, "speech_path": ";".join(used), "noise_path": nrow["path"],
                     "category": cat, "snr_db": snr, "speech_bandwidth_hz": round(bw),
                     "seconds": round(len(clean) / SR, 3), "speech_level_dbfs": round(level_db + 20 * np.log10(guard), 2),
                     "guard_db": round(20 * np.log10(guard), 2), "noise_offset_s": round(offset, 3),
                     "noise_package": nrow["package"]})
    write_csv(folder / "pairs.csv", rows, list(rows[0]))
    logger.info("render: %d pairs (%d speakers, %d noise files) in %.0f s", len(rows), len(speakers), len(noise),
                time.time() - t0)


def stage_check(args: argparse.Namespace) -> None:
    """Listening-free checks of every rendered pair: rate, length, peaks, the SNR measured again from
    noisy - clean, the clean file's bandwidth, and the balance of the cells. Writes valid_real/check.json."""
    folder = args.out / "valid_real"
    rows = read_csv(folder / "pairs.csv")
    snr_err, peaks, bws, lengths, problems = [], [], [], [], []
    for r in rows:
        clean, sr_c = sf.read(folder / "clean" / r["file"], dtype="float64")
        noisy, sr_n = sf.read(folder / "noisy" / r["file"], dtype="float64")
        if sr_c != SR or sr_n != SR or clean.shape != noisy.shape:
            problems.append(f"{r['file']}: rate or length differs")
            continue
        snr = 10 * np.log10(active_power(clean, SR) / (np.mean((noisy - clean) ** 2) + 1e-20))
        snr_err.append(snr - float(r["snr_db"]))
        peaks.append(max(np.max(np.abs(clean)), np.max(np.abs(noisy))))
        bws.append((bandwidth_hz(clean, SR), float(r["speech_bandwidth_hz"])))
        lengths.append(len(clean) / SR)
        if abs(snr_err[-1]) > 0.1 or peaks[-1] >= 1.0 or not args.min_s - 0.01 <= lengths[-1] <= args.max_s + 0.01:
            problems.append(f"{r['file']}: snr error {snr_err[-1]:.2f} dB, peak {peaks[-1]:.3f}, {lengths[-1]:.2f} s")
    cells: dict[str, int] = {}
    for r in rows:
        cells[f"{r['category']} {r['snr_db']}"] = cells.get(f"{r['category']} {r['snr_db']}", 0) + 1
    bw_measured = np.array([b[0] for b in bws])
    report = {"pairs": len(rows), "problems": problems,
              "snr_error_db": {"max_abs": round(float(np.max(np.abs(snr_err))), 4), "mean": round(float(np.mean(snr_err)), 4)},
              "peak": {"max": round(float(np.max(peaks)), 4), "median": round(float(np.median(peaks)), 4)},
              "seconds": {"min": round(min(lengths), 2), "max": round(max(lengths), 2), "total_min": round(sum(lengths) / 60, 1)},
              "clean_bandwidth_hz": {"median": round(float(np.median(bw_measured))),
                                     "wide_band_pairs": int(np.sum(bw_measured >= WIDE_BAND_HZ)),
                                     "max_abs_diff_to_listed": round(float(np.max([abs(a - b) for a, b in bws])))},
              "pairs_per_cell": {"min": min(cells.values()), "max": max(cells.values()), "cells": len(cells)},
              "speakers": len({r["speaker"] for r in rows}), "noise_files": len({r["noise_path"] for r in rows})}
    (folder / "check.json").write_text(json.dumps(report, indent=1) + "\n")
    logger.info("check: %s", json.dumps({k: v for k, v in report.items() if k != "problems"}))
    if problems:
        logger.warning("check: %d problems, e.g. %s", len(problems), problems[:5])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("~/dfn4-corpus"), help="corpus folder (default ~/dfn4-corpus)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stage", choices=(*STAGES, "all"), default="all")
    p.add_argument("--pairs", type=int, default=294, help="rendered pairs (7 categories x 6 SNRs x 7 by default)")
    p.add_argument("--min-s", type=float, default=4.0, help="shortest pair, seconds")
    p.add_argument("--max-s", type=float, default=6.0, help="longest pair, seconds")
    p.add_argument("--valid-speaker-share", type=float, default=0.2,
                   help="share of the speaker groups (wide-band and narrow-band apart) held out for validation")
    run_stages(p.parse_args(), STAGES, globals(), {"script": "real_audio.py"})


if __name__ == "__main__":
    main()
