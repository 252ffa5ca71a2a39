#!/usr/bin/env bash
# rootfix's main job on a fresh Debian 12 machine: Redis, Prometheus and Alertmanager on
# 127.0.0.1 (Alertmanager's webhook receiver pointing at rootfix with its ingest token), and
# `rootfix serve` with the shipped playbooks in the foreground (Ctrl-C stops it; the other servers
# keep running in the background). Demo rules make the seed's two alerts fire, so an incident
# appears within seconds: see the instructions printed before rootfix starts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/lib.sh

install_packages
start_redis
build_action_images
log "building rootfix (release)"
cargo build --release --quiet
bin=$root/target/release/rootfix
$bin validate playbooks actions

run=$ROOTFIX_RUN_DIR
mkdir -p "$run/prometheus" "$run/alertmanager"

# Tokens: made once, kept in $run/tokens.env (mode 600).
if [[ ! -f $run/tokens.env ]]; then
  umask 077
  for role in INGEST VIEWER APPROVER ADMIN; do
    echo "ROOTFIX_${role}_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  done >"$run/tokens.env"
  umask 022
fi
set -a; source "$run/tokens.env"; set +a

sed -e "s|^playbooks: playbooks.*|playbooks: $root/playbooks|" \
    -e "s|^actions: actions|actions: $root/actions|" \
    -e "s|^consumer: .*|consumer: local|" \
    -e "s|  state_dir: /var/lib/rootfix/fixes|  state_dir: $run/fixes|" \
    -e '/^  loki:/,+1d' -e '/^  jsonhttp:/,+1d' \
    deploy/rootfix.example.yaml >"$run/rootfix.yaml"

sed -e "s|REPLACE_WITH_THE_INGEST_TOKEN|$ROOTFIX_INGEST_TOKEN|" \
    -e "s|group_wait: 10s|group_wait: 1s|" -e "s|group_interval: 1m|group_interval: 5s|" \
    deploy/alertmanager/receiver.yml >"$run/alertmanager/alertmanager.yml"
cp deploy/local/prometheus.yml deploy/local/demo-rules.yml deploy/prometheus/rootfix-rules.yml "$run/prometheus/"

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
fi

cat >&2 <<MSG

==> rootfix is starting on http://127.0.0.1:5001 with the shipped playbooks.
    Prometheus (demo rules firing OrderServiceTimeout and GoModuleProxyFailing): http://127.0.0.1:9090
    Alertmanager (webhook to rootfix with the ingest token):                     http://127.0.0.1:9093
    Tokens are in $run/tokens.env. In another shell, within a few seconds:

      set -a; source $run/tokens.env; set +a
      ROOTFIX_TOKEN=\$ROOTFIX_VIEWER_TOKEN $bin incidents list
      ROOTFIX_TOKEN=\$ROOTFIX_VIEWER_TOKEN $bin incidents show <ID>
      ROOTFIX_TOKEN=\$ROOTFIX_APPROVER_TOKEN $bin approvals list      # fixes waiting for you

    The web page: http://127.0.0.1:5001/ui/ (sign in with \$ROOTFIX_APPROVER_TOKEN).

    Ctrl-C stops rootfix (Redis, Prometheus and Alertmanager keep running).

MSG
exec "$bin" serve --config "$run/rootfix.yaml"
