#!/usr/bin/env bash
# Carry a long plan's training state across machines that keep nothing but the git repository.
#
# A plan like `--plan=scale_trend` needs more hours of 2 cores than one machine session has. Its
# runs resume from their model dirs (config.json, history.json, the latest checkpoint), which
# live under the gitignored runs/. This script force-adds exactly those files of each run that
# is still training (no logs/, no older checkpoints: about 1 MB per WRN-10-1 run) and appends
# one line per run to <work_dir>/carry_log.tsv: when, which step, on which CPU, under what
# load, so the training time of a run split over sessions can be summed honestly. A run whose
# model.keras exists is finished: its small outputs are kept under results/ by the runner, and
# its carried state is dropped from git here.
#
#   bash scripts/carry_runs.sh [WORK_DIR]          # default runs/scale_trend; then git commit
#   bash scripts/carry_runs.sh WORK_DIR started    # when the runner (re)starts: a 'started' line
#
# On the next machine: rerun the same `python -m nfi_tf.experiments reproduce --plan=...
# --work_dir=WORK_DIR` command; every run continues from its carried checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
work_dir="${1:-runs/scale_trend}"
[ -d "$work_dir" ] || { echo "carry_runs: no work dir $work_dir" >&2; exit 2; }
log="$work_dir/carry_log.tsv"
[ -f "$log" ] || printf 'utc\trun\tstep\tcpu\tload_1min\tstate\n' > "$log"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
load="$(cut -d' ' -f1 /proc/loadavg)"
mark="${2:-}"
for run_dir in "$work_dir"/*/*/; do
  run_dir="${run_dir%/}"
  [ -f "$run_dir/config.json" ] || continue
  name="${run_dir#"$work_dir"/}"
  if [ "$mark" = started ]; then
    step="$(sed -n 's/^model_checkpoint_path: "ckpt-\(.*\)"$/\1/p' "$run_dir/checkpoints/checkpoint" 2>/dev/null || true)"
    printf '%s\t%s\t%s\t%s\t%s\tstarted\n' "$(date -u +%FT%TZ)" "$name" "${step:-0}" "$cpu" "$load" >> "$log"
    continue
  fi
  if [ -f "$run_dir/model.keras" ]; then
    git rm -r -q --cached --ignore-unmatch "$run_dir" >/dev/null
    printf '%s\t%s\t-\t%s\t%s\tfinished\n' "$(date -u +%FT%TZ)" "$name" "$cpu" "$load" >> "$log"
    continue
  fi
  index="$run_dir/checkpoints/checkpoint"
  [ -f "$index" ] || continue  # nothing to carry before the first checkpoint
  latest="$(sed -n 's/^model_checkpoint_path: "\(.*\)"$/\1/p' "$index")"
  # Only the latest checkpoint: older ones leave git's index (they stay in its history).
  git rm -r -q --cached --ignore-unmatch "$run_dir/checkpoints" >/dev/null
  files=("$run_dir/config.json" "$index" "$run_dir/checkpoints/$latest".*)
  [ -f "$run_dir/history.json" ] && files+=("$run_dir/history.json")
  git add -f "${files[@]}"
  printf '%s\t%s\t%s\t%s\t%s\ttraining\n' "$(date -u +%FT%TZ)" "$name" "${latest#ckpt-}" "$cpu" \
    "$load" >> "$log"
done
git add -f "$log"
git status --short -- "$work_dir"
