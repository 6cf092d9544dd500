#!/usr/bin/env bash
# DPO, PPO, GRPO and RLOO compared where the gold utility is known (experiment=rlhf_arithmetic):
# per seed, one pipeline trains the base model, the SFT model and the reward model; every method
# then starts from that SFT model, the RL methods score with that reward model, and DPO learns
# from the same 20,000 preference pairs the reward model learned from (the same seed draws them).
# Each method runs at its default and at one lower-KL setting: its KL weight times 4 (PPO
# kl_coef 0.2 -> 0.8, GRPO and RLOO 0.05 -> 0.2, DPO beta 0.1 -> 0.4), no other tuning.
#   scripts/reproduce_rlhf_methods.sh [SEEDS] [OVERRIDES...]   (OVERRIDES go to every run)
# Results: runs/reproduce/rlhf_methods/pipeline/seed<k>/ (the shared stages),
# .../methods/<method>/seed<k>/ (one run each) and .../report/ (report.md: gold gain over the
# SFT model with its 95% interval and the KL to it, per method; gold_vs_kl.png).
# RLEXP selects the command (default: rlexp on PATH, e.g. .venv/bin/rlexp after make).
set -euo pipefail
seeds=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    seeds=$1
    shift
fi
if [[ $seeds -lt 1 ]]; then
    echo "error: SEEDS must be >= 1, got $seeds" >&2
    exit 2
fi
read -r -a rlexp <<< "${RLEXP:-rlexp}"
out=${REPRODUCE_DIR:-runs/reproduce}/${REPRODUCE_NAME:-rlhf_methods}
declare -A methods=(
    [ppo]="algo=rlhf_ppo"                 [ppo_kl4x]="algo=rlhf_ppo algo.kl_coef=0.8"
    [grpo]="algo=grpo"                    [grpo_kl4x]="algo=grpo algo.kl_coef=0.2"
    [rloo]="algo=rloo"                    [rloo_kl4x]="algo=rloo algo.kl_coef=0.2"
    [dpo]="algo=dpo"                      [dpo_kl4x]="algo=dpo algo.beta=0.4"
)
for seed in $(seq 1 "$seeds"); do
    base=$out/pipeline/seed$seed
    if [[ ! -f $base/pipeline.json ]]; then
        "${rlexp[@]}" train experiment=rlhf_arithmetic "seed=$seed" "hydra.run.dir=$base" "$@"
    fi
    for name in ppo ppo_kl4x grpo grpo_kl4x rloo rloo_kl4x dpo dpo_kl4x; do
        run=$out/methods/$name/seed$seed
        [[ -f $run/summary.json ]] && continue
        read -r -a args <<< "${methods[$name]}"
        reward=()
        [[ $name != dpo* ]] && reward=("reward.from_run=$base/3_reward_model")
        "${rlexp[@]}" train "${args[@]}" "seed=$seed" "model.from_run=$base/2_sft" "${reward[@]}" \
            "hydra.run.dir=$run" "$@"
    done
done
"${rlexp[@]}" report "$out/methods" --out "$out/report"
