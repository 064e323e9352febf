#!/usr/bin/env bash
# Show that the working tree trains bit-identically to an earlier commit, on CPU.
#
#   bash tools/bit_identity.sh REF [OUT]      (REF: a commit, e.g. main~3; OUT: /tmp/bit-identity)
#
# Runs the same short training commands with REF (checked out into a temporary worktree) and
# with this tree: RTRRL with each estimator (RFLO, RTRL, LocalMSE through the linear cell,
# truncated BPTT), each cell (CTRNN, LRU, Identity), feedback alignment with the dutch trace,
# the frozen cell, PPO, and a resumed RTRRL run. Then `tools/compare_runs.py`
# compares metrics.csv (timings aside) and every checkpoint array. REF's runs are kept in
# OUT/ref-<commit> and reused. Exit status 0 only if every pair is identical.
set -euo pipefail
ref=$(git rev-parse --short "${1:?usage: tools/bit_identity.sh REF [OUT]}")
out=${2:-/tmp/bit-identity}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
mkdir -p "$out"

# The training command of a source tree (the CLI module moved between versions).
train() {
  local src=$1; shift
  local module=rtrrl
  [ -f "$src/rtrrl/cli.py" ] && module=rtrrl.cli
  (cd "$src" && PJRT_NPROC=1 JAX_ENABLE_COMPILATION_CACHE=false \
    "$python" -m "$module" train "$@" > /dev/null)
}

run_all() {
  local src=$1 dest=$2
  mkdir -p "$dest"
  local quick=(--eval-every 5000 --eval-envs 4)
  train "$src" --env CartPole-v1 --steps 20000 --seeds 2 "${quick[@]}" --out "$dest/rflo-ctrnn"
  train "$src" --env Acrobot-v1 --steps 10000 "${quick[@]}" --out "$dest/acrobot"
  train "$src" --env MemoryChain-bsuite --env-option memory_length=8 --estimator rtrl \
    --hidden-size 8 --steps 10000 "${quick[@]}" --out "$dest/rtrl-ctrnn"
  train "$src" --env popgym-RepeatPreviousEasy-v0 --cell lru --estimator rtrl --steps 10000 \
    "${quick[@]}" --out "$dest/rtrl-lru"
  train "$src" --env CartPole-vel --estimator local-mse --feedback alignment \
    --critic-trace dutch --num-envs 4 --steps 20000 "${quick[@]}" --out "$dest/localmse-alignment"
  train "$src" --env CartPole-vel --cell linear --steps 10000 "${quick[@]}" --out "$dest/linear"
  train "$src" --env StatelessCartPole --estimator tbptt --window 4 --steps 10000 \
    "${quick[@]}" --out "$dest/tbptt"
  train "$src" --env Pendulum-v1 --steps 10000 "${quick[@]}" --out "$dest/gaussian"
  train "$src" --env CartPole-v1 --freeze-cell --steps 10000 "${quick[@]}" --out "$dest/frozen"
  train "$src" --env CartPole-v1 --algo ppo --cell lstm --num-envs 4 --minibatches 2 \
    --steps 20000 "${quick[@]}" --out "$dest/ppo"
  # A resume: stop at 10k steps, continue to 20k in a second process (constant step sizes:
  # a decaying run keeps its budget). tests/app/test_resume.py checks PPO's resumes.
  train "$src" --env CartPole-v1 --preset paper --steps 10000 "${quick[@]}" --out "$dest/resume-rtrrl"
  train "$src" --resume "$dest/resume-rtrrl" --steps 20000
}

ref_runs=$out/ref-$ref
if [ ! -f "$ref_runs/.complete" ]; then
  rm -rf "$ref_runs" "$out/src-$ref"
  git -C "$here" worktree add --detach --force "$out/src-$ref" "$ref" > /dev/null
  echo "training with $ref ..."
  run_all "$out/src-$ref" "$ref_runs"
  git -C "$here" worktree remove --force "$out/src-$ref"
  touch "$ref_runs/.complete"
fi
new_runs=$out/new
rm -rf "$new_runs" "$out/src-new"
# A snapshot of the working tree's package, so that edits made meanwhile do not leak in.
mkdir -p "$out/src-new"
cp -r "$here/rtrrl" "$out/src-new/rtrrl"
echo "training with the working tree ..."
run_all "$out/src-new" "$new_runs"
status=0
for run in "$ref_runs"/*/; do
  "$python" "$here/tools/compare_runs.py" "$run" "$new_runs/$(basename "$run")" || status=1
done
exit $status
