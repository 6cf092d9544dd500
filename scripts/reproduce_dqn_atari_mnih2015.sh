#!/usr/bin/env bash
# Reproduce Mnih et al. 2015 on the six games of the dqn_<game>_mnih2015 presets: [SEEDS]
# seeds (default 5) per game as one sweep, then the report with the per-game published-vs-ours
# table and the human-normalized aggregate over games (stratified bootstrap).
presets=dqn_beam_rider_mnih2015,dqn_breakout_mnih2015,dqn_pong_mnih2015,dqn_qbert_mnih2015,dqn_seaquest_mnih2015,dqn_space_invaders_mnih2015
REPRODUCE_NAME=${REPRODUCE_NAME:-dqn_atari_mnih2015} exec "$(dirname "$0")/reproduce.sh" "$presets" "$@"
