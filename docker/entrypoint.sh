#!/bin/bash
# Entrypoint of the ringkv image: starts ringkv-node with flags built from the
# environment. This is the ONE place the node's command line is assembled
# (docker/compose.yaml only sets variables).
#
#   RINGKV_ID          node id (required), e.g. node1
#   RINGKV_LISTEN      listen address                 (default 0.0.0.0:7100)
#   RINGKV_DATA_DIR    LevelDB directory (a volume)   (default /var/lib/ringkv)
#   RINGKV_CLUSTER     cluster name                   (default ringkv)
#   RINGKV_ADVERTISE   HOST:PORT peers and clients use to reach this node
#                      (--advertise; default: `hostname`:PORT of RINGKV_LISTEN
#                      when that listens on 0.0.0.0 / ::, else none)
#   RINGKV_JOIN        seeds HOST:PORT[,HOST:PORT] to join through (--join)
#   RINGKV_PEERS       static members, ID@HOST:PORT,... (--peers), the
#                      alternative to RINGKV_JOIN; when set, RINGKV_JOIN is
#                      ignored. Neither set: the node founds a new cluster.
#                      (A node with data in RINGKV_DATA_DIR remembers its
#                      cluster and rejoins it either way.)
#   RINGKV_RING_SIZE   partitions, fixed at creation  (default 64)
#   RINGKV_N/_R/_W     default replicas / read quorum / write quorum (3/2/2)
#   RINGKV_MODE        strict | sloppy                (default: the node's)
#   RINGKV_TIMEOUT_MS  default request timeout        (default 2000)
#   RINGKV_SYNC        1/true: fsync every write (--sync)
#   RINGKV_RESP_LISTEN also serve Redis-protocol clients here (--resp-listen),
#                      e.g. 0.0.0.0:6379; empty: off (default)
#   RINGKV_RESP_LWW    1/true: those connections start in lww mode (--resp-lww)
#   RINGKV_HTTP_LISTEN also serve HTTP here (--http-listen): the dashboard,
#                      /metrics, /api/...; e.g. 0.0.0.0:8080; empty: off
#   RINGKV_GOSSIP_INTERVAL_MS  one gossip round      (default: the node's, 1000)
#   RINGKV_PHI_THRESHOLD       phi at which a peer is down (default: the node's, 8)
#   RINGKV_AAE_INTERVAL_MS     one anti-entropy exchange per interval
#                              (default: the node's, 10000)
#   RINGKV_AAE_MAX_KEYS_PER_SEC anti-entropy repair rate (default: the node's)
#   RINGKV_TLS_CERT, RINGKV_TLS_KEY, RINGKV_TLS_CA
#                      the node's certificate, its key and the cluster CA
#                      (--tls-cert, --tls-key, --tls-ca); all three or none.
#                      The ringkv client in the container reads RINGKV_TLS_CA
#                      too (with RINGKV_USER and RINGKV_PASSWORD_FILE it logs in)
#   RINGKV_ACL         users file (--acl), made with `ringkv acl add`
#   RINGKV_INSECURE    1/true: --insecure (listen on 0.0.0.0 without TLS and
#                      users; docker/compose.yaml sets it, its ports are on the
#                      host's loopback only)
#   RINGKV_EXTRA_FLAGS more ringkv-node flags, split on whitespace
#
# Arguments starting with '-' are appended to the node's flags; any other
# command (e.g. `bash`) is run instead of the node.
set -euo pipefail

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

: "${RINGKV_ID:?must be set to this node id, e.g. node1}"

listen="${RINGKV_LISTEN:-0.0.0.0:7100}"
advertise="${RINGKV_ADVERTISE:-}"
if [ -z "$advertise" ]; then
  case "$listen" in
    0.0.0.0:* | "[::]:"* | ":::"*) advertise="$(hostname):${listen##*:}" ;;
  esac
fi

args=(
  --id "$RINGKV_ID"
  --listen "$listen"
  --data-dir "${RINGKV_DATA_DIR:-/var/lib/ringkv}"
  --cluster "${RINGKV_CLUSTER:-ringkv}"
  --ring-size "${RINGKV_RING_SIZE:-64}"
  --n "${RINGKV_N:-3}"
  --r "${RINGKV_R:-2}"
  --w "${RINGKV_W:-2}"
  --timeout-ms "${RINGKV_TIMEOUT_MS:-2000}"
)
[ -n "${RINGKV_MODE:-}" ] && args+=(--mode "$RINGKV_MODE")
[ -n "$advertise" ] && args+=(--advertise "$advertise")
if [ -n "${RINGKV_PEERS:-}" ]; then
  args+=(--peers "$RINGKV_PEERS")
  [ -n "${RINGKV_JOIN:-}" ] && echo "ringkv-entrypoint: RINGKV_PEERS is set: ignoring RINGKV_JOIN=$RINGKV_JOIN" >&2
elif [ -n "${RINGKV_JOIN:-}" ]; then
  args+=(--join "$RINGKV_JOIN")
fi
[ -n "${RINGKV_GOSSIP_INTERVAL_MS:-}" ] && args+=(--gossip-interval-ms "$RINGKV_GOSSIP_INTERVAL_MS")
[ -n "${RINGKV_PHI_THRESHOLD:-}" ] && args+=(--phi-threshold "$RINGKV_PHI_THRESHOLD")
[ -n "${RINGKV_AAE_INTERVAL_MS:-}" ] && args+=(--aae-interval-ms "$RINGKV_AAE_INTERVAL_MS")
[ -n "${RINGKV_AAE_MAX_KEYS_PER_SEC:-}" ] && args+=(--aae-max-keys-per-sec "$RINGKV_AAE_MAX_KEYS_PER_SEC")
case "${RINGKV_SYNC:-}" in 1 | true | yes) args+=(--sync) ;; esac
[ -n "${RINGKV_RESP_LISTEN:-}" ] && args+=(--resp-listen "$RINGKV_RESP_LISTEN")
case "${RINGKV_RESP_LWW:-}" in 1 | true | yes) args+=(--resp-lww) ;; esac
[ -n "${RINGKV_HTTP_LISTEN:-}" ] && args+=(--http-listen "$RINGKV_HTTP_LISTEN")
if [ -n "${RINGKV_TLS_CERT:-}" ]; then
  args+=(--tls-cert "$RINGKV_TLS_CERT"
         --tls-key "${RINGKV_TLS_KEY:?must be set with RINGKV_TLS_CERT}"
         --tls-ca "${RINGKV_TLS_CA:?must be set with RINGKV_TLS_CERT}")
fi
[ -n "${RINGKV_ACL:-}" ] && args+=(--acl "$RINGKV_ACL")
case "${RINGKV_INSECURE:-}" in 1 | true | yes) args+=(--insecure) ;; esac
if [ -n "${RINGKV_EXTRA_FLAGS:-}" ]; then
  read -r -a extra <<< "$RINGKV_EXTRA_FLAGS"
  args+=("${extra[@]}")
fi
args+=("$@")

echo "ringkv-entrypoint: ringkv-node ${args[*]}" >&2
exec /usr/local/bin/ringkv-node "${args[@]}"
