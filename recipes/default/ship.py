"""Put a trained model into the package: dfn4core/pretrained/<name>.safetensors + models.json entry.

    python recipes/default/ship.py runs/lite/best.pt --name lite --default \
        --info corpus=recipes/default --info "trained=lite, 4000 steps, 2-core CPU"

The checkpoint (a training or model checkpoint) is loaded with `load_model`, written back as a
weights-only `.safetensors` file, and listed in models.json with its SHA-256, its variant, and
the training step and configs read from a training checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's dfn4core: the weights go into it

from dfn4core.config import ModelConfig  # noqa: E402
from dfn4core.model.checkpoint import load_model, read_checkpoint, save_model  # noqa: E402
from dfn4core.pretrained import KNOWN_NAMES, MANIFEST, file_sha256  # noqa: E402


def training_info(ckpt: dict) -> dict:
    """What a training checkpoint says about its run (step, configs); {} for a model checkpoint."""
    train = ckpt.get("train")
    if not isinstance(train, dict):
        return {}
    info = {"step": int(train.get("step", 0))}
    for key in ("train_config", "data_config", "loss_config"):
        if key in train:
            info[key] = train[key]
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True, choices=KNOWN_NAMES)
    p.add_argument("--default", action="store_true", help="make it the model `dfn4 enhance` uses without --model")
    p.add_argument("--info", action="append", default=[], metavar="KEY=VALUE", help="extra facts for models.json")
    args = p.parse_args()

    model = load_model(args.checkpoint)
    # The variant's config, up to the temporal blocks (a GRU model of the variant's sizes may ship).
    variant = dataclasses.replace(ModelConfig.variant(args.name), temporal=model.cfg.temporal)
    if model.cfg != variant:
        raise SystemExit(f"{args.checkpoint} does not have the {args.name!r} config")
    out = save_model(model, MANIFEST.with_name(f"{args.name}.safetensors"))
    again = load_model(out)  # the shipped file must give the same model back
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        if not torch.equal(a, b):
            raise SystemExit(f"{out}: {k} differs after the round trip")

    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {"default": None, "models": {}}
    info = training_info(read_checkpoint(args.checkpoint))
    info["parameters"] = sum(t.numel() for t in model.parameters())
    info.update(dict(kv.split("=", 1) for kv in args.info))
    manifest["models"][args.name] = {
        "file": out.name, "sha256": file_sha256(out), "variant": args.name, "info": info,
    }  # fmt: skip
    if args.default or manifest["default"] is None:
        manifest["default"] = args.name
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"{out} ({out.stat().st_size / 1e6:.2f} MB), default: {manifest['default']}")


if __name__ == "__main__":
    main()
