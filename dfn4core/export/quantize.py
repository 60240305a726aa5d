"""INT8 DFN4 in torch (torch.ao eager mode): dynamic, static and quantization-aware, saved for `load_model`.

Only leaf Linear (dynamic) or Linear and Conv layers (static, qat) become INT8. Mamba's x_proj and
dt_proj (they set the scan's decay and input), its depthwise conv (the conv state), the GRU, the
grouped linears (batched matmuls), the transposed convs, the STFT/ISTFT, the feature norms and the
deep filter stay float, and so does every state tensor: 8-bit recurrent state is what ruined naive
INT8 DeepFilterNet. A quantized checkpoint is a float one plus `quantization` = {method, backend}:
`load_model` rebuilds the float model, applies `quantized_structure`, then loads the INT8 weights.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.ao import quantization as tq

from dfn4core.atomic import remove_stale_temps, same_file, write_atomically
from dfn4core.errors import CheckpointError, ConfigError
from dfn4core.export import ExportError
from dfn4core.model.checkpoint import FORMAT_VERSION, checkpoint_dict, load_model
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.mamba import Mamba
from dfn4core.pretrained import resolve_model

logger = logging.getLogger(__name__)

METHODS = ("dynamic", "static", "qat")
BACKENDS = ("x86", "fbgemm")
SCAN_PROJECTIONS = ("x_proj", "dt_proj")  # Mamba's dt, B and C: they set the scan's decay, kept float
CALIB_ITEMS = 8  # DATA.toml items (or generated clips) the static observers see
CALIB_SECONDS = 3.0  # length of each generated calibration clip
VALID_ITEMS = 4
VALID_SECONDS = 4.0
VALID_SNRS_DB = (0.0, 5.0, 10.0)
QAT_LR = 1e-4  # a tenth of the training peak: QAT only adapts the weights to the INT8 grid
QAT_BATCH = 4
QAT_GRAD_CLIP = 1.0
RTF_SETTINGS = dict(seconds=5.0, hops=200, warmup_hops=20, repeats=3, warmup_runs=1, memory_process="same")


class QuantizedLayer(nn.Module):
    """A float leaf layer between a quantize and a dequantize stub: float in, float out, INT8 inside."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.quant, self.layer, self.dequant = tq.QuantStub(), layer, tq.DeQuantStub()

    def forward(self, x: Tensor) -> Tensor:
        return self.dequant(self.layer(self.quant(x)))


def quantized_layer_names(model: nn.Module, method: str) -> list[str]:
    """The leaf layers `method` makes INT8: nn.Linear (dynamic) or nn.Linear/Conv1d/Conv2d (static, qat)."""
    check_method(method)
    kinds = (nn.Linear,) if method == "dynamic" else (nn.Linear, nn.Conv1d, nn.Conv2d)
    # Mamba uses its conv1d's weight directly (conv state path), so its module is never called.
    state_convs = {f"{name}.conv1d" for name, m in model.named_modules() if isinstance(m, Mamba)}
    return [name for name, m in model.named_modules()
            if type(m) in kinds and name not in state_convs and not name.endswith(SCAN_PROJECTIONS)]  # fmt: skip


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown quantization method {method!r}: choose one of {', '.join(METHODS)}")


def _backend() -> str:
    """The x86 INT8 engine (fbgemm kernels); set for the process, as torch's quantized ops read it globally."""
    engines = torch.backends.quantized.supported_engines
    name = next((b for b in BACKENDS if b in engines), None)
    if name is None:
        raise ConfigError(f"this torch has no x86 INT8 engine (supported: {', '.join(engines)})")
    if torch.backends.quantized.engine != name:
        logger.info("torch quantized engine: %s", name)
        torch.backends.quantized.engine = name
    return name


def _wrap(model: DFN4, method: str, qconfig: Any) -> DFN4:
    """Puts every layer of `quantized_layer_names` inside a QuantizedLayer carrying `qconfig` (in place)."""
    for name in quantized_layer_names(model, method):
        parent, _, leaf = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        wrapped = QuantizedLayer(getattr(owner, leaf))
        wrapped.qconfig = qconfig
        setattr(owner, leaf, wrapped)
    return model


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.ao's deprecation and "observer not run" warnings, expected here, stay out of the log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*(deprecated|TypedStorage|observer).*")
        yield


def quantize_dynamic(model: DFN4) -> DFN4:
    """A copy of `model` whose Linear layers hold INT8 weights (per channel); activations quantized per call."""
    _backend()
    spec = {name: tq.per_channel_dynamic_qconfig for name in quantized_layer_names(model, "dynamic")}
    with _quiet():
        return tq.quantize_dynamic(copy.deepcopy(model).cpu().eval(), spec, dtype=torch.qint8)


@torch.no_grad()
def quantize_static(model: DFN4, calibration: list[Tensor]) -> DFN4:
    """A copy of `model` with INT8 Linear/Conv weights and activations, observers calibrated on `calibration`.

    Args:
        model: the float model.
        calibration: noisy clips (N,) at the model's rate, whole hops or not.
    """
    backend = _backend()
    with _quiet():
        net = _wrap(copy.deepcopy(model).cpu().eval(), "static", tq.get_default_qconfig(backend))
        tq.prepare(net, inplace=True)
        for clip in calibration:
            net(_whole_hops(clip, net.hop_size)[None])
        return tq.convert(net.eval(), inplace=True)


@dataclass(frozen=True)
class QatSettings:
    """Quantization-aware fine-tuning: steps of `dfn4core.train.loop.train_step` on the DATA.toml's train split."""

    steps: int = 200
    batch_size: int = QAT_BATCH
    lr: float = QAT_LR
    grad_clip: float = QAT_GRAD_CLIP
    seed: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("qat: steps and batch_size must be >= 1 and lr > 0")


def quantize_qat(
    model: DFN4, data: Any, settings: QatSettings, on_progress: Callable[[int, int], None] | None = None
) -> DFN4:
    """A copy of `model` fine-tuned with fake-quant on the static layers for settings.steps, then converted."""
    from dfn4core.data.loader import build_dataset
    from dfn4core.losses import GeneratorLoss
    from dfn4core.losses.config import LossConfig
    from dfn4core.train.batches import epoch_loader, steps_per_epoch
    from dfn4core.train.distributed import DistContext
    from dfn4core.train.loop import StepContext, train_step

    backend = _backend()
    with _quiet():
        torch.manual_seed(settings.seed)
        net = copy.deepcopy(model).cpu()
        net.freeze_norm = True  # the BatchNorm statistics stay the float model's (small QAT batches)
        net = _wrap(net.train(), "qat", tq.get_default_qat_qconfig(backend))
        tq.prepare_qat(net, inplace=True)
        cfg = net.cfg
        loss_fn = GeneratorLoss(LossConfig(lsnr_min_db=cfg.lsnr_min_db, lsnr_max_db=cfg.lsnr_max_db), cfg.dsp)
        opt = torch.optim.AdamW(net.parameters(), settings.lr)
        dist = DistContext()
        ctx = StepContext(torch.device("cpu"), dist, settings.grad_clip, None, None)
        dataset = build_dataset(data, "train")
        per_epoch, step, skipped = steps_per_epoch(len(dataset), settings.batch_size, 1), 0, 0
        while step < settings.steps:
            for batch in epoch_loader(dataset, settings, dist, step // per_epoch, step % per_epoch):
                skipped += train_step(net, loss_fn, batch, opt, ctx) is None
                step += 1
                if on_progress is not None:
                    on_progress(step, settings.steps)
                if step >= settings.steps:
                    break
        if skipped:
            logger.warning("qat: %d of %d steps skipped (loss or gradient not finite)", skipped, settings.steps)
        return tq.convert(net.eval(), inplace=True)


def quantized_structure(model: DFN4, spec: Any, path: str | Path, device: Any = None) -> DFN4:
    """The module structure a quantized checkpoint's weights fit: `model` (float, fresh) quantized by spec["method"].

    Called by `load_model` before it loads the INT8 state dict (static and qat convert to the same modules).

    Raises:
        CheckpointError: an unknown method, a backend this torch lacks, or a device other than the CPU.
    """
    method = spec.get("method") if isinstance(spec, dict) else None
    if method not in METHODS:
        raise CheckpointError(path, f"unknown quantization method {method!r}")
    if device is not None and torch.device(device).type != "cpu":
        raise CheckpointError(path, f"INT8 ({method}) models run on the CPU only, not {device}")
    try:
        backend = _backend()
    except ConfigError as err:
        raise CheckpointError(path, str(err)) from err
    if method == "dynamic":
        return quantize_dynamic(model)
    with _quiet():
        net = _wrap(model.cpu().eval(), "static", tq.get_default_qconfig(backend))
        return tq.convert(tq.prepare(net), inplace=True)


def save_quantized(model: DFN4, path: str | Path, method: str) -> Path:
    """Writes a quantized model (torch file, read by `load_model`) atomically. Returns the path."""
    path = Path(path)
    if path.suffix == ".safetensors":
        raise ExportError(f"{path}: INT8 models are saved as torch files (.pt); safetensors holds no quantized tensors")
    payload = {
        "format_version": FORMAT_VERSION,
        "model_config": model.cfg.to_dict(),
        "quantization": {"method": method, "backend": torch.backends.quantized.engine},
        "state_dict": model.state_dict(),
    }
    return write_atomically(path, lambda tmp: torch.save(payload, tmp))


def speech_like(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Voiced 'syllables': a gliding harmonic tone with a 4 Hz envelope and pauses, (N,) float32."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0.max() < sr / 2)
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.3 * tone * envelope).astype(np.float32)


def generated_pairs(n: int, seconds: float, sr: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n` (noisy, clean) pairs: speech-like tones in white, brown or pink noise at 0, 5 or 10 dB SNR."""
    from dfn4core.data.mixing import scale_to_snr

    rng, pairs = np.random.default_rng(seed), []
    for i in range(n):
        clean = speech_like(seconds, sr, rng)
        white = rng.standard_normal(clean.size)
        noise = [white, np.cumsum(white), np.convolve(white, np.ones(8) / 8, "same")][i % 3]
        noise = scale_to_snr(clean, (noise - noise.mean()).astype(np.float32), VALID_SNRS_DB[i % len(VALID_SNRS_DB)])
        pairs.append(((clean + noise).astype(np.float32), clean))
    return pairs


def _whole_hops(x: Tensor | np.ndarray, hop: int) -> Tensor:
    x = torch.as_tensor(x, dtype=torch.float32)
    return x[: max(1, x.shape[-1] // hop) * hop]


def _dataset_pairs(data: Any, split: str, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from dfn4core.data.loader import build_dataset

    dataset = build_dataset(data, split)
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
    rtf_settings: Any = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> QuantizationReport:
    """Quantizes a checkpoint, writes the INT8 model and a JSON report beside it, and returns the report.

    Args:
        checkpoint: float model checkpoint, or a shipped model's name ("full", "lite").
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
    if _is_quantized(model):
        raise ConfigError(f"{checkpoint}: already quantized; quantize the float checkpoint")
    sr, calibration = model.cfg.dsp.sr, "none (weights only)"
    stage({"dynamic": "quantizing", "static": "calibrating and quantizing", "qat": "fine-tuning (QAT)"}[method])
    if method == "dynamic":
        quantized = quantize_dynamic(model)
    elif method == "static":
        if data is not None:
            clips, calibration = _dataset_pairs(data, "train", CALIB_ITEMS), "DATA.toml train items"
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
        pairs, validation = _dataset_pairs(data, "valid", valid_items), "DATA.toml valid split"
    else:
        pairs, validation = generated_pairs(valid_items, valid_seconds, sr, seed=2), "generated mixtures"
    validation = f"{len(pairs)} items of {validation}"
    stage("timing float and INT8 at 1 thread")
    timings = _timings(model, quantized, rtf_settings)
    stage(f"scoring both on {validation}")
    scores = compare_outputs(model, quantized, pairs)
    report = QuantizationReport(
        method, out_path, report_path, torch.backends.quantized.engine, _float_bytes(model), out_path.stat().st_size,
        quantized_layer_names(model, method), *timings, scores, validation, calibration,
    )  # fmt: skip
    write_atomically(report_path, lambda tmp: Path(tmp).write_text(json.dumps(report.to_dict(), indent=2)))
    logger.info("quantized (%s) %s -> %s", method, checkpoint, out_path)
    return report


def _is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, QuantizedLayer) or "quantized" in type(m).__module__ for m in model.modules())


def _float_bytes(model: DFN4) -> int:
    """Size of the float model as `save_model` writes it (a training checkpoint also holds optimizer state)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "float.pt"
        torch.save(checkpoint_dict(model), path)
        return path.stat().st_size


def _timings(float_model: DFN4, quantized: DFN4, settings: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Offline RTF and median step ms of both models at 1 thread, with `dfn4core.benchmark`'s timers."""
    from dfn4core.benchmark import BenchmarkSettings, offline_rtf, step_latency

    settings = settings or BenchmarkSettings(**RTF_SETTINGS)
    previous, rtf, step_ms = torch.get_num_threads(), {}, {}
    torch.set_num_threads(1)
    try:
        for name, net in (("float", float_model), ("quantized", quantized)):
            rtf[name] = offline_rtf(net, settings)["rtf"]
            step_ms[name] = step_latency(net, settings)["median_ms"]
    finally:
        torch.set_num_threads(previous)
    return rtf, step_ms


@torch.no_grad()
def compare_outputs(float_model: DFN4, quantized: DFN4, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float | None]:
    """Mean SI-SDR and PESQ of the quantized output against the float output, and of both (and the input) against clean."""
    from dfn4core.enhance import enhance
    from dfn4core.metrics import MetricError, pesq, si_sdr

    sr, scores = float_model.cfg.dsp.sr, {}
    for noisy, clean in pairs:
        out_float, out_quant = enhance(float_model, noisy, sr), enhance(quantized, noisy, sr)
        for name, ref, est in (("vs_float", out_float, out_quant), ("float_clean", clean, out_float),
                               ("quantized_clean", clean, out_quant), ("noisy_clean", clean, noisy)):  # fmt: skip
            for metric, fn in (("si_sdr", si_sdr), ("pesq", pesq)):
                try:
                    scores.setdefault(f"{metric}_{name}", []).append(fn(ref, est, sr))
                except MetricError as err:
                    logger.debug("%s %s skipped: %s", metric, name, err)
                    scores.setdefault(f"{metric}_{name}", [])
    return {k: (float(np.mean(v)) if v and all(map(math.isfinite, v)) else None) for k, v in scores.items()}
