# Shared by scripts/*.sh: install Debian packages and start the real components on 127.0.0.1.
# Never through systemd; every server runs in the background with its state under $ROOTFIX_RUN_DIR.

ROOTFIX_RUN_DIR=${ROOTFIX_RUN_DIR:-/tmp/rootfix-run}
REDIS_PORT=${REDIS_PORT:-6379}
export ROOTFIX_TEST_REDIS_URL=${ROOTFIX_TEST_REDIS_URL:-redis://127.0.0.1:${REDIS_PORT}/}

log() { printf '==> %s\n' "$*" >&2; }

install_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  # kubectl checks deploy/kubernetes offline (tests/kube_manifests.rs); no cluster is needed.
  command -v kubectl >/dev/null || missing+=(kubernetes-client)
  command -v cargo-nextest >/dev/null || command -v cargo >/dev/null || { log "cargo is missing"; exit 1; }
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The Debian packages start their services through systemd where it runs; stop those copies so
  # the ports belong to the servers started below.
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl stop redis-server prometheus prometheus-alertmanager >/dev/null 2>&1 || true
  fi
}

start_redis() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "redis already answers on 127.0.0.1:$REDIS_PORT"
    return
  fi
  mkdir -p "$ROOTFIX_RUN_DIR/redis"
  log "starting redis on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$ROOTFIX_RUN_DIR/redis" --logfile "$ROOTFIX_RUN_DIR/redis/redis.log"
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "redis did not start; see $ROOTFIX_RUN_DIR/redis/redis.log"
  exit 1
}
