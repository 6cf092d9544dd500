#!/usr/bin/env bash
# The MuJoCo grid of the README, each a sweep with its report (published-vs-ours table, IQM with bootstrap CIs, curves):
#   SAC (experiment=sac_mujoco_haarnoja2018) at 300k agent steps on Hopper, HalfCheetah and Walker2d, SEEDS seeds each
#   (default 3): against Tianshou's SAC at 300k; TD3 (td3_mujoco_fujimoto2018) the same, against Tianshou's TD3;
#   PPO (ppo_mujoco_schulman2017) on Hopper at 1M steps, against CleanRL's PPO.
#   scripts/reproduce_sac_mujoco.sh [SEEDS] [OVERRIDES...]     e.g. 3 launcher=joblib launcher.n_jobs=9
# Results: runs/reproduce/{sac,td3}_mujoco_300k/ and runs/reproduce/ppo_hopper_1m/. On 2 CPU cores one 300k SAC
# run takes about an hour (the README has the measured times): run the grid on a bigger box or across sessions.
set -euo pipefail
here=$(dirname "$0")
seeds=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    seeds=$1
    shift
fi
tasks=env=hopper,halfcheetah,walker2d
REPRODUCE_NAME=sac_mujoco_300k "$here/reproduce.sh" sac_mujoco_haarnoja2018 "$seeds" "$tasks" total_steps=300000 "$@"
REPRODUCE_NAME=td3_mujoco_300k "$here/reproduce.sh" td3_mujoco_fujimoto2018 "$seeds" "$tasks" total_steps=300000 "$@"
REPRODUCE_NAME=ppo_hopper_1m "$here/reproduce.sh" ppo_mujoco_schulman2017 "$seeds" env=hopper "$@"
