#!/usr/bin/env bash
# Keep a reproduction run's record in the repository, so that anyone with a clone can recompute its
# numbers with `rlexp report` (the run directory itself, with its checkpoints, stays on the machine
# that ran it). It copies the small files `rlexp report` and `rlexp eval` read and nothing else:
# no checkpoints, videos or W&B files.
#   scripts/keep_run.sh RUN_DIR results/<preset>/<name>      e.g. results/der_atari100k/road_runner_s1
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: scripts/keep_run.sh RUN_DIR DEST (DEST: results/<preset>/<name>)" >&2
    exit 2
fi
src=$1 dest=$2
if [ ! -f "$src/config.yaml" ] || [ ! -f "$src/metrics.jsonl" ]; then
    echo "keep_run.sh: $src is not a run directory (it needs config.yaml and metrics.jsonl)" >&2
    exit 2
fi
if [ -e "$dest" ]; then
    echo "keep_run.sh: $dest already exists; pick another name or remove it first" >&2
    exit 2
fi
mkdir -p "$dest"
# summary.json: present once the run reached its end (`rlexp report` marks runs without it unfinished)
for f in config.yaml overrides.yaml command.txt metrics.jsonl summary.json evals.jsonl; do
    if [ -f "$src/$f" ]; then cp "$src/$f" "$dest/"; fi
done
echo "kept $(ls "$dest" | tr '\n' ' ')in $dest"
