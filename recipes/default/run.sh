#!/usr/bin/env bash
# The default-models recipe (issue 7), end to end. Run from the repository root:
#   bash recipes/default/run.sh            # corpus into ~/dfn4-corpus, then lite training on CPU
# CORPUS=/data/dfn4-corpus bash recipes/default/run.sh   # another corpus location
set -euo pipefail
CORPUS="${CORPUS:-$HOME/dfn4-corpus}"
HOURS_SYNTH="${HOURS_SYNTH:-6}"  # the shipped models: 6 h of TTS (more is cheap for espeak-ng, slow for piper)

# 1. Packages (root; once per machine).
sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
$sudo bash recipes/default/install.sh

# 2. Corpus (resumable: rerun after an interruption; --stage runs one stage).
python recipes/default/build_corpus.py --out "$CORPUS" --hours-synth "$HOURS_SYNTH" --rirs 600 --seed 0

# recipes/default/data.toml points at ~/dfn4-corpus; elsewhere use the corpus's own data.toml.
DATA=recipes/default/data.toml
[[ "$CORPUS" != "$HOME/dfn4-corpus" ]] && DATA="$CORPUS/data.toml"

# 3. lite on CPU, in the background for hours; the same command with --resume continues it.
if [[ -f runs/lite/checkpoints/last.pt ]]; then RESUME=--resume; else RESUME=; fi
python -m dfn4cli train --variant lite --data "$DATA" --config recipes/default/train_lite.toml \
  --out runs/lite $RESUME

# 4. On a GPU: what trained the shipped full and lite (both side by side until a deadline, here
#    25 minutes; on a remote machine with an upload limit, send a pack_corpus.py pack instead):
#   bash recipes/default/gpu_run.sh "$CORPUS" runs-gpu 1500
#    or one long full run:
#   python -m dfn4cli train --device cuda --variant full --data "$DATA" \
#     --config recipes/default/train_full.toml --out runs/full [--resume]
# 5. lite distilled from full (compare with runs/lite on the valid pairs):
#   python -m dfn4cli distill --teacher runs/full/best.pt --variant lite --data "$DATA" \
#     --config recipes/default/train_lite.toml -o runs/lite-kd [--resume]
