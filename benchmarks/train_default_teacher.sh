#!/usr/bin/env bash
# Reproduce the shipped default teacher (compressbench/weights/teacher-vox256.pt and .json):
# train FOMM's vox-256 keypoint detector supervised (landmarks + jacobians) on synthetic faces,
# then export the best weights as float16 with their error measured on 256 held-out test frames.
# Equivariance terms are off: the labels make them unnecessary here and they double the cost.
# The shipped weights are the checkpoint written after step 600 of this 800-step run (see the JSON record);
# stop the run once that checkpoint is written: it then holds exactly the shipped weights.
# An interrupted run continues bit-identically with the same train command plus --resume "$CHECKPOINT"
# (--checkpoint-every 10 loses less work to an interruption and changes no result).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
CHECKPOINT=${CHECKPOINT:-/tmp/teacher-vox256-train.pt}

"$BIN/compressbench" teacher train --steps 800 --batch 16 --lr 0.0005 --seed 0 --data synthetic --device cpu \
  --val-frames 64 --val-every 100 --lr-schedule cosine --equivariance-value 0 --equivariance-jacobian 0 \
  --out "$CHECKPOINT"
"$BIN/compressbench" teacher export "$CHECKPOINT" --out compressbench/weights/teacher-vox256.pt --test-frames 256 --seed 0
