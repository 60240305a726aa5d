"""ONNX export: one streaming graph (a hop and every state tensor in, the enhanced hop and new states out).

`export_onnx` traces `DFN4.step` with the TorchScript-based exporter, writes `model.onnx` and a
`model.json` describing it, and checks the graph in onnxruntime against torch before keeping it.
The optional offline graph wraps the same step graph in an ONNX Scan over hops, so both graphs run
exactly the streaming computation.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from dfn4core.atomic import remove_stale_temps, same_file, write_atomically
from dfn4core.errors import ExportError
from dfn4core.export.onnx_int8 import INT8_NAME, Int8Report, quantize_int8
from dfn4core.export.runtime import METADATA_NAME, METADATA_VERSION, OnnxModel
from dfn4core.model.dfnet4 import DFN4
from dfn4core.model.fuse import fuse_for_inference
from dfn4core.model.mamba import GRUBlock
from dfn4core.state import StreamState
from dfn4core.synth import noisy_speech

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
HOP_INPUT, HOP_OUTPUT = "hop", "enhanced"
STATE_OUTPUT_PREFIX = "next."
MAX_ABS_ERROR = 1e-4  # the graph must match torch this closely ...
MIN_SNR_DB = 60.0  # ... and the difference must lie this far below the output
VALIDATION_S = 4.0  # seconds of audio the export is checked on
GRAPH_NAME, OFFLINE_NAME = "model.onnx", "model_offline.onnx"
EXPORT_NAMES = (GRAPH_NAME, METADATA_NAME, OFFLINE_NAME, INT8_NAME)  # every file an export may write


@dataclass(frozen=True)
class Agreement:
    """How closely a graph's output matches torch on `seconds` of audio."""

    max_abs_error: float
    snr_db: float
    seconds: float

    @property
    def ok(self) -> bool:
        return self.max_abs_error < MAX_ABS_ERROR and self.snr_db > MIN_SNR_DB


@dataclass(frozen=True)
class ExportReport:
    """What `export_onnx` wrote and how well the streaming graph matched torch."""

    onnx_path: Path
    json_path: Path
    offline_path: Path | None
    agreement: Agreement
    size_bytes: int
    int8: Int8Report | None = None


class _StepGraph(nn.Module):
    """DFN4.step with flat tensor arguments, as the exporter needs: (hop, *states) -> (out, *states)."""

    def __init__(self, model: DFN4, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, hop: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        out, new = self.model.step(hop, StreamState.unflatten(self.names, states))
        return (out, *new.flatten())


def model_metadata(model: DFN4, opset: int = DEFAULT_OPSET) -> dict:
    """The model.json of `model`'s streaming graph: rates, latency, and every state with its initial value.

    Initial values are stored inline: "zeros", or the flat list of values (the feature norms start
    at ramps), to be reshaped to `shape`.
    """
    dsp = model.cfg.dsp
    states = []
    for name, t in model.init_state(1, torch.device("cpu"), torch.float32).tensors.items():
        init = "zeros" if not t.any() else t.flatten().tolist()
        states.append(
            {"name": name, "input": name, "output": STATE_OUTPUT_PREFIX + name, "shape": list(t.shape),
             "dtype": "float32", "init": init}
        )  # fmt: skip
    return {
        "format_version": METADATA_VERSION,
        "graph": GRAPH_NAME,
        "opset": opset,
        "sample_rate": dsp.sr,
        "hop_size": dsp.hop_size,
        "fft_size": dsp.fft_size,
        "lookahead": dsp.lookahead,
        "latency_size": dsp.latency_size,
        "delay_size": dsp.delay_size,
        "input": HOP_INPUT,
        "output": HOP_OUTPUT,
        "states": states,
        "model_config": model.cfg.to_dict(),
    }


def export_onnx(
    model: DFN4,
    out_dir: str | Path,
    audio: np.ndarray,
    *,
    opset: int = DEFAULT_OPSET,
    offline: bool = False,
    int8: bool = False,
    overwrite: bool = False,
    inputs: Sequence[str | Path] = (),
    on_stage: Callable[[str], None] | None = None,
) -> ExportReport:
    """Exports the streaming graph of `model` to `out_dir`, checked against torch on `audio`.

    Files of an earlier export in `out_dir` (EXPORT_NAMES) are kept unless `overwrite`; with it,
    those this export does not write are removed, so the folder holds one export only.

    Args:
        model: a DFN4 (copied to CPU float32 eval mode for the export).
        out_dir: folder for model.onnx, model.json and (with `offline`) model_offline.onnx.
        audio: (N,) mono samples at the model's rate to check the graph on (a few seconds).
        opset: ONNX opset of the graphs.
        offline: also write a whole-utterance graph (any number of whole hops).
        int8: also write model.int8.onnx (`quantize_int8`), compared with the float graph on `audio`.
        overwrite: replace an earlier export in `out_dir`.
        inputs: files this export reads (checkpoint, audio), none of which may be an output.
        on_stage: called with what starts next ("tracing the streaming graph", ...), for a progress display.
    Returns:
        The written paths, the agreement figures, the graph's size and the INT8 report.
    Raises:
        ExportError: the graph's output differs from torch's by MAX_ABS_ERROR or more, or the
            difference is less than MIN_SNR_DB below the output (nothing is written then); an
            earlier export exists without `overwrite`; or an input is one of the outputs.
    """
    try:
        import onnx  # noqa: F401  (torch's exporter needs it; say so before tracing)
    except ImportError:
        raise ExportError("exporting needs the onnx package: pip install 'dfn4[export]'") from None
    out_dir = Path(out_dir)
    _check_outputs(out_dir, [Path(p) for p in inputs], overwrite)
    remove_stale_temps(out_dir)
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    meta = model_metadata(model, opset)
    onnx_path = out_dir / GRAPH_NAME
    found: list[Agreement] = []
    stage = on_stage or (lambda _: None)

    fused = fuse_for_inference(model)  # what `dfn4 enhance` runs, checked against the model as given

    def write(tmp: str) -> None:
        stage("tracing the streaming graph")
        _export_step(fused, tmp, opset)
        stage("checking it against torch")
        found.append(validate_onnx(tmp, model, audio, meta))

    write_atomically(onnx_path, write)
    agreement = found[0]
    meta["validation"] = {"max_abs_error": agreement.max_abs_error, "snr_db": agreement.snr_db,
                          "seconds": agreement.seconds}  # fmt: skip
    json_path = write_atomically(out_dir / METADATA_NAME, lambda tmp: Path(tmp).write_text(json.dumps(meta)))
    offline_path = None
    if offline:
        offline_path = out_dir / OFFLINE_NAME
        stage("writing the offline graph and checking it")
        write_atomically(offline_path, lambda tmp: _write_offline(onnx_path, meta, tmp))
        _validate_offline(offline_path, model, audio)
    int8_report = None
    if int8:
        stage("writing the INT8 graph and comparing it")
        int8_report = _write_int8(fused, onnx_path, meta, audio, opset, out_dir / INT8_NAME)
    written = {onnx_path, json_path, offline_path, int8_report.path if int8_report else None}
    for stale in [out_dir / name for name in EXPORT_NAMES if out_dir / name not in written]:
        if stale.is_file():  # an earlier export's file beside this one would describe another model
            stale.unlink()
            logger.info("removed %s of an earlier export", stale)
    logger.info("exported %s: max abs error %.2e, SNR %.1f dB", onnx_path, agreement.max_abs_error, agreement.snr_db)
    return ExportReport(onnx_path, json_path, offline_path, agreement, onnx_path.stat().st_size, int8_report)


def _check_outputs(out_dir: Path, inputs: list[Path], overwrite: bool) -> None:
    targets = [out_dir / name for name in EXPORT_NAMES]
    for target in targets:
        if any(same_file(target, source) for source in inputs):
            raise ExportError(f"{target}: is an input of this export; an input is never overwritten")
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise ExportError(f"{existing[0]}: exists, from an earlier export (use --overwrite)")


def _write_int8(model: DFN4, onnx_path: Path, meta: dict, audio: np.ndarray, opset: int, out_path: Path) -> Int8Report:
    """The INT8 graph: from the float graph, or for GRU blocks from a float graph with their cells
    written out (Gemm nodes, stored in 8 bits; a GRU node keeps float weights)."""
    if not any(isinstance(m, GRUBlock) for m in model.modules()):
        return quantize_int8(onnx_path, audio, out_path)
    with tempfile.TemporaryDirectory() as tmp:
        cells = Path(tmp) / GRAPH_NAME
        _export_step(model, str(cells), opset, gru_nodes=False)
        (Path(tmp) / METADATA_NAME).write_text(json.dumps(meta))
        report = quantize_int8(cells, audio, out_path)
    return replace(report, float_bytes=onnx_path.stat().st_size)


def _export_step(model: DFN4, path: str, opset: int, gru_nodes: bool = True) -> None:
    """Trace `model.step` into the streaming graph at `path`; GRU blocks as ONNX GRU nodes, or
    (`gru_nodes=False`) as their written-out cells."""
    for block in model.modules():
        if isinstance(block, GRUBlock):
            block.gru_node = gru_nodes
    state = model.init_state(1, torch.device("cpu"), torch.float32)
    names = state.names()
    # eval() on the wrapper too: the exporter restores the wrapper's mode onto every submodule.
    graph = _StepGraph(model, names).eval()
    args = (torch.zeros(1, model.hop_size), *state.flatten())
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter is deprecated but traces the one-hop step exactly; the shape checks
        # it warns about are constant for a fixed (1, hop) input.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # The graph has batch 1 and the GRU state as an input, which is what this warning asks for.
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        torch.onnx.export(
            graph, args, path, input_names=[HOP_INPUT, *names],
            output_names=[HOP_OUTPUT, *(STATE_OUTPUT_PREFIX + n for n in names)],
            opset_version=opset, dynamo=False, do_constant_folding=True,
        )  # fmt: skip


def _agreement(ref: np.ndarray, out: np.ndarray) -> Agreement:
    diff = out.astype(np.float64) - ref.astype(np.float64)
    err = float(np.abs(diff).max()) if diff.size else 0.0
    noise, signal = float(np.sum(diff**2)), float(np.sum(ref.astype(np.float64) ** 2))
    snr_db = math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-30) / noise)
    if not math.isfinite(err):
        err, snr_db = math.inf, -math.inf
    return Agreement(err, snr_db, 0.0)


def _whole_hops(model: DFN4, audio: np.ndarray) -> Tensor:
    x = np.asarray(audio, np.float32).reshape(-1)
    n = x.shape[0] // model.hop_size * model.hop_size
    if n == 0:
        raise ExportError(f"validation audio needs at least one hop ({model.hop_size} samples), got {x.shape[0]}")
    return torch.from_numpy(x[:n].copy())[None]


def validate_onnx(onnx_path: str | Path, model: DFN4, audio: np.ndarray, meta: dict | None = None) -> Agreement:
    """Runs the streaming graph in onnxruntime hop by hop over `audio` and compares with torch.

    Args:
        onnx_path: the streaming graph.
        model: the torch model it was exported from (CPU float32).
        audio: (N,) samples at the model's rate; whole hops are used.
        meta: the graph's model.json content; read from beside the graph when None.
    Returns:
        The agreement figures.
    Raises:
        ExportError: if the agreement is not within MAX_ABS_ERROR and MIN_SNR_DB (with the figures).
    """
    wave = _whole_hops(model, audio)
    with torch.no_grad():
        ref = model.process(wave, model.init_state(1, torch.device("cpu"), torch.float32))[0].wave.numpy()
    graph = OnnxModel(onnx_path, meta if meta is not None else model_metadata(model), threads=1)
    state, hops = graph.init_state(), wave.numpy()
    out = np.empty_like(hops)
    for i in range(0, hops.shape[1], model.hop_size):
        y, state = graph.step(np.ascontiguousarray(hops[:, i : i + model.hop_size]), state)
        out[:, i : i + model.hop_size] = y
    found = _agreement(ref, out)
    found = Agreement(found.max_abs_error, found.snr_db, hops.shape[1] / model.cfg.dsp.sr)
    if not found.ok:
        raise ExportError(
            f"{onnx_path}: onnxruntime output differs from torch: max abs error {found.max_abs_error:.3g} "
            f"(limit {MAX_ABS_ERROR:g}), SNR of the difference {found.snr_db:.1f} dB (limit {MIN_SNR_DB:g} dB) "
            f"over {found.seconds:.2f} s"
        )
    return found


def _write_offline(step_path: Path, meta: dict, path: str) -> None:
    """Wraps the step graph in a Scan over hops: wave (1, T*hop) -> enhanced (1, T*hop), fresh state."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    step = onnx.load(str(step_path))
    body = step.graph
    hop = int(meta["hop_size"])
    by_name = {i.name: i for i in body.input}
    states = meta["states"]
    # Scan body: state inputs first, then the scanned hop; outputs: new states, then the hop out.
    body_inputs = [by_name[s["input"]] for s in states] + [by_name[HOP_INPUT]]
    outs = {o.name: o for o in body.output}
    body_outputs = [outs[s["output"]] for s in states] + [outs[HOP_OUTPUT]]
    del body.input[:]
    body.input.extend(body_inputs)
    del body.output[:]
    body.output.extend(body_outputs)
    inits = [numpy_helper.from_array(np.zeros(s["shape"], np.float32) if s["init"] == "zeros"
                                     else np.asarray(s["init"], np.float32).reshape(s["shape"]), "init." + s["name"])
             for s in states]  # fmt: skip
    shape_in = numpy_helper.from_array(np.array([-1, 1, hop], np.int64), "hops_shape")
    shape_out = numpy_helper.from_array(np.array([1, -1], np.int64), "wave_shape")
    nodes = [
        helper.make_node("Reshape", ["wave", "hops_shape"], ["hops"]),
        helper.make_node(
            "Scan", [*(i.name for i in inits), "hops"], [*("final." + s["name"] for s in states), "hops_out"],
            num_scan_inputs=1, body=body,
        ),
        helper.make_node("Reshape", ["hops_out", "wave_shape"], [HOP_OUTPUT]),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "dfn4_offline",
        [helper.make_tensor_value_info("wave", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info(HOP_OUTPUT, TensorProto.FLOAT, [1, "samples"])],
        initializer=[*inits, shape_in, shape_out],
    )  # fmt: skip
    offline = helper.make_model(graph, opset_imports=step.opset_import, producer_name="dfn4")
    offline.ir_version = step.ir_version
    onnx.checker.check_model(offline)
    onnx.save(offline, path)


def _validate_offline(path: Path, model: DFN4, audio: np.ndarray) -> Agreement:
    import onnxruntime as ort

    wave = _whole_hops(model, audio)
    with torch.no_grad():
        ref = model(wave).wave.numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    found = _agreement(ref, session.run([HOP_OUTPUT], {"wave": wave.numpy()})[0])
    if not found.ok:
        os.remove(path)
        raise ExportError(
            f"{path}: offline graph differs from torch: max abs error {found.max_abs_error:.3g}, "
            f"SNR {found.snr_db:.1f} dB; removed"
        )
    return found


def validation_audio(path: str | Path | None, sr: int, seconds: float = VALIDATION_S) -> np.ndarray:
    """The first `seconds` of `path` (first channel, resampled to `sr`), or `dfn4core.synth.noisy_speech` when None."""
    if path is None:
        return noisy_speech(seconds, sr)
    from dfn4core.io import read_audio, resample

    audio, file_sr = read_audio(path)
    first = audio[:1, : int(seconds * file_sr) + 1]
    if file_sr != sr:
        first = resample(first, file_sr, sr)
    return np.ascontiguousarray(first[0, : int(seconds * sr)], dtype=np.float32)
