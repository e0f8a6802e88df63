#!/usr/bin/env bash
# Creates the side environments of benchmarks/peers.py from their locks, idempotently:
#   bash benchmarks/setup_peers.sh rechub|deepctr|all
# Each is a venv over the system packages (numpy, pandas, TensorFlow and tf_mtl's other
# requirements stay visible) holding only its lock's pins: .venv-rechub (torch CPU and
# torch-rechub, requirements-rechub.lock), .venv-deepctr (DeepCTR, requirements-deepctr.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

setup() {
    local name=$1 venv=.venv-$1
    if [ ! -x "$venv/bin/python" ]; then
        "$PYTHON" -m venv --system-site-packages "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --no-deps -r "requirements-$name.lock"
    TF_CPP_MIN_LOG_LEVEL=2 "$venv/bin/python" benchmarks/peers.py --check "$name"
}

case "${1:-}" in
    rechub) setup rechub ;;
    deepctr) setup deepctr ;;
    all) setup rechub && setup deepctr ;;
    *) echo "usage: bash benchmarks/setup_peers.sh rechub|deepctr|all" >&2; exit 2 ;;
esac
