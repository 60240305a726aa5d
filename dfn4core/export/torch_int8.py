"""`dfn4 quantize`: an INT8 copy of a checkpoint (dynamic, static or quantization-aware) and its report.

The INT8 layers are `dfn4core.model.quantized`'s (so `load_model` reads the result), the QAT loop is
`dfn4core.train.qat`'s, and the comparison with the float model is `dfn4core.benchmark.quantization`'s.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfn4core.atomic import remove_stale_temps, same_file, write_atomically
from dfn4core.benchmark.quantization import compare_outputs, compare_timings
from dfn4core.benchmark.timing import BenchmarkSettings
from dfn4core.config import DspConfig
from dfn4core.data.loader import build_dataset
from dfn4core.data.mixing import scale_to_snr
from dfn4core.errors import ConfigError, ExportError
from dfn4core.model.checkpoint import checkpoint_dict, load_model
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.quantized import (
    QuantizedLayer,
    check_method,
    is_quantized,
    quantize_dynamic,
    quantize_static,
    quantized_layer_names,
)
from dfn4core.pretrained import resolve_model
from dfn4core.synth import speech_like
from dfn4core.train.qat import QatSettings, quantize_qat

__all__ = [  # with the INT8 layers and QAT this module held before they moved beside the model and training
    "QatSettings",
    "QuantizationReport",
    "QuantizedLayer",
    "generated_pairs",
    "quantize_checkpoint",
    "quantize_dynamic",
    "quantize_static",
    "save_quantized",
]

logger = logging.getLogger(__name__)

CALIB_ITEMS = 8  # DATA.toml items (or generated clips) the static observers see
CALIB_SECONDS = 3.0  # length of each generated calibration clip
VALID_ITEMS = 4
VALID_SECONDS = 4.0
VALID_SNRS_DB = (0.0, 5.0, 10.0)
RTF_SETTINGS = dict(seconds=5.0, hops=200, warmup_hops=20, repeats=3, warmup_runs=1, memory_process="same")


def save_quantized(model: DFN4, path: str | Path, method: str) -> Path:
    """Writes a quantized model (torch file, read by `load_model`) atomically. Returns the path."""
    path = Path(path)
    if path.suffix == ".safetensors":
        raise ExportError(f"{path}: INT8 models are saved as torch files (.pt); safetensors holds no quantized tensors")
    payload = checkpoint_dict(model, quantization={"method": method, "backend": torch.backends.quantized.engine})
    return write_atomically(path, lambda tmp: torch.save(payload, tmp))


def generated_pairs(n: int, seconds: float, sr: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n` (noisy, clean) pairs: speech-like tones in white, brown or pink noise at 0, 5 or 10 dB SNR."""
    rng, pairs = np.random.default_rng(seed), []
    for i in range(n):
        clean = speech_like(seconds, sr, rng)
        white = rng.standard_normal(clean.size)
        noise = [white, np.cumsum(white), np.convolve(white, np.ones(8) / 8, "same")][i % 3]
        noise = scale_to_snr(clean, (noise - noise.mean()).astype(np.float32), VALID_SNRS_DB[i % len(VALID_SNRS_DB)])
        pairs.append(((clean + noise).astype(np.float32), clean))
    return pairs


def _dataset_pairs(data: Any, split: str, n: int, dsp: DspConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    dataset = build_dataset(data, split, dsp)
    items = (dataset[i] for i in range(min(n, len(dataset))))
    return [(item["noisy"].numpy(), item["clean"].numpy()) for item in items]


@dataclass(frozen=True)
class QuantizationReport:
    """What `quantize_checkpoint` wrote and measured. Sizes in bytes; SI-SDR in dB; PESQ wide-band MOS-LQO.

    `metrics` holds means over the validation items (None where PESQ scored none): `*_vs_float` compare
    the quantized output with the float model's output, `*_clean` each output (and the noisy input)
    with the clean reference. `rtf` and `step_ms` are offline real-time factor and median per-hop
    step time at 1 thread (`dfn4core.benchmark`).
    """

    method: str
    path: Path
    report_path: Path
    backend: str
    float_bytes: int
    quantized_bytes: int
    quantized_layers: list[str]
    rtf: dict[str, float]
    step_ms: dict[str, float]
    metrics: dict[str, float | None]
    validation: str
    calibration: str

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(path=str(self.path), report_path=str(self.report_path))
        return out


def quantize_checkpoint(
    checkpoint: str | Path,
    out_path: str | Path,
    method: str,
    *,
    data: Any = None,
    qat: QatSettings | None = None,
    overwrite: bool = False,
    valid_items: int | None = None,
    valid_seconds: float | None = None,
    rtf_settings: BenchmarkSettings | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> QuantizationReport:
    """Quantizes a checkpoint, writes the INT8 model and a JSON report beside it, and returns the report.

    Args:
        checkpoint: float model checkpoint, or a shipped model's name ("full").
        out_path: the INT8 model (.pt); the report goes to OUT.report.json (`report_path`).
            Neither may be the checkpoint itself, even with `overwrite`.
        method: "dynamic", "static" or "qat".
        data: a DataConfig: static calibrates on its train split, qat fine-tunes on it; both are
            validated on its valid split when it has one. None: generated mixtures (qat needs data).
        qat: steps and optimizer of the qat fine-tuning.
        overwrite: replace an existing `out_path` or report.
        valid_items, valid_seconds: size of the validation set (seconds: generated only); None: VALID_*.
        rtf_settings: `dfn4core.benchmark.BenchmarkSettings` of the timing; None: RTF_SETTINGS.
        on_progress: (done, total) after each qat step.
        on_stage: called with what starts next ("loading the float model", ...), for a progress display.
    Raises:
        CheckpointError: the checkpoint is missing or corrupt. ConfigError: unknown method, qat without
            data, a bad data config. ExportError: `out_path` exists without `overwrite`, is the
            checkpoint, or is .safetensors.
    """
    check_method(method)
    valid_items, valid_seconds = valid_items or VALID_ITEMS, valid_seconds or VALID_SECONDS
    out_path = Path(out_path)
    report_path = out_path.with_suffix(".report.json")
    source = resolve_model(checkpoint)
    for path in (out_path, report_path):
        if same_file(path, source):
            raise ExportError(f"{path}: is the model being quantized; an input is never overwritten")
        if path.exists() and not overwrite:
            raise ExportError(f"{path}: exists (use --overwrite)")
    remove_stale_temps(out_path.parent)
    if method == "qat" and data is None:
        raise ConfigError("qat fine-tunes on real data: pass a DATA.toml (--calib-data)")
    stage = on_stage or (lambda _: None)
    stage("loading the float model")
    model = load_model(checkpoint, device="cpu")
    if is_quantized(model):
        raise ConfigError(f"{checkpoint}: already quantized; quantize the float checkpoint")
    sr, calibration = model.cfg.dsp.sr, "none (weights only)"
    stage({"dynamic": "quantizing", "static": "calibrating and quantizing", "qat": "fine-tuning (QAT)"}[method])
    if method == "dynamic":
        quantized = quantize_dynamic(model)
    elif method == "static":
        if data is not None:
            clips, calibration = _dataset_pairs(data, "train", CALIB_ITEMS, model.cfg.dsp), "DATA.toml train items"
        else:
            clips, calibration = generated_pairs(CALIB_ITEMS, CALIB_SECONDS, sr, seed=1), "generated mixtures"
        calibration = f"{len(clips)} {calibration}"
        quantized = quantize_static(model, [torch.from_numpy(noisy) for noisy, _ in clips])
    else:
        qat = qat or QatSettings()
        quantized = quantize_qat(model, data, qat, on_progress)
        calibration = f"{qat.steps} QAT steps of batch {qat.batch_size} on the DATA.toml train split"
    save_quantized(quantized, out_path, method)
    if data is not None and data.valid.sources:
        pairs, validation = _dataset_pairs(data, "valid", valid_items, model.cfg.dsp), "DATA.toml valid split"
    else:
        pairs, validation = generated_pairs(valid_items, valid_seconds, sr, seed=2), "generated mixtures"
    validation = f"{len(pairs)} items of {validation}"
    stage("timing float and INT8 at 1 thread")
    rtf, step_ms = compare_timings(model, quantized, rtf_settings or BenchmarkSettings(**RTF_SETTINGS))
    stage(f"scoring both on {validation}")
    scores = compare_outputs(model, quantized, pairs)
    report = QuantizationReport(
        method, out_path, report_path, torch.backends.quantized.engine, _float_bytes(model), out_path.stat().st_size,
        quantized_layer_names(model, method), rtf, step_ms, scores, validation, calibration,
    )  # fmt: skip
    write_atomically(report_path, lambda tmp: Path(tmp).write_text(json.dumps(report.to_dict(), indent=2)))
    logger.info("quantized (%s) %s -> %s", method, checkpoint, out_path)
    return report


def _float_bytes(model: DFN4) -> int:
    """Size of the float model as `save_model` writes it (a training checkpoint also holds optimizer state)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "float.pt"
        torch.save(checkpoint_dict(model), path)
        return path.stat().st_size
