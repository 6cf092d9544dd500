#!/usr/bin/env bash
# Reproduce experiment=der_atari100k (conf/experiment/der_atari100k.yaml) on one game, named as an override:
#   scripts/reproduce_der_atari100k.sh [SEEDS] env.game=boxing      (SEEDS default 5; then the report)
# The 26-game benchmark is scripts/reproduce_atari100k.sh.
exec "$(dirname "$0")/reproduce.sh" der_atari100k "$@"
