#!/usr/bin/env bash
# Reproduce experiment=alphazero_connect_four_silver2018 (conf/experiment/alphazero_connect_four_silver2018.yaml,
# the GPU preset): [SEEDS] seeds (default 5), then the report (win-rate curves with CI bands).
# The CPU preset's targets against random, untrained search and MCTSBot: scripts/reproduce_alphazero_connect_four.sh
exec "$(dirname "$0")/reproduce.sh" alphazero_connect_four_silver2018 "$@"
