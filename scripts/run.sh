#!/usr/bin/env bash
# rootfix's main job on a fresh Debian 12 machine: Redis, Prometheus and Alertmanager on
# 127.0.0.1 (Alertmanager's webhook receiver pointing at rootfix with its ingest token), and
# `rootfix serve` with the shipped playbooks in the foreground (Ctrl-C stops it; the other servers
# keep running in the background), and a demo environment of real services whose faults
# `scripts/demo.sh fault nginx|goproxy|memory` injects: see the instructions printed before
# rootfix starts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/lib.sh

install_packages
install_demo_packages
# The main job's Redis keeps its data (append-only file under the run folder), like
# Alertmanager's notification log and Prometheus's data beside it: a second run finds the
# incidents the first one made, and Alertmanager's memory of what it sent agrees with rootfix's.
REDIS_PORT=${ROOTFIX_REDIS_PORT:-6380} start_redis --appendonly yes --appendfsync everysec
build_action_images
log "building rootfix (release; the first build takes a few minutes)"
cargo build --release
bin=$root/target/release/rootfix
$bin validate playbooks actions

run=$ROOTFIX_RUN_DIR
mkdir -p "$run/prometheus" "$run/alertmanager" "$run/fixes"

# Tokens: made once, kept in $run/tokens.env (mode 600).
if [[ ! -f $run/tokens.env ]]; then
  umask 077
  for role in INGEST VIEWER APPROVER ADMIN; do
    echo "ROOTFIX_${role}_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  done >"$run/tokens.env"
  umask 022
fi
set -a; source "$run/tokens.env"; set +a

# The demo environment: nginx with two payment backends, two Go module mirrors, mtail, traffic,
# a CI runner and the order service container (scripts/demo.sh).
bash scripts/demo.sh up
# rootfix's, Prometheus's and Alertmanager's configs for this host (scripts/demo.sh config).
bash scripts/demo.sh config rootfix >"$run/rootfix.yaml"
bash scripts/demo.sh config alertmanager >"$run/alertmanager/alertmanager.yml"
bash scripts/demo.sh config prometheus >"$run/prometheus/prometheus.yml"
cp deploy/demo/rules.yml "$run/prometheus/rules.yml"
cp deploy/prometheus/rootfix-rules.yml "$run/prometheus/"

if ! curl -sf http://127.0.0.1:9093/-/ready >/dev/null 2>&1; then
  log "starting Alertmanager on 127.0.0.1:9093"
  nohup prometheus-alertmanager --config.file="$run/alertmanager/alertmanager.yml" \
    --storage.path="$run/alertmanager/data" --web.listen-address=127.0.0.1:9093 \
    --cluster.listen-address= >"$run/alertmanager/alertmanager.log" 2>&1 &
else
  log "Alertmanager already answers on 127.0.0.1:9093; reloading its config"
  curl -sf -XPOST http://127.0.0.1:9093/-/reload >/dev/null || true
fi
if ! curl -sf http://127.0.0.1:9090/-/ready >/dev/null 2>&1; then
  log "starting Prometheus on 127.0.0.1:9090"
  nohup prometheus --config.file="$run/prometheus/prometheus.yml" \
    --storage.tsdb.path="$run/prometheus/data" --web.listen-address=127.0.0.1:9090 \
    --web.enable-lifecycle --rules.alert.resend-delay=1s >"$run/prometheus/prometheus.log" 2>&1 &
else
  log "Prometheus already answers on 127.0.0.1:9090; reloading its config"
  curl -sf -XPOST http://127.0.0.1:9090/-/reload >/dev/null || true
fi

cat >&2 <<MSG

==> rootfix is starting on http://127.0.0.1:5001 with the shipped playbooks.
    Prometheus: http://127.0.0.1:9090   Alertmanager: http://127.0.0.1:9093
    Tokens are in $run/tokens.env. The demo environment runs healthy; in another shell:

      cd $root; set -a; source $run/tokens.env; set +a

      bash scripts/demo.sh fault nginx      # payment-b hangs; follow it until resolved
      ROOTFIX_TOKEN=\$ROOTFIX_APPROVER_TOKEN $bin approvals list        # what waits for you
      ROOTFIX_TOKEN=\$ROOTFIX_APPROVER_TOKEN $bin approvals approve ID  # or the page below
      bash scripts/demo.sh fault goproxy    # the runners' Go module mirror serves a rogue certificate
      bash scripts/demo.sh fault memory     # the order-api container leaks memory
      bash scripts/demo.sh auto             # promote the three fix types in staging to auto
      bash scripts/demo.sh fault nginx      # ... now fixed with no human

      ROOTFIX_TOKEN=\$ROOTFIX_VIEWER_TOKEN $bin incidents list
      ROOTFIX_TOKEN=\$ROOTFIX_VIEWER_TOKEN $bin incidents show ID

    The web page: http://127.0.0.1:5001/ui/ (sign in with \$ROOTFIX_APPROVER_TOKEN).
    Ctrl-C stops rootfix; the rest keeps running (scripts/demo.sh down stops the demo).

MSG
exec "$bin" serve --config "$run/rootfix.yaml"
