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
  # The action images (actions/build.sh) and their tests: busybox-static is the images' base; curl,
  # jq and the mariadb client are copied into them; nginx and mariadb-server are the real services
  # the action tests fix.
  { [ -x /bin/busybox ] && ! ldd /bin/busybox 2>/dev/null | grep -q '=>'; } || missing+=(busybox-static)
  command -v curl >/dev/null || missing+=(curl)
  command -v jq >/dev/null || missing+=(jq)
  command -v mariadb >/dev/null || missing+=(mariadb-client)
  [ -e /usr/lib/x86_64-linux-gnu/libmariadb3/plugin/caching_sha2_password.so ] || missing+=(libmariadb3)
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  command -v flock >/dev/null || missing+=(util-linux)
  # kubectl checks deploy/kubernetes offline (tests/kube_manifests.rs); no cluster is needed.
  command -v kubectl >/dev/null || missing+=(kubernetes-client)
  # Headless Chromium drives the web page in tests/ui_browser.rs (which fails without it).
  command -v chromium >/dev/null || missing+=(chromium)
  # A real SMTP server on loopback (STARTTLS, AUTH) receives the email sink's messages in tests/notify.rs.
  /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
  command -v cargo-nextest >/dev/null || command -v cargo >/dev/null || { log "cargo is missing"; exit 1; }
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Packages with a daemon (nginx, mariadb) must not start it on install: the tests start their
    # own on free ports.
    local own_policy=''
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
  fi
  # The Debian packages start their services through systemd where it runs; stop those copies so
  # the ports belong to the servers started below.
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl stop redis-server prometheus prometheus-alertmanager nginx mariadb >/dev/null 2>&1 || true
  fi
}

# start_redis [EXTRA_ARGS...]: a redis-server on 127.0.0.1:$REDIS_PORT unless one answers there;
# extra arguments override the defaults (no persistence), e.g. `--appendonly yes`.
start_redis() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "redis already answers on 127.0.0.1:$REDIS_PORT"
    return
  fi
  local dir=$ROOTFIX_RUN_DIR/redis-$REDIS_PORT
  mkdir -p "$dir"
  log "starting redis on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" "$@"
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "redis did not start; see $dir/redis.log"
  exit 1
}

# What the demo environment (scripts/demo.sh) needs beyond install_packages: mtail turns logs
# into metrics, openssl makes its certificates, ss (iproute2) sees its ports, python3 plays a
# hung backend.
install_demo_packages() {
  local missing=()
  command -v mtail >/dev/null || missing+=(mtail)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ss >/dev/null || missing+=(iproute2)
  command -v python3 >/dev/null || missing+=(python3)
  command -v setsid >/dev/null || missing+=(util-linux)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# schemathesis (PyPI, exactly the versions of scripts/schemathesis-requirements.txt) in a venv at
# target/schemathesis-venv, for tests/openapi.rs. Debian's own /usr/bin/python3 (the `python3` on
# PATH may be a pyenv shim); python3-venv brings its ensurepip. Reinstalled when the pins change.
#
# anyio (4.16, pinned) builds its lazy-import map with compile(..., PyCF_ONLY_AST) when a package is
# first imported; schemathesis first imports it deep inside a run, where Debian 12's Python 3.11.2
# sometimes fails with "SystemError: AST constructor recursion depth mismatch" (a bug of CPython
# 3.11's AST recursion accounting) and reports the operation it was testing as a runtime error.
# A .pth file imports anyio when the interpreter starts, so that compile never runs during a run.
install_schemathesis() {
  local venv=target/schemathesis-venv requirements=scripts/schemathesis-requirements.txt
  local preimport='import anyio, anyio.abc, anyio.from_thread'
  local site
  if ! [ -x "$venv/bin/schemathesis" ] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    install_schemathesis_venv "$venv" "$requirements"
  fi
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  echo "$preimport" >"$site/rootfix-preimport.pth"
  "$venv/bin/python" -c 'import sys; assert "anyio.abc" in sys.modules, "the .pth did not run"'
}

# The venv itself, from the pins (a fresh one: whatever was at $1 is removed).
install_schemathesis_venv() {
  local venv=$1 requirements=$2
  if ! [ -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
    log "installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  fi
  log "installing schemathesis into $venv"
  rm -rf "$venv"
  mkdir -p target
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
}

# Builds every action image offline (actions/build.sh; a no-op for images whose inputs did not
# change) and tells the tests they are built.
build_action_images() {
  docker info >/dev/null 2>&1 || { log "the docker engine does not answer (docker info)"; exit 1; }
  log "building the action images"
  bash actions/build.sh
  export ROOTFIX_ACTIONS_BUILT=1
}
