#!/usr/bin/env bash
# Run screening candidates one after another, each to 100k steps (on seed 0 unless a third field names the
# seed) with one TensorFlow thread; run it again after an interruption: a finished run is skipped, an
# unfinished one resumes from its checkpoint.
#   usage: RUNS=/work/runs/screen benchmarks/screening/chain.sh Hopper-v5:tqc Walker2d-v5:crossq:2 ...
# Start it from a git worktree pinned to a commit, so that edits to the checkout do not reach a running job.
set -u
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
RUNS=${RUNS:-runs/screen}
for item in "$@"; do
  IFS=: read -r env cand seed <<< "$item"; seed=${seed:-0}; dir=$RUNS/$env/$cand/seed$seed
  if $PY -c "import sys; from pathlib import Path; from keras_sac.io.run_files import finished_run; \
sys.exit(finished_run(Path('$dir')) is None)"; then
    continue
  fi
  if [[ -d $dir/checkpoints ]]; then
    $PY train.py --resume "$dir" --no-progress >> "$dir.log" 2>&1
  else
    mkdir -p "$(dirname "$dir")"
    $PY train.py --env "$env" --config "benchmarks/screening/$cand.yaml" --total-timesteps 100000 --seed "$seed" \
      --run-dir "$dir" --no-progress --set checkpoint_freq=5000 > "$dir.log" 2>&1
  fi
done
