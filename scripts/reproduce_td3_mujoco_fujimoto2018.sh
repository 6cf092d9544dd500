#!/usr/bin/env bash
# Reproduce experiment=td3_mujoco_fujimoto2018 (conf/experiment/td3_mujoco_fujimoto2018.yaml): [SEEDS] seeds (default 5), then the report.
# Its task is Hopper-v5 unless you add env=<task>; the README's MuJoCo grid is scripts/reproduce_sac_mujoco.sh.
exec "$(dirname "$0")/reproduce.sh" td3_mujoco_fujimoto2018 "$@"
