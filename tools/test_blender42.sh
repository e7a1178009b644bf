#!/usr/bin/env bash
# The add-on's Blender tests on the oldest Blender the extension supports (4.2: actions without slots).
# A separate venv (bpy 4.2 + the add-on's runtime deps, no torch: the local-backend test, which starts a
# model server, is left to the main suite on 4.5). About 520 MB to download on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV42:-build/venv-blender42}
if [ ! -x "$VENV/bin/python" ]; then
    python3.11 -m venv "$VENV"
    "$VENV/bin/pip" install -q "bpy==4.2.*" msgpack pyzmq scipy pytest pytest-timeout
fi
PYTHONPATH=backend "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    tests/blender/test_bridge.py tests/blender/test_operators.py tests/blender/test_addon.py \
    -k "not local_backend" "$@" < /dev/null
