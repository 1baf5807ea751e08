#!/usr/bin/env bash
# Carry a long plan's state across machines that keep nothing but the git repository.
#
# A plan like `--plan=scale_trend` needs more hours of 2 cores than one machine session has. Its
# runs resume from their model dirs under the gitignored runs/: config.json, history.json and
# the latest checkpoint while a run trains; once trained, the model and its records
# (model.keras, summary.json, reproduce_train.json, ...) that the evaluation and the independent
# attack read. This script force-adds exactly those files of each run not yet done (no logs/,
# no older checkpoints: about 1-2 MB per WRN-10-1 run) and appends one line per run to
# <work_dir>/carry_log.tsv: when, which step, on which CPU, under what load. A run is done when
# the runner has kept it under the results dir with its independent attack; its carried state
# then leaves git's index (the kept results are what is committed of it).
#
#   bash scripts/carry_runs.sh [WORK_DIR [RESULTS_DIR]]   # default runs/scale_trend results
#   bash scripts/carry_runs.sh WORK_DIR started            # the runner (re)started: a line per run
#   then: git commit
#
# On the next machine: rerun the same `python -m nfi_tf.experiments reproduce --plan=...
# --work_dir=WORK_DIR` command; every run continues from its carried state.
set -euo pipefail
cd "$(dirname "$0")/.."
work_dir="${1:-runs/scale_trend}"
mark=""
results_dir="results"
if [ "${2:-}" = started ]; then mark=started; elif [ -n "${2:-}" ]; then results_dir="$2"; fi
[ -d "$work_dir" ] || { echo "carry_runs: no work dir $work_dir" >&2; exit 2; }
log="$work_dir/carry_log.tsv"
[ -f "$log" ] || printf 'utc\trun\tstep\tcpu\tload_1min\tstate\n' > "$log"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
# "AMD EPYC" names both an AVX2-only part and an AVX-512 one (2.4x apart per epoch here), so the
# family/model and the widest vector unit go beside it.
fam="$(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
mod="$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
if grep -qm1 avx512f /proc/cpuinfo; then vec=avx512; else vec=avx2; fi
cpu="$cpu (family $fam model $mod, $vec)"
load="$(cut -d' ' -f1 /proc/loadavg)"
line() {  # run, step, state
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$1" "$2" "$cpu" "$load" "$3" >> "$log"
}
for run_dir in "$work_dir"/*/*/; do
  run_dir="${run_dir%/}"
  [ -f "$run_dir/config.json" ] || continue
  name="${run_dir#"$work_dir"/}"
  index="$run_dir/checkpoints/checkpoint"
  latest="$(sed -n 's/^model_checkpoint_path: "\(.*\)"$/\1/p' "$index" 2>/dev/null || true)"
  step="${latest#ckpt-}"
  if [ "$mark" = started ]; then
    # A finished run is not restarted by the runner (it skips kept results), so no line for it.
    [ -f "$results_dir/$name/independent_attack.json" ] || line "$name" "${step:-0}" started
    continue
  fi
  if [ -f "$results_dir/$name/independent_attack.json" ]; then
    if [ -n "$(git ls-files -- "$run_dir")" ]; then  # once: the line says when it was done
      git rm -r -q --cached -f "$run_dir" >/dev/null
      line "$name" "${step:--}" done
    fi
    continue
  fi
  [ -n "$latest" ] || continue  # nothing to carry before the first checkpoint
  # Only the latest checkpoint: older ones leave git's index (they stay in its history). -f: a
  # carry not yet committed left staged content that differs from the file and HEAD, and git
  # refuses to unstage that without it (only the index is touched).
  git rm -r -q --cached -f --ignore-unmatch "$run_dir/checkpoints" >/dev/null
  files=("$index" "$run_dir/checkpoints/$latest".*)
  for f in "$run_dir"/*; do [ -f "$f" ] && files+=("$f"); done  # the run's own files, not logs/
  git add -f "${files[@]}"
  line "$name" "$step" "$([ -f "$run_dir/model.keras" ] && echo trained || echo training)"
done
git add -f "$log"
git status --short -- "$work_dir"
