"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808: Microsoft's non-intrusive MOS predictors.

The ONNX models ship inside the `speechmos` package (found on disk, never imported: its dnsmos
module needs librosa) and run in onnxruntime. The P.808 model's log-mel input is computed here with
numpy: a Slaney-style mel filterbank and a centred, zero-padded Hann STFT, as librosa's defaults.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfn4core.errors import MetricError
from dfn4core.metrics.inputs import INTRUSIVE_SR, as_mono, to_rate

INPUT_LENGTH_S = 9.01  # clip length of the models; shorter audio is repeated, longer is scored per 1 s hop
P835_MODEL = "dnsmos_models/sig_bak_ovr.onnx"
P808_MODEL = "dnsmos_models/model_v8.onnx"
MEL_BANDS = 120
MEL_FFT_SIZE = 321  # speechmos: n_fft = frame_size + 1 with frame_size = 320
MEL_HOP_SIZE = 160
MEL_TOP_DB = 80.0  # librosa.power_to_db's default dynamic range
MEL_AMIN = 1e-10
# Third-order fits from raw P.835 outputs to MOS (DNS-Challenge dnsmos_local.py, non-personalized).
SIG_POLY = (-0.08397278, 1.22083953, 0.0052439)
BAK_POLY = (-0.13166888, 1.60915514, -0.39604546)
OVRL_POLY = (-0.06766283, 1.11546468, 0.04602535)


@dataclass(frozen=True)
class DnsmosScores:
    """DNSMOS of one clip, each on the 1-5 MOS scale.

    Args:
        sig: P.835 speech signal quality.
        bak: P.835 background noise quality.
        ovrl: P.835 overall quality.
        p808: P.808 overall quality.
    """

    sig: float
    bak: float
    ovrl: float
    p808: float


def model_dir() -> Path:
    """The installed `speechmos` package folder, located without importing it.

    Raises:
        MetricError: speechmos is not installed (`pip install speechmos`).
    """
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise MetricError("DNSMOS needs the ONNX models of the speechmos package: pip install speechmos")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=4)
def _sessions(threads: int | None) -> tuple[Any, Any]:
    """(P.835 session, P.808 session), created once per process and thread count."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    folder = model_dir()
    providers = ["CPUExecutionProvider"]
    return tuple(ort.InferenceSession(str(folder / m), options, providers=providers) for m in (P835_MODEL, P808_MODEL))


def dnsmos(audio: Any, sr: int, *, threads: int | None = None) -> DnsmosScores:
    """DNSMOS P.835 and P.808 of a mono clip, equal to speechmos's `dnsmos.run` on the same samples.

    Reddy, Gopal, Cutler, "DNSMOS P.835: a non-intrusive perceptual objective speech quality
    metric to evaluate noise suppressors", ICASSP 2022; Reddy, Gopal, Cutler, "DNSMOS: a
    non-intrusive perceptual objective speech quality metric to evaluate noise suppressors",
    ICASSP 2021 (P.808). As the reference code: audio at 16 kHz, repeated to at least 9.01 s,
    scored on 9.01 s windows every second, scores averaged over windows.

    Args:
        audio: mono signal, nominally within [-1, 1].
        sr: its sample rate in Hz; other rates than 16 kHz are resampled with soxr.
        threads: onnxruntime intra-op threads; None = onnxruntime's choice.

    Returns:
        SIG, BAK, OVRL (P.835) and P.808 MOS.

    Shapes:
        audio: (N,) or (1, N).

    Raises:
        MetricError: not mono, empty or not finite, or speechmos is missing.
    """
    x = to_rate(as_mono(audio, "audio"), sr, INTRUSIVE_SR).astype(np.float32)
    p835, p808 = _sessions(threads)
    clip_size = int(INPUT_LENGTH_S * INTRUSIVE_SR)
    while x.size < clip_size:
        x = np.append(x, x)
    hops = int(np.floor(x.size / INTRUSIVE_SR) - INPUT_LENGTH_S) + 1
    raw, p808_scores = [], []
    for i in range(hops):
        seg = x[int(i * INTRUSIVE_SR) : int((i + INPUT_LENGTH_S) * INTRUSIVE_SR)]
        if seg.size < clip_size:
            continue
        mel = log_mel(seg[:-MEL_HOP_SIZE])[None].astype(np.float32)
        p808_scores.append(float(p808.run(None, {"input_1": mel})[0][0][0]))
        raw.append(p835.run(None, {"input_1": seg[None].astype(np.float32)})[0][0])
    sig, bak, ovrl = np.asarray(raw, dtype=np.float64).T
    polys = (np.polyval(p, v) for p, v in ((SIG_POLY, sig), (BAK_POLY, bak), (OVRL_POLY, ovrl)))
    return DnsmosScores(*(float(np.mean(v)) for v in polys), p808=float(np.mean(p808_scores)))


def log_mel(x: np.ndarray) -> np.ndarray:
    """The P.808 model input: (librosa.power_to_db(melspectrogram, ref=max) + 40) / 40, transposed.

    Mel power spectrogram with n_fft=321, hop 160, 120 Slaney mel bands over 0-8 kHz, Hann
    window, frames centred on zero-padded audio (librosa >= 0.10 defaults).

    Shapes:
        x: (N,) at 16 kHz -> (1 + N // 160, 120).
    """
    pad = MEL_FFT_SIZE // 2
    xp = np.pad(np.asarray(x, dtype=np.float64), (pad, pad))
    frames = 1 + (xp.size - MEL_FFT_SIZE) // MEL_HOP_SIZE
    index = MEL_HOP_SIZE * np.arange(frames)[:, None] + np.arange(MEL_FFT_SIZE)[None, :]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(MEL_FFT_SIZE) / MEL_FFT_SIZE)  # periodic Hann
    power = np.abs(np.fft.rfft(xp[index] * window, axis=1)) ** 2  # (T, 161)
    mel = power @ mel_filterbank(INTRUSIVE_SR, MEL_FFT_SIZE, MEL_BANDS).T  # (T, 120)
    db = 10.0 * np.log10(np.maximum(mel, MEL_AMIN)) - 10.0 * np.log10(max(MEL_AMIN, float(mel.max())))
    db = np.maximum(db, db.max() - MEL_TOP_DB)
    return (db + 40.0) / 40.0


def mel_filterbank(sr: int, n_fft: int, bands: int) -> np.ndarray:
    """Slaney-style mel filterbank (librosa.filters.mel defaults: htk=False, norm="slaney"), 0 to sr/2.

    Triangles between consecutive points equally spaced on Slaney's mel scale (linear below
    1 kHz, logarithmic above), each scaled to unit area (2 / bandwidth in Hz).

    Shapes:
        -> (bands, n_fft // 2 + 1).
    """
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), bands + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]


_MEL_LINEAR_HZ = 200.0 / 3  # Slaney: 3 mels per 200 Hz below 1 kHz
_MEL_BREAK_HZ = 1000.0
_MEL_LOG_STEP = np.log(6.4) / 27.0  # 27 mels per factor 6.4 above 1 kHz


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _MEL_LINEAR_HZ
    log = _MEL_BREAK_HZ / _MEL_LINEAR_HZ + np.log(np.maximum(hz, 1e-12) / _MEL_BREAK_HZ) / _MEL_LOG_STEP
    return np.where(hz >= _MEL_BREAK_HZ, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    break_mel = _MEL_BREAK_HZ / _MEL_LINEAR_HZ
    return np.where(mel >= break_mel, _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (mel - break_mel)), _MEL_LINEAR_HZ * mel)
