#!/usr/bin/env bash
# Distributed training with torchrun and MMEngine's pytorch launcher.
#   bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args...]
# On CPU the processes talk over gloo (configs/_base_/default_runtime.py);
# on GPUs add --cfg-options env_cfg.dist_cfg.backend=nccl. The interpreter is
# $PYTHON (default: python on PATH).
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG NUM_PROCESSES [tools/train.py args...]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
DIR="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}
PYTHONPATH="$DIR:${PYTHONPATH:-}" exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$DIR/tools/train.py" "$CONFIG" --launcher pytorch "$@"
