#!/usr/bin/env bash
# The Atari 100k benchmark (Kaiser et al. 2020): the 26 games x SEEDS seeds (default 5) of a data-efficient
# agent, as one sweep, then its report: per-game scores beside the published ones, and the human-normalized
# IQM, mean and median over the games with 95% stratified bootstrap intervals beside Agarwal et al. 2021's.
#   scripts/reproduce_atari100k.sh [SEEDS] [OVERRIDES...]                  # DER (experiment=der_atari100k)
#   PRESET=drq_eps_atari100k scripts/reproduce_atari100k.sh 5 launcher=joblib launcher.n_jobs=16
# Results: runs/reproduce/<preset>_26games/ and its report/. One DER run takes about an hour on 2 CPU
# cores (the README has the measured times): 130 runs belong on a bigger box or a cluster (launcher=...).
set -euo pipefail
preset=${PRESET:-der_atari100k}
REPRODUCE_NAME=${preset}_26games exec "$(dirname "$0")/reproduce.sh" "$preset" "$@" sweep=atari100k
