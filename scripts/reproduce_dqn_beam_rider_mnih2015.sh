#!/usr/bin/env bash
# Reproduce experiment=dqn_beam_rider_mnih2015 (conf/experiment/dqn_beam_rider_mnih2015.yaml): [SEEDS] seeds (default 5), then the report.
exec "$(dirname "$0")/reproduce.sh" dqn_beam_rider_mnih2015 "$@"
