#!/usr/bin/env bash
# Reproduce experiment=ppo_pong_schulman2017 (conf/experiment/ppo_pong_schulman2017.yaml): [SEEDS] seeds (default 5), then the report.
exec "$(dirname "$0")/reproduce.sh" ppo_pong_schulman2017 "$@"
