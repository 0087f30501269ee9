#!/usr/bin/env bash
# Build the venv the real-Nova test fixture runs Nova from (nova-api,
# nova-conductor, fake-driver nova-computes, placement). Nova pins many oslo
# versions, so it lives in a venv of its own, never in poolmgr's.
#
#   tests/realnova/install.sh [VENV]     (default: $POOLMGR_NOVA_VENV or
#                                         .nova-venv at the top of the tree)
#
# Idempotent: when the venv already imports the pinned versions it exits at
# once.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-${POOLMGR_NOVA_VENV:-$top/.nova-venv}}
NOVA_VERSION=34.0.0
PLACEMENT_VERSION=16.0.0
marker="$venv/.poolmgr-nova-$NOVA_VERSION-$PLACEMENT_VERSION"

check() {
    "$venv/bin/python" - <<PY 2>/dev/null
import importlib.metadata as md
assert md.version("nova") == "$NOVA_VERSION"
assert md.version("openstack-placement") == "$PLACEMENT_VERSION"
import pymysql, nova.conf, placement.conf  # noqa
PY
}

if [ -f "$marker" ] && [ -x "$venv/bin/nova-manage" ] && check; then
    echo "real Nova venv ready: $venv"
    exit 0
fi
start=$(date +%s)
echo "==> installing nova==$NOVA_VERSION openstack-placement==$PLACEMENT_VERSION into $venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "nova==$NOVA_VERSION" \
    "openstack-placement==$PLACEMENT_VERSION" PyMySQL
check
touch "$marker"
echo "real Nova venv installed in $(( $(date +%s) - start )) s: $venv"
