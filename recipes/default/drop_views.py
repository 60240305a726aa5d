"""Write a model without the hybrid encoder's waveform and phase views (`views = False`) and, with
--erb-temporal, without the ERB decoder's temporal layers (`erb_dec_layers = 0`), as the lite has.

The shipped full's CrossDomainAttention learned almost nothing in its CPU fine-tunes (its output
layer's weights stay below 0.002: the full without the views is 46.7 dB from the full's output on
`noisy_snr0.wav`; still worth 0.18 dB SI-SDR on the real pairs, so the full keeps them), while
the views cost about a quarter of the lite's streaming hop. This keeps every other weight
(`dfn4core.model.shrink.drop_views`) and prints how far the result is from the model on a real
recording when one is given; judge the result on the real validation set before it ships.

The ERB decoder's GRU is about a fifth of the three-layer lite's torch offline pass; without it
the ERB gains see time through the encoder's GRU alone and the lite's offline pass fits in half of
DFN3's (`dfn4core.model.shrink.drop_erb_temporal`: a start for distillation, not the same
function). A model already without views takes --erb-temporal alone.

    python recipes/default/drop_views.py full -o runs/full_nv.safetensors --check ../shared/data/real/noisy_snr0.wav
    python recipes/default/drop_views.py LITE_WITH_ERB_GRU.safetensors --erb-temporal -o runs/lite_erb0.safetensors
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from dfn4core.errors import ConfigError  # noqa: E402
from dfn4core.io import read_audio, resample  # noqa: E402
from dfn4core.model.checkpoint import load_model, save_model  # noqa: E402
from dfn4core.model.shrink import drop_erb_temporal, drop_views  # noqa: E402
from dfn4core.pretrained import resolve_model  # noqa: E402
from warm_start import snr_db  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a shipped name or a checkpoint with the views")
    p.add_argument("-o", "--out", type=Path, required=True, help="the result (.pt or .safetensors)")
    p.add_argument("--check", type=Path, default=None, help="a recording: print the SNR of the new output to the old")
    p.add_argument("--erb-temporal", action="store_true", help="also drop the ERB decoder's temporal layers")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = load_model(resolve_model(args.model)).eval()
    try:
        result = drop_views(model) if model.cfg.views or not args.erb_temporal else model
        result = (drop_erb_temporal(result) if args.erb_temporal else result).eval()
    except ConfigError as err:
        raise SystemExit(f"{args.model}: {err}") from None
    if args.check is not None:
        audio, sr = read_audio(args.check)
        audio = resample(audio[:1], sr, model.cfg.dsp.sr)  # the first channel
        hops = audio.shape[-1] // model.hop_size * model.hop_size
        if hops == 0:
            raise SystemExit(f"{args.check}: shorter than one hop")
        wave = torch.from_numpy(audio[:, :hops]).float()
        with torch.no_grad():
            snr = snr_db(model(wave).wave, result(wave).wave)
        print(f"{args.check.name}: the output without them is {snr:.1f} dB from the model's")
    print(save_model(result, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
