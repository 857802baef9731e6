#!/usr/bin/env bash
# GPU throughput of vstore's own commands (not a test; for a machine with an NVIDIA GPU and torch):
# ingest of a generated COCO-format folder with the encoder on CUDA, `vstore finetune` steps on CUDA, and
# benchmarks/gpu_runtime.py (torch vs ONNX Runtime's CUDA provider). The figures of docs/runtime.md and
# docs/finetune.md ("On a GPU") come from one run of it:
#
#   OUT=/tmp/gpu bash benchmarks/gpu_device_check.sh [IMAGES]
#
# vstore's Python dependencies must be importable (an installed vstore, or PYTHONPATH=. plus wheels);
# the embedded PostgreSQL starts in a temp home. Random ViT-B-32 weights: same FLOPs as the real model.
set -euo pipefail
images=${1:-3000}
out=${OUT:-/tmp/vstore-gpu}
mkdir -p "$out"
export VSTORE_HOME=$(mktemp -d /tmp/vstore-gpu-home.XXXX) VSTORE_PRETRAINED=random
chmod 755 "$VSTORE_HOME"
data=$(mktemp -d /tmp/vstore-gpu-data.XXXX)
chmod 755 "$data"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 - "$data" "$images" <<'EOF'
import sys, time
from pathlib import Path
from tests.imagegen import make_coco
started = time.perf_counter()
make_coco(Path(sys.argv[1]), n=int(sys.argv[2]), size=(640, 480))
print(f"generated {sys.argv[2]} images in {time.perf_counter() - started:.1f}s", file=sys.stderr)
EOF
python3 -m vstore init --model ViT-B-32 --pretrained random
python3 -m vstore ingest "$data" --device cuda --batch-size 256 --workers 12 --json > "$out/ingest.json"
python3 -m vstore finetune --device cuda --epochs 3 --batch-size 128 --out "$out/run" --json > "$out/finetune.json"
python3 -m benchmarks.gpu_runtime --model ViT-B-32 --batch 256 --repeats 5 > "$out/gpu_runtime.json" || true
python3 -m vstore db stop || true
python3 - "$out" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
ingest = json.loads((out / "ingest.json").read_text())
keys = ("scanned", "images_encoded", "captions_added", "wall_s", "encode_s", "decode_wait_s", "model_load_s", "device")
print(json.dumps({k: ingest.get(k) for k in keys}))
EOF
