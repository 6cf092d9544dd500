#!/usr/bin/env bash
# Reproduce experiment=sac_mujoco_tianshou (conf/experiment/sac_mujoco_tianshou.yaml): [SEEDS] seeds (default 5), then the report.
exec "$(dirname "$0")/reproduce.sh" sac_mujoco_tianshou "$@"
