#!/usr/bin/env bash
# Reproduce experiment=ppo_mujoco_schulman2017 (conf/experiment/ppo_mujoco_schulman2017.yaml): [SEEDS] seeds (default 5), then the report.
# Its task is Hopper-v5 unless you add env=<task>; the README's MuJoCo grid is scripts/reproduce_sac_mujoco.sh.
exec "$(dirname "$0")/reproduce.sh" ppo_mujoco_schulman2017 "$@"
