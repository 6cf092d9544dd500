#!/usr/bin/env bash
# Reproduce experiment=ppo_pendulum (conf/experiment/ppo_pendulum.yaml): [SEEDS] seeds (default 5), then the report.
exec "$(dirname "$0")/reproduce.sh" ppo_pendulum "$@"
