#!/usr/bin/env bash
# Reproduce experiment=sac_mujoco_haarnoja2018 (conf/experiment/sac_mujoco_haarnoja2018.yaml): [SEEDS] seeds (default 5), then the report.
# Its task is Hopper-v5 unless you add env=<task>; the README's MuJoCo grid is scripts/reproduce_sac_mujoco.sh.
exec "$(dirname "$0")/reproduce.sh" sac_mujoco_haarnoja2018 "$@"
