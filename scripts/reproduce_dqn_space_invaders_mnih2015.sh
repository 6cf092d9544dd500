#!/usr/bin/env bash
# Reproduce experiment=dqn_space_invaders_mnih2015 (conf/experiment/dqn_space_invaders_mnih2015.yaml): [SEEDS] seeds (default 5), then the report.
exec "$(dirname "$0")/reproduce.sh" dqn_space_invaders_mnih2015 "$@"
