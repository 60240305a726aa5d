#!/usr/bin/env bash
# Train full and lite side by side on one GPU until a deadline (recipes/default, docs/models.md).
#
#   bash recipes/default/gpu_run.sh PACK RUNS SECONDS
#
# PACK: a corpus pack (pack_corpus.py pack; its generated noises are remade here) or a corpus folder
# built by build_corpus.py (either holds the data.toml that is used), RUNS: output
# folder, SECONDS: wall time from now at which both runs must have ended. A short probe (both
# models, 150 steps) measures the step rates side by side, then each run is started with as many
# steps as fit, so its cosine schedule ends in time. The runs go on in the background (setsid);
# RUNS/<variant>/checkpoints/last.pt resumes either one: `dfn4 train ... --resume`.
set -euo pipefail
PACK=$1 RUNS=$2 SECONDS_LEFT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
END=$(( $(date +%s) + SECONDS_LEFT ))
PY=${PYTHON:-python3}
PROBE_STEPS=150
MARGIN_S=40   # final checkpoint and exit

# A pack (pack_corpus.py) gets its generated noises back; a whole corpus folder is used as it is.
if [ -f "$PACK/train_noise.csv" ]; then $PY "$HERE/pack_corpus.py" unpack "$PACK"; fi
mkdir -p "$RUNS"

launch() {  # variant out steps
  setsid nohup $PY -m dfn4cli train --data "$PACK/data.toml" --config "$HERE/train_$1_gpu_short.toml" \
    --out "$2" --steps "$3" > "$2.log" 2>&1 < /dev/null &
  echo $! > "$2.pid"
}
step_time() {  # metrics.jsonl step -> time of that record (empty while absent)
  [ -f "$1/metrics.jsonl" ] && $PY -c "import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r['step'] == int(sys.argv[2]): print(r['time']); break" "$1/metrics.jsonl" "$2" || true
}

for v in full lite; do launch $v "$RUNS/probe-$v" 100000; done
deadline=$(( $(date +%s) + 240 ))
while :; do
  done_all=1
  for v in full lite; do [ -n "$(step_time "$RUNS/probe-$v" $PROBE_STEPS)" ] || done_all=0; done
  [ $done_all = 1 ] && break
  if [ "$(date +%s)" -gt $deadline ]; then echo "probe did not reach step $PROBE_STEPS:"; tail -5 "$RUNS"/probe-*.log; exit 1; fi
  sleep 3
done
declare -A STEPS
for v in full lite; do
  t50=$(step_time "$RUNS/probe-$v" 50); t150=$(step_time "$RUNS/probe-$v" $PROBE_STEPS)
  kill -TERM -- -"$(cat "$RUNS/probe-$v.pid")" 2>/dev/null || true
  rate=$($PY -c "print(100 / ($t150 - $t50))")
  STEPS[$v]=$($PY -c "print(int($rate * ($END - $(date +%s) - $MARGIN_S - 25)))")  # 25 s: start-up
  echo "probe $v: $rate steps/s side by side -> ${STEPS[$v]} steps"
done
sleep 5
for v in full lite; do launch $v "$RUNS/$v" "${STEPS[$v]}"; done
echo "started: full ${STEPS[full]} steps, lite ${STEPS[lite]} steps; logs $RUNS/{full,lite}.log"
