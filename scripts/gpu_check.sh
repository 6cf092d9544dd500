#!/usr/bin/env bash
# The GPU check (issue 16): on a machine with an NVIDIA GPU, in at most ~10 minutes, the CUDA tests, every bench
# with --device cuda (SB3 on the same GPU), and PPO Pong with 16 envs for its agent steps/s; one table.
#
#   scripts/gpu_check.sh [OUT_DIR]        # default: $OUT (the device tool's folder) or runs/gpu_check
#
# PYTHON picks the interpreter (default: .venv/bin/python if it exists, else python3); it needs rlexp installed with
# a CUDA build of torch, and the bench extra (stable-baselines3, trl) for the peers' columns. Each step has its own
# time limit, so one slow step cannot eat the others' time; a step that fails or runs out is marked in the table and
# the check goes on. Results: OUT_DIR/gpu_check.md (the table, with each bench's summary lines) and
# OUT_DIR/gpu_check.log (everything printed). Put the numbers, with the card's name, in the README.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-runs/gpu_check}}
mkdir -p "$out"
if [[ -n ${PYTHON:-} ]]; then py=$PYTHON; elif [[ -x .venv/bin/python ]]; then py=.venv/bin/python; else py=python3; fi
table=$out/gpu_check.md
log=$out/gpu_check.log
: > "$log"
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PONG_ENVS=${PONG_ENVS:-16}
scratch=$(mktemp -d)  # run directories (only the table and the log go to OUT_DIR)
trap 'rm -rf "$scratch"' EXIT

{
    echo "# rlexp GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo '```'
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi: not found"
    "$py" -c "import os, torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, '|', \
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device', '|', os.cpu_count(), 'CPU cores')" 2>&1
    echo '```'
    echo
    echo "| step | status | seconds |"
    echo "|---|---|---|"
} > "$table"
summaries=()

# step NAME LIMIT_S LINES COMMAND...: run it with a time limit; keep its last LINES lines for the table
step() {
    local name=$1 limit=$2 lines=$3
    shift 3
    local started=$SECONDS part="$out/.step_$name.txt"
    echo "== $name: $*" | tee -a "$log"
    timeout --signal=INT --kill-after=20 "$limit" "$@" > "$part" 2>&1
    local rc=$?
    cat "$part" >> "$log"
    local status="ok"
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then status="timed out after ${limit} s"; elif [[ $rc -ne 0 ]]; then status="failed (exit $rc)"; fi
    echo "| $name | $status | $((SECONDS - started)) |" >> "$table"
    summaries+=("### $name" "" '```' "$(tail -n "$lines" "$part")" '```' "")
    rm -f "$part"
}

step cuda_tests 120 5 "$py" -m pytest -q -x tests/test_cuda.py
step dqn_cartpole 100 8 "$py" scripts/bench_dqn_cartpole.py --device cuda --steps 20000
step dqn_pong 90 7 "$py" scripts/bench_dqn_atari.py --device cuda --steps 6000
step ppo_cartpole_pong 130 18 "$py" scripts/bench_ppo.py --device cuda --envs cartpole pong --steps 16384
step sac_hopper 150 8 "$py" scripts/bench_sac.py --device cuda --steps 4000 --learning-starts 1000
step alphazero 50 8 "$py" scripts/bench_alphazero.py --device cuda --openspiel-games 1
step rlhf 60 16 "$py" scripts/bench_rlhf.py --device cuda --hidden 1024 --layers 12 --rollouts 8
step "ppo_pong_${PONG_ENVS}envs" 50 3 "$py" -m rlexp train experiment=ppo_pong_schulman2017 device=cuda \
    "env.num_envs=$PONG_ENVS" total_steps=65536 eval_interval_steps=0 eval_episodes=1 checkpoint_interval_steps=0 \
    logger=none logger.progress=lines "hydra.run.dir=$scratch/ppo_pong_run"

{
    echo
    echo "PPO Pong target: >= 8,000 agent steps/s with 16+ envs on one H100/H200-class GPU and 16 cores (the 'done:'"
    echo "run's agent steps over its train time, from its summary.json)."
    "$py" -c "import json,sys; s=json.load(open('$scratch/ppo_pong_run/summary.json')); \
print(f\"PPO Pong {s['steps']} agent steps, {s['steps'] / s['train_wall_s']:.0f} agent steps/s (train time)\")" 2>/dev/null \
        || echo "PPO Pong: no summary (see the log)"
    echo
    printf '%s\n' "${summaries[@]}"
} >> "$table"
echo "wrote $table and $log"
