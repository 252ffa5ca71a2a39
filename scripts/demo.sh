#!/usr/bin/env bash
# The demo environment of rootfix's main job: real services on 127.0.0.1 and the local Docker
# engine, with real failure modes that Prometheus really scrapes.
#
#   scripts/demo.sh up                         start it (idempotent; scripts/run.sh does this)
#   scripts/demo.sh fault nginx|goproxy|memory inject a fault, then follow it to `resolved`
#                                              (--no-wait: inject and return)
#   scripts/demo.sh auto                       promote the demo's fix types in staging to `auto`
#   scripts/demo.sh status                     what runs, which faults are in, open incidents
#   scripts/demo.sh down                       stop the demo's processes and container
#   scripts/demo.sh heal                       put every fault back (the environment healthy)
#   scripts/demo.sh config rootfix|prometheus|alertmanager
#                                              the three servers' configs for this environment
#
# What runs (state under $ROOTFIX_RUN_DIR/demo):
#   nginx (Debian's)   127.0.0.1:80 the front of the order service's payment calls: upstream
#                      `payment` = payment-a :18091 + payment-b :18092 (busybox httpd each);
#                      127.0.0.1:18443 and :18444, two Go module mirrors over HTTPS
#   mtail              127.0.0.1:3903 turns nginx's logs and the CI runner's log into metrics
#   traffic            4 bounded curl loops through the front (the order service's calls)
#   ci-runner          a loop that fetches a module through its env file's GOPROXY every 2 s
#   order-api          a Docker container (busybox) with a health check, 128 MiB limit, its
#                      cgroup memory on 127.0.0.1:18085/cgi-bin/metrics
# Faults:
#   nginx    payment-b hangs (accepts, never answers): nginx times out on it and retries
#   goproxy  the runners' mirror (:18443) starts serving a certificate no trusted CA signed
#   memory   a leak in order-api grows its working set to 93 % of the limit and holds it
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ROOTFIX_RUN_DIR=${ROOTFIX_RUN_DIR:-/tmp/rootfix-run}
demo=$ROOTFIX_RUN_DIR/demo
ROOTFIX_LISTEN=${ROOTFIX_LISTEN:-127.0.0.1:5001}
ROOTFIX_URL=${ROOTFIX_URL:-http://$ROOTFIX_LISTEN}
ROOTFIX_REDIS_URL=${ROOTFIX_REDIS_URL:-redis://127.0.0.1:${ROOTFIX_REDIS_PORT:-6380}/}
ROOTFIX_KEY_PREFIX=${ROOTFIX_KEY_PREFIX:-}
PROMETHEUS_URL=${PROMETHEUS_URL:-http://127.0.0.1:9090}
ALERTMANAGER_URL=${ALERTMANAGER_URL:-http://127.0.0.1:9093}
ORDER_CONTAINER=${DEMO_ORDER_CONTAINER:-rootfix-demo-order-api}
ORDER_IMAGE=rootfix-demo/order-api:1
bin=${ROOTFIX_BIN:-$root/target/release/rootfix}

log() { printf '==> %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_pid() {
  if pid_alive "$1"; then
    kill -- "-$(cat "$1")" 2>/dev/null || kill "$(cat "$1")" 2>/dev/null || true
  fi
  rm -f "$1"
}
# start_bg PIDFILE LOG CMD...: CMD in its own process group (so stop_pid ends its children).
start_bg() {
  local pidfile=$1 logfile=$2; shift 2
  pid_alive "$pidfile" && return 0
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

# --- certificates: the team's CA (trusted by the runners and rootfix's probes) and a rogue one
make_certs() {
  local c=$demo/certs
  [ -f "$c/mirror-b.crt" ] && return 0
  mkdir -p "$c"
  log "making the demo's certificates (a trusted CA, a rogue CA, the mirrors' leaves)"
  local ca
  for ca in ca rogue-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=rootfix demo ${ca}" \
      -keyout "$c/$ca.key" -out "$c/$ca.crt" 2>/dev/null
  done
  local leaf signer
  for leaf in mirror-a mirror-b mirror-a-rogue; do
    signer=ca; [ "$leaf" = mirror-a-rogue ] && signer=rogue-ca
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$c/$leaf.key" \
      -out "$c/$leaf.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$c/$leaf.ext"
    openssl x509 -req -in "$c/$leaf.csr" -CA "$c/$signer.crt" -CAkey "$c/$signer.key" \
      -CAcreateserial -days 825 -extfile "$c/$leaf.ext" -out "$c/$leaf.crt" 2>/dev/null
  done
  cp "$c/mirror-a.crt" "$c/mirror-a.good.crt"; cp "$c/mirror-a.key" "$c/mirror-a.good.key"
  # The trust store the runners and go-proxy-switch see: Debian's plus the team's CA.
  mkdir -p "$demo/trust"
  cat /etc/ssl/certs/ca-certificates.crt "$c/ca.crt" >"$demo/trust/ca-certificates.crt"
}

# --- the Go module protocol as static files, for the probes and the runners
make_goproxy_tree() {
  local g=$demo/goproxy m
  [ -f "$g/golang.org/x/text/@v/v0.14.0.info" ] && return 0
  for m in golang.org/x/text:v0.14.0 github.com/stretchr/testify:v1.9.0; do
    local mod=${m%%:*} ver=${m##*:}
    mkdir -p "$g/$mod/@v"
    printf '{"Version":"%s","Time":"2023-10-11T00:00:00Z"}\n' "$ver" >"$g/$mod/@v/$ver.info"
    printf '%s\n' "$ver" >"$g/$mod/@v/list"
    printf 'module %s\n' "$mod" >"$g/$mod/@v/$ver.mod"
    printf 'PK\005\006%018d' 0 >"$g/$mod/@v/$ver.zip"
    cp "$g/$mod/@v/$ver.info" "$g/$mod/@latest"
  done
  chmod -R a+rX "$g"
}

write_payment_docroot() {
  local d=$demo/payment/$1
  mkdir -p "$d/actuator" "$d/api/payment"
  echo '{"status":"UP"}' >"$d/actuator/health"
  echo '{"status":"UP"}' >"$d/api/payment/health"
  echo '{"charged":true}' >"$d/api/payment/charge"
}

start_payment() { # NAME PORT: a healthy backend
  write_payment_docroot "$1"
  stop_pid "$demo/run/$1-hang.pid"
  start_bg "$demo/run/$1.pid" "$demo/log/$1.log" busybox httpd -f -p "127.0.0.1:$2" -h "$demo/payment/$1"
}

hang_payment() { # NAME PORT: the backend accepts connections and never answers
  stop_pid "$demo/run/$1.pid"
  local i
  for i in $(seq 20); do ss -ltn "sport = :$2" | grep -q LISTEN || break; sleep 0.1; done
  start_bg "$demo/run/$1-hang.pid" "$demo/log/$1.log" python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096)
print("payment-b hangs: accepting into the backlog, answering nothing", flush=True)
while True: time.sleep(3600)' "$2"
}

start_nginx() {
  mkdir -p "$demo/nginx/conf.d" "$demo/nginx/tmp"
  sed "s|@RUN@|$demo|g" deploy/demo/nginx.conf >"$demo/nginx/nginx.conf"
  [ -f "$demo/nginx/conf.d/payment-upstream.conf" ] ||
    cp deploy/demo/payment-upstream.conf "$demo/nginx/conf.d/payment-upstream.conf"
  touch "$demo/nginx/access.log" "$demo/nginx/error.log"
  if pid_alive "$demo/nginx/nginx.pid"; then
    reload_nginx
  else
    ss -ltn 'sport = :80' | grep -q LISTEN && die "127.0.0.1:80 is taken; the demo's nginx front needs it"
    nginx -q -c "$demo/nginx/nginx.conf" -p "$demo/nginx"
  fi
}

reload_nginx() { nginx -q -c "$demo/nginx/nginx.conf" -p "$demo/nginx" -s reload 2>>"$demo/log/nginx.log"; }

start_mtail() {
  start_bg "$demo/run/mtail.pid" "$demo/log/mtail.log" mtail --progs "$root/deploy/demo" \
    --logs "$demo/nginx/access.log" --logs "$demo/nginx/error.log" --logs "$demo/ci-runner/downloads.log" \
    --address 127.0.0.1 --port 3903 --logtostderr --poll_interval 250ms
}

# The order service's calls to payment: bounded (4 loops, 4 h at most), each request at most 5 s.
traffic_loop() {
  local end=$(($(date +%s) + 4 * 3600))
  while [ "$(date +%s)" -lt "$end" ]; do
    curl -s -o /dev/null --max-time 5 http://127.0.0.1/api/payment/charge || true
    sleep 0.2
  done
}

# The CI runner: every 2 s, fetch a module's .info through the first proxy of its GOPROXY (bounded: 4 h).
ci_runner_loop() {
  local env=$demo/ci-runners/ci-runner.env end=$(($(date +%s) + 4 * 3600)) proxy result
  while [ "$(date +%s)" -lt "$end" ]; do
    proxy=$(sed -n 's/^[[:space:]]*\(export[[:space:]]*\)\{0,1\}GOPROXY=//p' "$env" | head -n 1 | tr -d '"' | cut -d, -f1)
    case $proxy in
      https://*|http://*)
        if curl -sf -o /dev/null --max-time 3 --cacert "$demo/trust/ca-certificates.crt" \
             "$proxy/golang.org/x/text/@v/v0.14.0.info"; then result=ok; else result=fail; fi
        echo "$(date -u +%FT%TZ) go-mod-download group=ci-runner goproxy=$proxy result=$result" \
          >>"$demo/ci-runner/downloads.log" ;;
    esac
    sleep 2
  done
}

build_order_image() {
  local inputs sum
  sum=$( (cat /bin/busybox; find deploy/demo/order-api -type f | sort | xargs cat) | sha256sum | cut -c1-16)
  if [ "$(docker image inspect -f '{{ index .Config.Labels "rootfix.inputs" }}' "$ORDER_IMAGE" 2>/dev/null)" = "$sum" ]; then
    return 0
  fi
  log "building $ORDER_IMAGE (busybox-static + deploy/demo/order-api, offline)"
  local fs; fs=$(mktemp -d)
  mkdir -p "$fs/bin" "$fs/tmp" "$fs/demo"
  cp /bin/busybox "$fs/bin/busybox"
  local a
  for a in sh awk cat head tr sort sleep httpd wget printf echo; do ln -s busybox "$fs/bin/$a"; done
  cp -r deploy/demo/order-api/www "$fs/demo/www"
  cp deploy/demo/order-api/leak "$fs/demo/leak"
  tar -C "$fs" -c . | docker import \
    -c 'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/demo/www"]' \
    -c 'ENV PATH=/bin' -c "LABEL rootfix.inputs=$sum" - "$ORDER_IMAGE" >/dev/null
  rm -rf "$fs"
}

start_order_api() {
  build_order_image
  if [ "$(docker inspect -f '{{ .State.Running }}' "$ORDER_CONTAINER" 2>/dev/null)" = true ] &&
     [ "$(docker inspect -f '{{ .Config.Image }}' "$ORDER_CONTAINER")" = "$ORDER_IMAGE" ]; then
    return 0
  fi
  docker rm -f "$ORDER_CONTAINER" >/dev/null 2>&1 || true
  docker run -d --name "$ORDER_CONTAINER" --memory 128m --memory-swap 128m \
    -p 127.0.0.1:18085:8080 --label rootfix.demo=order-api \
    --health-cmd 'wget -q -O /dev/null http://127.0.0.1:8080/health' --health-interval 2s \
    --health-timeout 2s --health-retries 2 --health-start-period 2s "$ORDER_IMAGE" >/dev/null
}

cmd_up() {
  command -v nginx >/dev/null || die "nginx is missing (scripts/run.sh installs it)"
  command -v mtail >/dev/null || die "mtail is missing (scripts/run.sh installs it)"
  mkdir -p "$demo/run" "$demo/log" "$demo/ci-runners" "$demo/ci-runner"
  touch "$demo/ci-runner/downloads.log"
  make_certs
  make_goproxy_tree
  [ -f "$demo/ci-runners/ci-runner.env" ] || printf 'GOFLAGS=-mod=mod\nGOPROXY=https://127.0.0.1:18443\n' \
    >"$demo/ci-runners/ci-runner.env"
  start_payment payment-a 18091
  pid_alive "$demo/run/payment-b-hang.pid" || start_payment payment-b 18092
  start_nginx
  start_mtail
  local i
  for i in 1 2 3 4; do start_bg "$demo/run/traffic-$i.pid" /dev/null bash "$0" _traffic; done
  start_bg "$demo/run/ci-runner.pid" "$demo/log/ci-runner.log" bash "$0" _ci_runner
  start_order_api
  log "demo environment up: nginx front http://127.0.0.1/api/payment/charge, mirrors https://127.0.0.1:18443 and :18444, mtail :3903, $ORDER_CONTAINER on :18085"
}

# Puts a fault's part of the environment back as `up` left it, so a fault can be injected again.
heal() {
  case $1 in
    nginx)
      start_payment payment-b 18092
      cp deploy/demo/payment-upstream.conf "$demo/nginx/conf.d/payment-upstream.conf"
      reload_nginx ;;
    goproxy)
      cp "$demo/certs/mirror-a.good.crt" "$demo/certs/mirror-a.crt"
      cp "$demo/certs/mirror-a.good.key" "$demo/certs/mirror-a.key"
      printf 'GOFLAGS=-mod=mod\nGOPROXY=https://127.0.0.1:18443\n' >"$demo/ci-runners/ci-runner.env"
      reload_nginx ;;
    memory)
      docker restart -t 2 "$ORDER_CONTAINER" >/dev/null ;;
  esac
}

inject() {
  case $1 in
    nginx) hang_payment payment-b 18092 ;;
    goproxy)
      cp "$demo/certs/mirror-a-rogue.crt" "$demo/certs/mirror-a.crt"
      cp "$demo/certs/mirror-a-rogue.key" "$demo/certs/mirror-a.key"
      reload_nginx ;;
    memory) docker exec -d "$ORDER_CONTAINER" /demo/leak ;;
  esac
}

alert_of() { # the labels that pick a fault's alert, as a jq filter over .labels
  case $1 in
    nginx) echo '.alertname == "OrderServiceTimeout" and .symptom == "payment-calls-failing"' ;;
    memory) echo '.alertname == "OrderServiceTimeout" and .symptom == "memory-pressure"' ;;
    goproxy) echo '.alertname == "GoModuleProxyFailing"' ;;
  esac
}

tokens() {
  [ -n "${ROOTFIX_VIEWER_TOKEN:-}" ] && return 0
  [ -f "$ROOTFIX_RUN_DIR/tokens.env" ] || die "no tokens: run scripts/run.sh first (it writes $ROOTFIX_RUN_DIR/tokens.env)"
  set -a; source "$ROOTFIX_RUN_DIR/tokens.env"; set +a
}

api() { curl -sf -H "Authorization: Bearer $ROOTFIX_VIEWER_TOKEN" "$ROOTFIX_URL$1"; }

# Silences rootfix created after `auto` fixes would hide the new fault's alert: expire them.
expire_rootfix_silences() {
  local ids id
  ids=$(curl -sf "$ALERTMANAGER_URL/api/v2/silences" |
    jq -r --arg f "$(alert_of "$1")" '.[] | select(.status.state == "active" and .createdBy == "rootfix")
      | select([.matchers[] | {(.name): .value}] | add | '"$(alert_of "$1")"') | .id' 2>/dev/null) || true
  for id in $ids; do
    curl -sf -X DELETE "$ALERTMANAGER_URL/api/v2/silence/$id" >/dev/null &&
      log "expired rootfix's cooldown silence $id from the last automatic fix, so the new fault pages"
  done
}

cmd_fault() {
  local kind=${1:-} wait=1
  [ "${2:-}" = --no-wait ] && wait=0
  case $kind in nginx|goproxy|memory) ;; *) die "usage: scripts/demo.sh fault nginx|goproxy|memory [--no-wait]" ;; esac
  tokens
  heal "$kind"
  # Wait until the previous episode of this alert is over (Prometheus no longer fires it).
  local filter t0 i firing=""
  filter=$(alert_of "$kind")
  for i in $(seq 120); do
    firing=$(curl -sf "$PROMETHEUS_URL/api/v1/alerts" | jq -r ".data.alerts[] | select(.labels | $filter) | .state" | head -n 1) || firing=""
    [ -z "$firing" ] && break
    [ "$i" = 1 ] && log "waiting for the previous $kind alert to resolve first"
    sleep 1
  done
  expire_rootfix_silences "$kind"
  t0=$(now)
  local started; started=$(date -u +%FT%T.%3NZ)
  inject "$kind"
  log "injected the $kind fault at $started"
  [ "$wait" = 1 ] || return 0

  local shown_fire="" shown_inc="" shown_state="" inc="" state="" fix_shown=""
  for i in $(seq 600); do
    if [ -z "$shown_fire" ] && curl -sf "$PROMETHEUS_URL/api/v1/alerts" |
         jq -e ".data.alerts[] | select((.labels | $filter) and .state == \"firing\")" >/dev/null; then
      shown_fire=1; log "+$(since "$t0")s  Prometheus fires the alert"
    fi
    if [ -z "$inc" ]; then
      local id
      for id in $(api "/api/v1/incidents?limit=50" | jq -r --arg t "$started" '.items[] | select(.created_at >= $t) | .id' 2>/dev/null); do
        api "/api/v1/incidents/$id" | jq -e ".alert.labels | $filter" >/dev/null 2>&1 && { inc=$id; break; }
      done
    fi
    if [ -n "$inc" ]; then
      [ -z "$shown_inc" ] && { shown_inc=1; log "+$(since "$t0")s  rootfix opened incident $inc"; }
      local body; body=$(api "/api/v1/incidents/$inc") || body=""
      state=$(jq -r '.state' <<<"$body")
      if [ "$state" != "$shown_state" ]; then
        shown_state=$state
        case $state in
          awaiting-approval)
            local appr; appr=$(jq -r '.fix.approval // empty' <<<"$body")
            log "+$(since "$t0")s  diagnosed: $(jq -r "[.diagnosis.nodes[] | select(.outcome == \"hit\") | .id] | join(\" → \")" <<<"$body" 2>/dev/null); waiting for your approval:"
            printf '\n      ROOTFIX_TOKEN=$ROOTFIX_APPROVER_TOKEN %s approvals approve %s\n      or the page: %s/ui/incidents/%s\n\n' \
              "$bin" "${appr:-<ID from approvals list>}" "$ROOTFIX_URL" "$inc" >&2 ;;
          fixing) log "+$(since "$t0")s  the fix $(jq -r '.fix.action // ""' <<<"$body") runs" ;;
          resolved)
            log "+$(since "$t0")s  RESOLVED ($(jq -r '.timeline[-1].message' <<<"$body"))"
            printf '\n    %s fault: injection → resolved in %ss.  Timeline: %s incidents show %s\n\n' \
              "$kind" "$(since "$t0")" "$bin" "$inc" >&2
            return 0 ;;
          *) log "+$(since "$t0")s  incident $inc is $state" ;;
        esac
      fi
      if [ -z "$fix_shown" ] && jq -e '.fix.outcome' <<<"$body" >/dev/null 2>&1; then
        fix_shown=1; log "+$(since "$t0")s  fix outcome: $(jq -r '.fix.outcome | if type == "object" then (.kind // tostring) else . end' <<<"$body")"
      fi
    fi
    sleep 1
  done
  die "the $kind fault was not resolved within 10 minutes; see $bin incidents show ${inc:-<ID>}"
}

cmd_auto() {
  tokens
  local action
  for action in nginx-upstream-failover go-proxy-switch restart-container; do
    local to
    for to in silent auto; do
      if out=$(ROOTFIX_TOKEN=$ROOTFIX_ADMIN_TOKEN ROOTFIX_URL=$ROOTFIX_URL "$bin" stages promote "$action" staging --force \
          --reason "demo: the first approved fixes worked; take staging to $to" 2>&1); then
        log "$action/staging: $out"
      else
        log "$action/staging: $out"
      fi
    done
  done
}

cmd_status() {
  local p
  for p in "$demo"/run/*.pid "$demo/nginx/nginx.pid"; do
    [ -f "$p" ] || continue
    if pid_alive "$p"; then echo "running  $(basename "$p" .pid)"; else echo "stopped  $(basename "$p" .pid)"; fi
  done
  echo "container $ORDER_CONTAINER: $(docker inspect -f '{{ .State.Status }} {{ if .State.Health }}{{ .State.Health.Status }}{{ end }}' "$ORDER_CONTAINER" 2>/dev/null || echo absent)"
  pid_alive "$demo/run/payment-b-hang.pid" && echo "fault in: nginx (payment-b hangs)"
  cmp -s "$demo/certs/mirror-a.crt" "$demo/certs/mirror-a-rogue.crt" && echo "fault in: goproxy (mirror :18443 serves a rogue certificate)"
  echo "runners: $(grep GOPROXY "$demo/ci-runners/ci-runner.env" 2>/dev/null)"
}

cmd_down() {
  local p
  for p in "$demo"/run/*.pid; do [ -f "$p" ] && stop_pid "$p"; done
  pid_alive "$demo/nginx/nginx.pid" && nginx -q -c "$demo/nginx/nginx.conf" -p "$demo/nginx" -s stop
  docker rm -f "$ORDER_CONTAINER" >/dev/null 2>&1 || true
  log "demo environment stopped"
}

# rootfix's config for the demo (tokens from the environment, as scripts/run.sh sets them).
config_rootfix() {
  cat <<YAML
# Written by scripts/demo.sh config rootfix; every key is explained in deploy/rootfix.example.yaml.
listen: $ROOTFIX_LISTEN
redis: {url: "$ROOTFIX_REDIS_URL", key_prefix: "$ROOTFIX_KEY_PREFIX"}
playbooks: $root/playbooks
actions: $root/actions
consumer: local
tokens:
  - {name: alertmanager, role: ingest, token_env: ROOTFIX_INGEST_TOKEN}
  - {name: sre-dashboard, role: viewer, token_env: ROOTFIX_VIEWER_TOKEN}
  - {name: oncall, role: approver, token_env: ROOTFIX_APPROVER_TOKEN}
  - {name: platform-admin, role: admin, token_env: ROOTFIX_ADMIN_TOKEN}
fixes:
  state_dir: $ROOTFIX_RUN_DIR/fixes
  # The actions name the usual host paths; on this host the demo's files live in the run folder.
  host_paths:
    /etc/nginx/conf.d: $demo/nginx/conf.d
    /run/nginx.pid: $demo/nginx/nginx.pid
    /etc/ci-runners/env: $demo/ci-runners
    /etc/ssl/certs: $demo/trust
kubernetes: {enabled: false}
# The demo injects the same fault again seconds after a fix resolved it; with the default
# flap window (15m) and recurrence window (1h) that is the fixed alert coming back (a fix that did
# not hold, outcome recurred), not a new fault.
limits: {flap_window: 1s}
evidence:
  prometheus: {default: {url: "$PROMETHEUS_URL", timeout: 10s}}
  http: {extra_ca_files: [$demo/certs/ca.crt], timeout: 10s}
autonomy:
  recurrence_window: 1s
  approval_ttl: 30m
  leader_interval: 10s
  promotion: {min_in_stage: 7d, window: 72h, min_success_rate: 0.991, min_samples: 20, apply: admin}
  scopes:
    - {name: staging, match: ['env="staging"'], max_stage: auto, fixes_per_hour: 30, concurrency: 3}
    - {name: prod, match: ['env="prod"'], max_stage: silent, fixes_per_hour: 4, concurrency: 1}
silences:
  alertmanager: $ALERTMANAGER_URL
  cooldown: 10m
  match_labels: [alertname, service, symptom, env]
YAML
}

config_alertmanager() {
  : "${ROOTFIX_INGEST_TOKEN:?the ingest token (scripts/run.sh keeps it in \$ROOTFIX_RUN_DIR/tokens.env)}"
  sed -e "s|REPLACE_WITH_THE_INGEST_TOKEN|$ROOTFIX_INGEST_TOKEN|" \
      -e "s|http://127.0.0.1:5001/|$ROOTFIX_URL/|" \
      -e "s|group_wait: 10s|group_wait: 1s|" -e "s|group_interval: 1m|group_interval: 2s|" \
      deploy/alertmanager/receiver.yml
}

config_prometheus() {
  sed -e "s|@PROMETHEUS@|${PROMETHEUS_URL#http://}|" -e "s|@ALERTMANAGER@|${ALERTMANAGER_URL#http://}|" \
      -e "s|@ROOTFIX@|$ROOTFIX_LISTEN|" -e "s|rootfix-demo-order-api|$ORDER_CONTAINER|" deploy/demo/prometheus.yml
}

cmd_heal() {
  local kind
  for kind in nginx goproxy memory; do heal "$kind"; done
  log "every demo fault is healed"
}

case ${1:-} in
  up) cmd_up ;;
  fault) shift; cmd_fault "$@" ;;
  auto) cmd_auto ;;
  status) cmd_status ;;
  down) cmd_down ;;
  heal) cmd_heal ;;
  config)
    case ${2:-} in
      rootfix) config_rootfix ;; prometheus) config_prometheus ;; alertmanager) config_alertmanager ;;
      *) die "usage: scripts/demo.sh config rootfix|prometheus|alertmanager" ;;
    esac ;;
  _traffic) traffic_loop ;;
  _ci_runner) ci_runner_loop ;;
  *) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
