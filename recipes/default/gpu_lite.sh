#!/usr/bin/env bash
# Distil the lite from the shipped full on one lent GPU until a deadline (issue 12; docs/models.md,
# "The lite: where it stands"): the teacher-only distillation of train_lite_distill_gpu.toml.
#
#   bash recipes/default/gpu_lite.sh PACK RUNS SECONDS [INIT]
#
# PACK: a pack of the distillation data (pack_corpus.py pack-data --data data_real_distill.toml),
# RUNS: output folder (on the device machine: under $OUT), SECONDS: wall time from now by which the
# run must have ended, INIT: the lite's starting weights (default: progress/lite_distilled.safetensors).
# A probe of PROBE_STEPS steps measures the step rate, then the run gets as many steps as fit, so
# that its cosine ends in time. Every checkpoint is then written as weights only
# (RUNS/weights/step_*.safetensors, about 4 MB each; the run's own checkpoints hold the optimizer
# too and are removed) to be scored at home on the real pairs and averaged.
# DEVICE, TEACHER (default: the shipped full), CONFIG and PROBE_STEPS may be set in the environment
# (a CPU dry run: DEVICE=cpu).
set -euo pipefail
PACK=$1 RUNS=$2 SECONDS_LEFT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
INIT=${4:-$HERE/progress/lite_distilled.safetensors}
END=$(( $(date +%s) + SECONDS_LEFT ))
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
TEACHER=${TEACHER:-full}
CONFIG=${CONFIG:-$HERE/train_lite_distill_gpu.toml}
PROBE_STEPS=${PROBE_STEPS:-150}
MARGIN_S=30   # final checkpoint, weights export, exit
mkdir -p "$RUNS"

distill() {  # out steps
  $PY -m dfn4cli distill --teacher "$TEACHER" --init "$INIT" --data "$PACK/data.toml" --config "$CONFIG" \
    --out "$1" --steps "$2" --device "$DEVICE"
}

probe_start=$(date +%s)
distill "$RUNS/probe" "$PROBE_STEPS" > "$RUNS/probe.log" 2>&1 || { tail -20 "$RUNS/probe.log"; exit 1; }
probe_wall=$(( $(date +%s) - probe_start ))
# Steps per second between the first and the last line of metrics.jsonl; the rest of the probe's
# wall time is start-up (model, teacher, data workers), paid again by the run.
read -r RATE STARTUP < <($PY - "$RUNS/probe/metrics.jsonl" "$probe_wall" "$PROBE_STEPS" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '"time"' in line and '"step"' in line]
if len(rows) < 2 or rows[-1]["step"] == rows[0]["step"]:
    sys.exit("gpu_lite.sh: the probe logged too few steps to measure a rate (raise PROBE_STEPS or lower log_every)")
rate = (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["time"] - rows[0]["time"])
print(f"{rate:.4f} {max(0.0, float(sys.argv[2]) - int(sys.argv[3]) / rate):.1f}")
PYEOF
)
STEPS=$($PY -c "print(max(1, int($RATE * ($END - $(date +%s) - $MARGIN_S - $STARTUP))))")
echo "probe: $RATE steps/s, start-up ${STARTUP} s -> $STEPS steps"
rm -rf "$RUNS/probe"
distill "$RUNS/lite" "$STEPS" > "$RUNS/lite.log" 2>&1 || { tail -20 "$RUNS/lite.log"; exit 1; }

# Weights only: the run's checkpoints carry the optimizer state (three times the size).
$PY - "$RUNS" <<'PYEOF'
import sys
from pathlib import Path
from dfn4core.model.checkpoint import load_model, save_model
runs = Path(sys.argv[1])
(runs / "weights").mkdir(exist_ok=True)
for ckpt in sorted((runs / "lite" / "checkpoints").glob("step_*.pt")):
    save_model(load_model(ckpt), runs / "weights" / f"{ckpt.stem}.safetensors")
    ckpt.unlink()
(runs / "lite" / "checkpoints" / "last.pt").unlink(missing_ok=True)
print("weights:", ", ".join(p.name for p in sorted((runs / "weights").glob("*.safetensors"))))
PYEOF
