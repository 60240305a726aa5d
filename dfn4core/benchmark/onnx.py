"""The onnxruntime backends of `dfn4core.benchmark`: export to a temporary folder, then time the graph
(the float streaming graph, or with `int8` its INT8 version, `dfn4core.export.onnx_int8`).

The streaming graph runs hop by hop in onnxruntime with the given intra-op thread count, as a
deployment runs it (`OnnxStream`: the states stay in bound buffers); the
offline figure is the same graph over a whole clip (one call per hop), and memory is the peak
resident-set growth of an `OnnxEnhancer` over the clip.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dfn4core.benchmark.timing import BenchmarkSettings, make_audio, peak_rss_growth, time_steps
from dfn4core.export.onnx import export_onnx
from dfn4core.export.runtime import load_onnx_model
from dfn4core.model.dfnet4 import DFN4

CHECK_SECONDS = 1.0  # audio the export validates the graph on


def onnx_figures(
    model: DFN4, settings: BenchmarkSettings, threads: int, int8: bool = False,
    reference: Callable[[np.ndarray], Any] | None = None,
) -> dict[str, Any]:
    """{"offline", "streaming", "memory"} of `model`'s exported streaming graph (its INT8 version
    with `int8`), shaped as the torch ones; `reference` steps in turn with the streaming hops
    (`dfn4core.benchmark.timing.time_steps`)."""  # fmt: skip
    sr, hop = model.cfg.dsp.sr, model.hop_size
    with tempfile.TemporaryDirectory() as tmp:
        report = export_onnx(model, tmp, make_audio(CHECK_SECONDS, sr)[0].numpy(), int8=int8)
        graph = load_onnx_model(report.int8.path if report.int8 is not None else report.onnx_path, threads=threads)

        total = settings.warmup_hops + settings.hops
        frames = make_audio(total * hop / sr, sr)[0].numpy()[: total * hop].reshape(total, 1, hop)
        stream = graph.new_stream()
        streaming = time_steps(lambda i: stream.step(frames[i]), frames, sr, settings, reference)

        clip = make_audio(settings.seconds, sr)[0].numpy()
        clip = clip[: max(1, clip.size // hop) * hop].reshape(-1, 1, hop)
        runs = []
        for run in range(settings.warmup_runs + settings.repeats):
            stream.reset()
            start = time.perf_counter()
            for frame in clip:
                stream.step(frame)
            if run >= settings.warmup_runs:
                runs.append(time.perf_counter() - start)
        seconds = clip.size / sr
        offline = {"seconds": seconds, "rtf": sorted(runs)[len(runs) // 2] / seconds, "runs_s": runs}

        def enhance_clip() -> None:
            enhancer = graph.new_enhancer(1)
            enhancer.process(clip.reshape(1, -1))
            enhancer.flush()

        memory = {"seconds": seconds, **peak_rss_growth(enhance_clip)}
    return {"offline": offline, "streaming": streaming, "memory": memory}
