#!/usr/bin/env bash
# Reproduce experiment=reinforce_cartpole (conf/experiment/reinforce_cartpole.yaml): [SEEDS] seeds (default 5), then the report.
exec "$(dirname "$0")/reproduce.sh" reinforce_cartpole "$@"
