#!/usr/bin/env bash
# Reproduce experiment=a2c_cartpole (conf/experiment/a2c_cartpole.yaml): [SEEDS] seeds (default 5), then the report.
exec "$(dirname "$0")/reproduce.sh" a2c_cartpole "$@"
