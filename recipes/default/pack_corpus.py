"""A compact copy of the training corpus for a remote GPU machine with a small upload limit.

    python recipes/default/pack_corpus.py pack --corpus ~/dfn4-corpus --out PACK [--tts-share 0.5]
    python recipes/default/pack_corpus.py unpack PACK          # on the GPU machine: regenerates noises
    python recipes/default/pack_corpus.py pack-data --data recipes/default/data_real_distill.toml \
        --out PACK [--max-hours 0.5]                           # the training split of any data config

`pack-data` packs whatever the training mixes of a data config name (the real-audio manifests of
real_audio.py, for the lite's distillation on a GPU): every CSV manifest's files as Ogg/Opus (RIRs
as 16-bit FLAC), at most --max-hours of each manifest (a seeded random choice of its files), the
manifests with relative paths and the config as PACK/data.toml without its validation set.

`pack` writes the training split only (no validation data: validate on the full corpus at home):
speech and recorded noise as Ogg/Opus (about 14-24 kb/s: speech is band-limited already, the codec
keeps 8-12 kHz), a share of the TTS files, the RIRs as 16-bit FLAC, and manifests with relative
paths. The generated coloured noise, hum and music are not copied: `unpack` regenerates them from
their seeds with signals.py, exactly as build_corpus.py made them. The shipped full model was
trained on such a pack (docs/models.md): Opus-coded targets are a (small) difference from the
lossless corpus.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import sys
import tomllib
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_corpus import NOISE_FILE_S, seed_of, write_wav  # noqa: E402
from signals import SR, colored_noise, hum, music  # noqa: E402

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the rates Opus takes
# libsndfile's Opus compression level -> bitrate (measured, 24 kHz speech): 0.9 ~ 32, 0.95 ~ 20 kb/s.
LEVEL_SPEECH, LEVEL_NOISE = 0.95, 0.96
REGENERATED = {"generated-colored": colored_noise, "generated-hum": hum, "generated-music": music}
FIELDS = ["path", "source", "voice", "seconds", "sr"]


def read_rows(manifest: Path) -> list[dict]:
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def resolve(manifest: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (manifest.parent / p).resolve()


def write_opus(src: Path, dst: Path, level: float) -> tuple[float, int]:
    x, sr = sf.read(src, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    rate = next((r for r in OPUS_RATES if r >= sr), 48000)
    if rate != sr:
        x = soxr.resample(x, sr, rate)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0.99:
        x = x * (0.99 / peak)
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, x, rate, format="OGG", subtype="OPUS", compression_level=level)
    return len(x) / rate, rate


def write_flac16(src: Path, dst: Path) -> tuple[float, int]:
    """A RIR as 16-bit FLAC at its own rate; returns (seconds, rate)."""
    x, sr = sf.read(src, dtype="float32")
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, x, sr, subtype="PCM_16")
    return len(x) / sr, sr


def pack_toml(cfg: dict, source: str) -> str:
    """A data config for a pack: its training mixes as given (manifests beside the file), no valid set."""
    cfg = {**cfg, "cache_dir": "cache"}
    cfg.pop("valid", None)
    header = f"# A pack made by recipes/default/pack_corpus.py: the training split of {source},\n"
    return header + "# paths relative to this file. No validation set travels (train with valid_every = 0).\n" + tomli_w.dumps(cfg)


def pack(args: argparse.Namespace) -> None:
    corpus, out = args.corpus.expanduser(), args.out
    man = corpus / "manifests"
    rows_out: dict[str, list[dict]] = {"speech_recorded": [], "speech_tts": [], "noise": [], "rir": []}
    rng = np.random.default_rng(seed_of(args.seed, "pack"))
    for kind, level in (("speech_recorded", LEVEL_SPEECH), ("speech_tts", LEVEL_SPEECH), ("noise", LEVEL_NOISE)):
        manifest = man / f"train_{kind}.csv"
        for i, row in enumerate(read_rows(manifest)):
            if kind == "speech_tts" and rng.random() >= args.tts_share:
                continue
            if row["source"] == "generated-babble" and rng.random() >= args.babble_share:
                continue
            if row["source"] in REGENERATED:  # only its index travels: unpack makes the file
                rows_out[kind].append({**row, "path": f"regen/{Path(row['path']).name}"})
                continue
            dst = out / kind / f"{i:05d}.opus"
            if dst.exists():  # a resumed pack
                info = sf.info(dst)
                seconds, rate = info.duration, info.samplerate
            else:
                seconds, rate = write_opus(resolve(manifest, row["path"]), dst, level)
            rows_out[kind].append({**row, "path": str(dst.relative_to(out)), "seconds": round(seconds, 3), "sr": rate})
    manifest = man / "train_rir.csv"
    for i, row in enumerate(read_rows(manifest)):
        if rng.random() >= args.rir_share:
            continue
        dst = out / "rir" / f"{i:05d}.flac"
        write_flac16(resolve(manifest, row["path"]), dst)
        rows_out["rir"].append({**row, "path": str(dst.relative_to(out))})
    for kind, rows in rows_out.items():
        with open(out / f"train_{kind}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)
        hours = sum(float(r["seconds"]) for r in rows) / 3600
        print(f"{kind}: {len(rows)} files, {hours:.2f} h")
    (out / "data.toml").write_text(pack_data_toml())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"pack: {size / 2**20:.1f} MiB in {out}")


def unpack(args: argparse.Namespace) -> None:
    """Regenerates the coloured noise, hum and music files the noise manifest names (seeded), in parallel."""
    jobs = [(row["source"], args.pack / row["path"], args.seed) for row in read_rows(args.pack / "train_noise.csv")
            if row["source"] in REGENERATED and not (args.pack / row["path"]).exists()]
    with multiprocessing.Pool() as pool:
        pool.map(regenerate, jobs, chunksize=8)
    print(f"unpack: {len(jobs)} noise files generated in {args.pack / 'regen'}")


def regenerate(job: tuple[str, Path, int]) -> None:
    source, path, seed = job
    kind, index = path.stem.rsplit("_", 1)
    rng = np.random.default_rng(seed_of(seed, "noise", kind, int(index)))
    x = REGENERATED[source](rng, int(NOISE_FILE_S * SR))
    write_wav(path, 0.5 * x / (np.max(np.abs(x)) + 1e-9), SR)


def pack_data_toml() -> str:
    """recipes/default/data.toml for a pack: its training mixes with manifests beside the file, no valid set."""
    cfg = tomllib.loads((Path(__file__).resolve().parent / "data.toml").read_text())
    for mix in cfg["train"]["mix"]:
        for key in ("speech", "noise", "rir"):
            mix[key] = [Path(path).name for path in mix[key]]
    return pack_toml(cfg, "recipes/default/data.toml")


def pack_data(args: argparse.Namespace) -> None:
    """The training split of the data config `args.data` as a pack (see the module docstring)."""
    cfg = tomllib.loads(args.data.read_text())
    base, out = args.data.resolve().parent, args.out
    out.mkdir(parents=True, exist_ok=True)
    packed: dict[Path, str] = {}  # source manifest -> its name in the pack
    total_s = 0.0
    for mix in cfg.get("train", {}).get("mix", []):
        for key in ("speech", "noise", "rir"):
            entries = [mix[key]] if isinstance(mix.get(key), str) else mix.get(key, [])
            names = []
            for entry in entries:
                manifest = (base / Path(entry).expanduser()).resolve()
                if manifest.suffix.lower() != ".csv":
                    raise SystemExit(f"pack-data: {entry}: only CSV manifests are packed (a folder: list it in a manifest)")
                if manifest not in packed:
                    name = manifest.name
                    if name in packed.values():
                        raise SystemExit(f"pack-data: two manifests named {name}")
                    total_s += _pack_manifest(manifest, out, name, key, args)
                    packed[manifest] = name
                names.append(packed[manifest])
            if key in mix:
                mix[key] = names
    (out / "data.toml").write_text(pack_toml(cfg, args.data.name))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"pack: {len(packed)} manifests, {total_s / 3600:.2f} h, {size / 2**20:.1f} MiB in {out}")


def _pack_manifest(manifest: Path, out: Path, name: str, key: str, args: argparse.Namespace) -> float:
    """Encodes the files of one manifest (at most args.max_hours of them) into out/<stem>/; returns seconds."""
    rows = read_rows(manifest)
    order = np.random.default_rng(seed_of(args.seed, "pack-data", name)).permutation(len(rows))
    kept, seconds = [], 0.0
    for i in order:
        if args.max_hours is not None and seconds >= args.max_hours * 3600:
            break
        row, src = rows[i], resolve(manifest, rows[i]["path"])
        if key == "rir":
            dst = out / manifest.stem / f"{i:05d}.flac"
            length, rate = write_flac16(src, dst)
        else:
            dst = out / manifest.stem / f"{i:05d}.opus"
            length, rate = write_opus(src, dst, LEVEL_SPEECH if key == "speech" else LEVEL_NOISE)
        seconds += length
        kept.append({**row, "path": str(dst.relative_to(out)), "seconds": round(length, 3), "sr": rate})
    kept.sort(key=lambda r: r["path"])
    fields = list(dict.fromkeys(["path", *(k for r in kept for k in r)]))
    with open(out / name, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    print(f"{name}: {len(kept)} of {len(rows)} files, {seconds / 3600:.2f} h")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="write the compact copy")
    p.add_argument("--corpus", type=Path, default=Path("~/dfn4-corpus"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tts-share", type=float, default=0.5, help="share of the TTS files kept")
    p.add_argument("--babble-share", type=float, default=0.3, help="share of the babble files kept")
    p.add_argument("--rir-share", type=float, default=0.25, help="share of the RIRs kept")
    p.add_argument("--seed", type=int, default=0)
    u = sub.add_parser("unpack", help="regenerate the generated noises of a pack")
    u.add_argument("pack", type=Path)
    u.add_argument("--seed", type=int, default=0, help="build_corpus.py's --seed")
    d = sub.add_parser("pack-data", help="pack the training split of any data config (CSV manifests)")
    d.add_argument("--data", type=Path, required=True)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--max-hours", type=float, default=None, help="at most this much audio of each manifest")
    d.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    {"pack": pack, "unpack": unpack, "pack-data": pack_data}[args.command](args)


if __name__ == "__main__":
    main()
