#!/usr/bin/env bash
# AlphaZero on Connect Four (issue 14's targets): train the CPU preset (algo=alphazero
# env=connect_four, ~30 minutes on 2 cores), then evaluate it with 200 simulations per move,
# half the games as each colour, against random play, the same search driven by an untrained
# network, and OpenSpiel's MCTSBot with 2,000 random-rollout simulations.
#   scripts/reproduce_alphazero_connect_four.sh [SEED] [GAMES] [OVERRIDES...]
# Targets: >= 90% wins against random, >= 70% against the untrained search, >= 50% against
# MCTSBot(2000). Results: runs/reproduce/alphazero_connect_four_seed<SEED>/ and its evals.jsonl.
# RLEXP selects the command (default: rlexp on PATH, e.g. .venv/bin/rlexp after make).
set -euo pipefail
seed=${1:-1}
games=${2:-200}
shift $(( $# > 2 ? 2 : $# ))
read -r -a rlexp <<< "${RLEXP:-rlexp}"
out=${REPRODUCE_DIR:-runs/reproduce}/alphazero_connect_four_seed$seed
"${rlexp[@]}" train algo=alphazero env=connect_four "seed=$seed" "hydra.run.dir=$out" "$@"
for opponent in random untrained mcts; do
    "${rlexp[@]}" eval "$out" --opponent "$opponent" --games "$games" --simulations 200 --mcts-simulations 2000
done
