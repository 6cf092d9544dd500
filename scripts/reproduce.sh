#!/usr/bin/env bash
# Reproduce an experiment preset: SEEDS seeds (default 5) as one sweep, then its report.
#   scripts/reproduce.sh PRESET [SEEDS] [OVERRIDES...]
#   scripts/reproduce_dqn_pong_mnih2015.sh 3 launcher=submitit_slurm launcher.partition=gpu
# PRESET may be a comma-separated list (one sweep over presets x seeds; name the folder
# with REPRODUCE_NAME). Results: runs/reproduce/<preset>/ (one job per seed) and
# runs/reproduce/<preset>/report/ (report.md with the published-vs-ours table, and for
# several Atari games the human-normalized aggregate; scores.csv, curves.png).
# RLEXP selects the command (default: rlexp on PATH, e.g. .venv/bin/rlexp after make).
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: $0 PRESET [SEEDS] [OVERRIDES...]" >&2
    exit 2
fi
preset=$1
shift
seeds=5
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    seeds=$1
    shift
fi
if [[ $seeds -lt 1 ]]; then
    echo "error: SEEDS must be >= 1, got $seeds" >&2
    exit 2
fi
read -r -a rlexp <<< "${RLEXP:-rlexp}"
out=${REPRODUCE_DIR:-runs/reproduce}/${REPRODUCE_NAME:-$preset}
"${rlexp[@]}" train -m "experiment=$preset" "seed=$(seq -s, 1 "$seeds")" "hydra.sweep.dir=$out" "$@"
"${rlexp[@]}" report "$out" --out "$out/report"
