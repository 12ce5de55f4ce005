#!/usr/bin/env bash
# One call of a short GPU window that trains several runs side by side on one GPU
# (docs/training.md, "The next GPU window").
#
#   scripts/gpu_plan.sh DEADLINE_S OUT PLAN
#
# PLAN holds one run per line, `name train-command config [options...]` (# starts a
# comment; options are shell words, quotes allowed). Each run goes through
# scripts/gpu_window.sh with RUN=$RUNS/<name> and OUT/<name>, all in parallel, with the
# same deadline: a run that is going already is left alone, a finished one is not
# started again, and every run is snapshotted into OUT/<name> before the call ends.
# Starting weights that came up as `snapshot` parts (INITS/<name>/best16.part*) are
# joined into INITS/<name>.pt first, for options such as
# --set 'init_from=".gpu/init/style-named.pt"'. RUNS defaults to /tmp/window-runs, INITS
# to .gpu/init, PYTHON to python3.
set -euo pipefail
deadline=$1 out=$2 plan=$3
python=${PYTHON:-python3}
runs=${RUNS:-/tmp/window-runs}
inits=${INITS:-.gpu/init}
here=$(cd "$(dirname "$0")" && pwd)
"$python" -m training check-plan "$plan" >/dev/null
if [ -d "$inits" ]; then
  for parts in "$inits"/*/; do
    name=$(basename "$parts")
    if [ -f "$parts/best16.part0" ] && [ ! -f "$inits/$name.pt" ]; then
      "$python" -m training join-parts --parts "$parts" --out "$inits/$name.pt"
    fi
  done
fi
mkdir -p "$out"
pids=()
while read -r line; do
  # shell words, with # starting a comment only at the start of a word (as check-plan reads them)
  eval "words=($line
)"
  [ ${#words[@]} -eq 0 ] && continue
  name=${words[0]} train=${words[1]} config=${words[2]}
  RUN="$runs/$name" TRAIN="$train" PYTHON="$python" \
    bash "$here/gpu_window.sh" "$deadline" "$out/$name" "$config" "${words[@]:3}" > "$out/$name.call.log" 2>&1 &
  pids+=($!)
done < "$plan"
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
for log in "$out"/*.call.log; do
  echo "== $log"
  tail -n 8 "$log"
done
exit $status
