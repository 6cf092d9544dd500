#!/usr/bin/env bash
# Reproduce experiment=ppo_cartpole (conf/experiment/ppo_cartpole.yaml): [SEEDS] seeds (default 5), then the report.
exec "$(dirname "$0")/reproduce.sh" ppo_cartpole "$@"
