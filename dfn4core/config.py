"""Typed, frozen configuration dataclasses: the signal chain (DspConfig) and the model (ModelConfig).

Variants are classmethods (`ModelConfig.full()`, `.lite()`, `.tiny()`); `lite` and `tiny` are
`dataclasses.replace` of `full`, so the differences sit in one place. `dataclass_from_dict` is the
one reader of config tables for every config dataclass (unknown keys and mistyped values are errors).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from dfn4core.errors import ConfigError

Temporal = Literal["mamba", "gru"]
T = TypeVar("T")


@dataclass(frozen=True)
class DspConfig:
    """The signal chain shared by training, offline and streaming enhancement.

    Args:
        sr: sample rate in Hz of everything the model sees.
        fft_size: window and FFT length in samples (Vorbis window).
        hop_size: samples per frame advance; one model step per hop.
        nb_erb: number of ERB bands of the gain mask.
        min_nb_erb_freqs: minimum number of FFT bins per ERB band.
        nb_df: number of low frequency bins that get deep filtering.
        lookahead: frames of lookahead (conv features and deep filter).
        norm_tau_s: time constant of the running feature normalisation.
    """

    sr: int = 48_000
    fft_size: int = 960
    hop_size: int = 480
    nb_erb: int = 32
    min_nb_erb_freqs: int = 2
    nb_df: int = 96
    lookahead: int = 2
    norm_tau_s: float = 1.0

    def __post_init__(self) -> None:
        if self.fft_size != 2 * self.hop_size:
            raise ConfigError(f"fft_size must be 2 * hop_size (50 % overlap), got {self.fft_size}, {self.hop_size}")
        if not 0 < self.nb_df <= self.n_freqs:
            raise ConfigError(f"nb_df must be in 1..{self.n_freqs}, got {self.nb_df}")
        if self.nb_erb * self.min_nb_erb_freqs > self.n_freqs:
            raise ConfigError(f"{self.nb_erb} ERB bands of >= {self.min_nb_erb_freqs} bins do not fit {self.n_freqs} bins")
        if self.lookahead < 0:
            raise ConfigError(f"lookahead must be >= 0, got {self.lookahead}")
        if self.norm_tau_s <= 0:
            raise ConfigError(f"norm_tau_s must be positive, got {self.norm_tau_s}")

    @property
    def n_freqs(self) -> int:
        return self.fft_size // 2 + 1

    @property
    def norm_alpha(self) -> float:
        """Decay of the running normalisation per hop: exp(-hop / (sr * tau)) rounded as DeepFilterNet
        rounds it (to 3 decimals, more only if needed to stay below 1): 0.99 for 10 ms and 1 s."""
        alpha = math.exp(-self.hop_size / (self.sr * self.norm_tau_s))
        decimals = 3
        while (rounded := round(alpha * 10**decimals) / 10**decimals) >= 1.0:
            decimals += 1
        return rounded

    @property
    def delay_size(self) -> int:
        """Samples between an input sample and its enhanced copy in the stream of hops."""
        return self.fft_size - self.hop_size + self.lookahead * self.hop_size

    @property
    def latency_size(self) -> int:
        """Algorithmic latency in samples: window plus lookahead (40 ms by default)."""
        return self.fft_size + self.lookahead * self.hop_size


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of DFN4. See docs/architecture.md for what each block does.

    The spectral path has DeepFilterNet3's layout (conv encoders, U-Net ERB decoder, DF decoder
    with a conv pathway), so a full-width DFN4 can start from DFN3's weights
    (`dfn4core.model.dfn3_import`). The per-frame embedding between encoder and decoders is
    `emb_width` = conv_ch * nb_erb / 4 wide (DFN3: 512); the temporal blocks squeeze it to emb_dim.

    Args:
        dsp: the signal chain.
        conv_ch: channels of the ERB, DF and phase conv encoders and of the decoders' convs.
        emb_dim: width of the temporal blocks (DFN3's GRU hidden size).
        temporal: "mamba" (selective state space) or "gru" (same network with GRUs, for ablation).
        enc_layers: temporal blocks in the encoder's SqueezedMamba.
        erb_dec_layers: temporal blocks in the ERB decoder (0: its input layer feeds its output layer).
        df_dec_layers: temporal blocks in the DF decoder.
        lin_groups: groups of the grouped linear layers around the temporal blocks.
        enc_lin_groups: groups of the DF encoder's linear layer (DFN3: 32).
        df_lin_groups: groups of the DF decoder's input layer (DFN3: 8).
        d_state: SSM state size per channel.
        d_conv: kernel of the Mamba causal depthwise conv.
        expand: Mamba inner width / model width.
        df_orders: deep-filter orders combined by MultiResolutionDF, ascending.
        df_pathway_kernel: frames of the DF decoder's conv pathway over the DF encoder's output.
        views: True: the hybrid encoder's waveform and phase views, fused with the spectral one by
            CrossDomainAttention (the design); False: the spectral view alone (DFN3's encoder).
            Without them the lite's streaming hop costs about a quarter less (docs/performance.md);
            `wave_ch`, `wave_kernel`, `attn_dim` and `attn_heads` are then unused.
        wave_ch: learned filters of the WaveformEncoder.
        wave_kernel: length in samples of each learned analysis filter (hop of kernel/2).
        attn_dim: width of the CrossDomainAttention tokens.
        attn_heads: heads of the CrossDomainAttention.
        order_hidden: hidden width of the AdaptiveOrderPredictor.
        lsnr_min_db: lower end of the local-SNR head's range.
        lsnr_max_db: upper end of the local-SNR head's range.
    """

    dsp: DspConfig = field(default_factory=DspConfig)
    conv_ch: int = 64
    emb_dim: int = 256
    temporal: Temporal = "mamba"
    enc_layers: int = 1
    erb_dec_layers: int = 2
    df_dec_layers: int = 2
    lin_groups: int = 16
    enc_lin_groups: int = 32
    df_lin_groups: int = 8
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    df_orders: tuple[int, ...] = (3, 5, 7)
    df_pathway_kernel: int = 5
    views: bool = True
    wave_ch: int = 32
    wave_kernel: int = 32
    attn_dim: int = 64
    attn_heads: int = 4
    order_hidden: int = 32
    lsnr_min_db: float = -15.0
    lsnr_max_db: float = 35.0

    def __post_init__(self) -> None:
        if isinstance(self.dsp, dict):  # rebuilt from a checkpoint's asdict()
            object.__setattr__(self, "dsp", DspConfig(**self.dsp))
        object.__setattr__(self, "df_orders", tuple(int(o) for o in self.df_orders))
        if self.temporal not in ("mamba", "gru"):
            raise ConfigError(f"temporal must be 'mamba' or 'gru', got {self.temporal!r}")
        if not self.df_orders or list(self.df_orders) != sorted(set(self.df_orders)):
            raise ConfigError(f"df_orders must be distinct and ascending, got {self.df_orders}")
        if self.df_orders[0] <= self.dsp.lookahead:
            raise ConfigError(f"every DF order must exceed the lookahead {self.dsp.lookahead}, got {self.df_orders}")
        if self.dsp.nb_erb % 4 or self.dsp.nb_df % 4:
            raise ConfigError("nb_erb and nb_df must divide by 4 (two stride-2 conv stages)")
        if min(self.conv_ch, self.emb_dim, self.enc_layers, self.wave_ch, self.df_pathway_kernel) < 1:
            raise ConfigError("widths, enc_layers and df_pathway_kernel must be positive")
        if min(self.erb_dec_layers, self.df_dec_layers) < 0:
            raise ConfigError("erb_dec_layers and df_dec_layers must not be negative")
        if self.conv_ch % 2 or self.attn_dim % self.attn_heads:
            raise ConfigError("conv_ch must divide by 2 and attn_dim by attn_heads")
        widths = {
            "emb_width (conv_ch * nb_erb / 4)": (self.emb_width, (self.lin_groups, self.enc_lin_groups, self.df_lin_groups)),
            "emb_dim": (self.emb_dim, (self.lin_groups, self.df_lin_groups)),
            "wave_ch": (self.wave_ch, (self.lin_groups,)),
        }
        for name, (width, groups) in widths.items():
            if any(width % g for g in groups):
                raise ConfigError(f"{name} = {width} must divide by the linear groups {groups}")
        if self.dsp.fft_size % self.wave_kernel or self.wave_kernel % 2:
            raise ConfigError(f"wave_kernel must be even and divide fft_size, got {self.wave_kernel}")
        if self.lsnr_max_db <= self.lsnr_min_db:
            raise ConfigError("lsnr_max_db must exceed lsnr_min_db")

    VARIANTS: ClassVar[tuple[str, ...]] = ("full", "lite", "tiny")  # each a classmethod below; tiny is for tests

    @classmethod
    def variant(cls, name: str) -> ModelConfig:
        """The config of variant `name` (one of VARIANTS); an unknown name is a ConfigError."""
        if name not in cls.VARIANTS:
            raise ConfigError(f"unknown variant {name!r}: choose one of {', '.join(cls.VARIANTS)}")
        return getattr(cls, name)()

    @classmethod
    def full(cls) -> ModelConfig:
        return cls()

    @classmethod
    def lite(cls) -> ModelConfig:
        """DFN3's conv layout (its conv weights fit) with two narrower temporal layers, and the
        spectral view alone: the waveform and phase views cost a fixed part of every streaming hop,
        and each GRU layer a fixed part of every frame offline, that the lite's half of DFN3's
        runtime cannot hold; the ERB decoder has no temporal layer of its own (docs/models.md,
        "The lite")."""
        return dataclasses.replace(
            cls.full(), emb_dim=192, enc_layers=1, erb_dec_layers=0, df_dec_layers=1, df_orders=(3, 5), views=False,
        )  # fmt: skip

    @classmethod
    def tiny(cls) -> ModelConfig:
        """A few thousand parameters: for tests only."""
        return dataclasses.replace(
            cls.full(),
            conv_ch=8,
            emb_dim=32,
            enc_layers=1,
            erb_dec_layers=1,
            df_dec_layers=1,
            df_orders=(3, 5),
            lin_groups=4,
            enc_lin_groups=4,
            df_lin_groups=4,
            wave_ch=4,
            attn_dim=16,
            attn_heads=2,
            order_hidden=8,
            d_state=4,
        )

    @property
    def emb_width(self) -> int:
        """Width of the embedding between encoder and decoders: the flattened ERB encoder output."""
        return self.conv_ch * self.dsp.nb_erb // 4

    @property
    def df_max_order(self) -> int:
        return self.df_orders[-1]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from `to_dict()`; unknown keys are a ConfigError."""
        return dataclass_from_dict(cls, data, convert={"dsp": functools.partial(dataclass_from_dict, DspConfig)})


def dataclass_from_dict(
    cls: Callable[..., T],
    data: Any,
    where: str = "",
    *,
    convert: Mapping[str, Callable[[Any, str], Any]] | None = None,
    typed: bool = True,
) -> T:
    """Builds the config dataclass `cls` from a table (parsed TOML or `asdict` output).

    Args:
        cls: the dataclass.
        data: its fields by name.
        where: this table's dotted place in messages ("loss.weights."); "" at the top.
        convert: field name -> function(value, where of the value + ".") building that field
            (a nested table's dataclass, a resolved path).
        typed: check each value against its field's type first (`check_types`).
    Raises:
        ConfigError: not a table, unknown keys (`check_table`), a value of the wrong type, or a
            required key missing.
    """
    check_table(cls, data, where, typed=typed)
    convert = convert or {}
    kwargs = {k: convert[k](v, f"{where}{k}.") if k in convert else v for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required key is missing
        raise ConfigError(f"{where.rstrip('.') or 'config'}: {err}") from err


def check_table(
    cls: Any, data: Any, where: str = "", *, known: Collection[str] | None = None, typed: bool = True
) -> None:
    """Checks that `data` is a table whose keys are fields of dataclass `cls` (or `known`), each of its type.

    Raises:
        ConfigError: "unknown keys: {where}{key}, ... (known here: ...)", or as `check_types`.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'} must be a table, got {type(data).__name__}")
    names = set(known) if known is not None else {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        listed = ", ".join(where + k for k in unknown)
        raise ConfigError(f"unknown keys: {listed} (known here: {', '.join(sorted(names))})")
    if typed:
        check_types(cls, data, where)


def check_types(cls: type, data: dict[str, Any], where: str) -> None:
    """Checks each value of `data` (known keys of dataclass `cls`) against its field's type.

    Raises:
        ConfigError: "{where}{key} must be {expected}, got {value!r}" for the first value of the
            wrong type (an integer field given 2.5, a number given "fast", a pair given 3 values).
    """
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        hint = hints.get(key)
        if hint is not None and not _fits(value, hint):
            raise ConfigError(f"{where}{key} must be {_describe(hint)}, got {value!r}")


def _fits(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is os.PathLike or getattr(hint, "__name__", "") == "Path":
        return isinstance(value, (str, os.PathLike))
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
    if dataclasses.is_dataclass(hint):
        return isinstance(value, (dict, hint))
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a form this checker does not know: left to __post_init__


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "none"}
    if hint in names:
        return names[hint]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a list of {len(args)} {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "a table"
    return "a " + getattr(hint, "__name__", str(hint))
