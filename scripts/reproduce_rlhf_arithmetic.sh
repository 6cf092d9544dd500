#!/usr/bin/env bash
# Reproduce experiment=rlhf_arithmetic (conf/experiment/rlhf_arithmetic.yaml): the whole pipeline on [SEEDS] seeds
# (default 3), then the report: the gold gain over the SFT model with its 95% interval, and gold_vs_kl.png.
seeds=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    seeds=$1
    shift
fi
exec "$(dirname "$0")/reproduce.sh" rlhf_arithmetic "$seeds" "$@"
