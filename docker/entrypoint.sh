#!/bin/bash
# Entrypoint of the ringkv image: starts ringkv-node with flags built from the
# environment. This is the ONE place the node's command line is assembled
# (docker/compose.yaml only sets variables).
#
#   RINGKV_ID          node id (required), e.g. node1
#   RINGKV_LISTEN      listen address                 (default 0.0.0.0:7100)
#   RINGKV_DATA_DIR    LevelDB directory (a volume)   (default /var/lib/ringkv)
#   RINGKV_CLUSTER     cluster name                   (default ringkv)
#   RINGKV_PEERS       static members, ID@HOST:PORT,... (optional)
#   RINGKV_JOIN        HOST:PORT of a member to join through (optional; --join)
#   RINGKV_RING_SIZE   partitions, fixed at creation  (default 64)
#   RINGKV_N/_R/_W     default replicas / read quorum / write quorum (3/2/2)
#   RINGKV_MODE        strict | sloppy                (default: the node's)
#   RINGKV_TIMEOUT_MS  default request timeout        (default 2000)
#   RINGKV_SYNC        1/true: fsync every write (--sync)
#   RINGKV_EXTRA_FLAGS more ringkv-node flags, split on whitespace
#
# Arguments starting with '-' are appended to the node's flags; any other
# command (e.g. `bash`) is run instead of the node.
set -euo pipefail

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

: "${RINGKV_ID:?must be set to this node id, e.g. node1}"

args=(
  --id "$RINGKV_ID"
  --listen "${RINGKV_LISTEN:-0.0.0.0:7100}"
  --data-dir "${RINGKV_DATA_DIR:-/var/lib/ringkv}"
  --cluster "${RINGKV_CLUSTER:-ringkv}"
  --ring-size "${RINGKV_RING_SIZE:-64}"
  --n "${RINGKV_N:-3}"
  --r "${RINGKV_R:-2}"
  --w "${RINGKV_W:-2}"
  --timeout-ms "${RINGKV_TIMEOUT_MS:-2000}"
)
[ -n "${RINGKV_MODE:-}" ] && args+=(--mode "$RINGKV_MODE")
[ -n "${RINGKV_PEERS:-}" ] && args+=(--peers "$RINGKV_PEERS")
[ -n "${RINGKV_JOIN:-}" ] && args+=(--join "$RINGKV_JOIN")
case "${RINGKV_SYNC:-}" in 1 | true | yes) args+=(--sync) ;; esac
if [ -n "${RINGKV_EXTRA_FLAGS:-}" ]; then
  read -r -a extra <<< "$RINGKV_EXTRA_FLAGS"
  args+=("${extra[@]}")
fi
args+=("$@")

echo "ringkv-entrypoint: ringkv-node ${args[*]}" >&2
exec /usr/local/bin/ringkv-node "${args[@]}"
