#!/usr/bin/env bash
# One call of a short GPU window: keep a training run going in the background and bring
# back a snapshot before the call ends (docs/training.md, "Short GPU windows").
#
#   scripts/gpu_window.sh DEADLINE_S OUT CONFIG [train options...]
#
# Starts `python -m training $TRAIN --config CONFIG --out $RUN --resume auto [options]` in
# its own session (it outlives this call while the machine stays up) unless it is already
# running or has finished, waits until DEADLINE_S seconds after this script started or
# the run's end, then writes `python -m training snapshot` of $RUN into OUT. The next
# call on the same machine finds the run still going; on a new machine, start it with
# `--set 'init_from="<joined snapshot>"'`. TRAIN is train (the default), train-style or
# train-gan; RUN defaults to /tmp/window-run, PYTHON to python3; the data sets are read
# from $IMGENHANCE_DATA_ROOT (e.g. a `pack-data` folder). Several runs share one window
# when each has its own RUN and OUT (docs/training.md, "The next GPU window").
set -euo pipefail
deadline=$1 out=$2 config=$3
shift 3
start=$(date +%s)
options=$(printf '%q ' "$@")
run=${RUN:-/tmp/window-run}
python=${PYTHON:-python3}
train=${TRAIN:-train}
case $train in train | train-style | train-gan) ;; *) echo "TRAIN=$train: train, train-style or train-gan" >&2; exit 2 ;; esac
mkdir -p "$run" "$out"
if ! pgrep -f -- "--out $run --resume" >/dev/null && [ ! -f "$run/finished" ]; then
  echo "starting $train $config in $run"
  setsid nohup bash -c "$python -m training $train --config $config --out $run --resume auto --quiet $options \
    >> $run/train.log 2>&1; touch $run/finished" >/dev/null 2>&1 &
  sleep 2
fi
while [ $(($(date +%s) - start)) -lt "$deadline" ] && [ ! -f "$run/finished" ]; do
  sleep 5
done
tail -n 20 "$run/train.log" || true
"$python" -m training snapshot --run "$run" --out "$out"
