# Shared by the phases of nginx-upstream-failover: params, the upstream file, nginx's master.
. /rootfix/lib/common.sh

UPSTREAM=${ROOTFIX_PARAM_UPSTREAM:-}
UPSTREAM_FILE=${ROOTFIX_PARAM_UPSTREAM_FILE:-}
PID_FILE=${ROOTFIX_PARAM_PID_FILE:-/nginx/run/nginx.pid}
FRONT_URL=${ROOTFIX_PARAM_FRONT_URL:-}
HEALTH_PATH=${ROOTFIX_PARAM_HEALTH_PATH:-/}
REQUESTS=${ROOTFIX_PARAM_REQUESTS:-20}

need_param upstream "$UPSTREAM"
need_param upstream_file "$UPSTREAM_FILE"
check_param upstream "$UPSTREAM" '[A-Za-z0-9_-]{1,64}'
check_param upstream_file "$UPSTREAM_FILE" '/nginx/conf\.d/[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
check_param pid_file "$PID_FILE" '/nginx/run/[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
check_param health_path "$HEALTH_PATH" '/[A-Za-z0-9._~/%=&?-]{0,255}'
check_param requests "$REQUESTS" '[1-9][0-9]{0,2}'
if [ -n "$FRONT_URL" ]; then
  check_param front_url "$FRONT_URL" 'http://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/%=&?-]*)?'
fi

STATE=$(state_dir) || exit 1
SAVED="$STATE/upstream.orig"       # the file as precheck found it
WRITTEN="$STATE/upstream.written"  # the file as execute left it
FAILING="$STATE/failing"           # servers precheck found failing, one a line

# upstream_servers FILE: one line per server of the upstream: `ADDR up|down|backup`.
# Comments are ignored; the block is found by name at any nesting level.
upstream_servers() {
  NGX_UPSTREAM=$UPSTREAM awk '
    BEGIN { want = ENVIRON["NGX_UPSTREAM"] }
    {
      line = $0; sub(/#.*/, "", line)
      n = split(line, f, /[ \t]+/); i = 1; if (f[1] == "") i = 2
      if (!inside) {
        name = f[i + 1]; sub(/\{$/, "", name)
        if (f[i] == "upstream" && name == want) { inside = 1; depth = 0 }
      }
      if (inside) {
        if (f[i] == "server" && depth == 1) {
          addr = f[i + 1]; sub(/;$/, "", addr); state = "up"
          for (k = i + 2; k <= n; k++) {
            w = f[k]; sub(/;$/, "", w)
            if (w == "down") state = "down"
            else if (w == "backup" && state == "up") state = "backup"
          }
          print addr, state
        }
        depth += gsub(/\{/, "{", line); depth -= gsub(/\}/, "}", line)
        if (depth <= 0 && line ~ /\}/) exit
      }
    }' "$1"
}

# mark_down FILE ADDRS: FILE with ` down` added to the server lines of ADDRS (space separated)
# inside the upstream, on stdout. Lines already down and everything else stay byte for byte.
mark_down() {
  NGX_UPSTREAM=$UPSTREAM NGX_DOWN=" $2 " awk '
    BEGIN { want = ENVIRON["NGX_UPSTREAM"]; down = ENVIRON["NGX_DOWN"] }
    {
      orig = $0; line = $0; sub(/#.*/, "", line)
      n = split(line, f, /[ \t]+/); i = 1; if (f[1] == "") i = 2
      if (!inside) {
        name = f[i + 1]; sub(/\{$/, "", name)
        if (f[i] == "upstream" && name == want) { inside = 1; depth = 0 }
      }
      if (inside) {
        if (f[i] == "server" && depth == 1) {
          addr = f[i + 1]; sub(/;$/, "", addr); isdown = 0
          for (k = i + 2; k <= n; k++) { w = f[k]; sub(/;$/, "", w); if (w == "down") isdown = 1 }
          semi = 0
          for (k = length(line); k > 0; k--) if (substr(line, k, 1) == ";") { semi = k; break }
          if (!isdown && semi > 0 && index(down, " " addr " ") > 0)
            orig = substr(orig, 1, semi - 1) " down" substr(orig, semi)
        }
        depth += gsub(/\{/, "{", line); depth -= gsub(/\}/, "}", line)
        if (depth <= 0 && line ~ /\}/) inside = 0
      }
      print orig
    }' "$1"
}

# probe_server ADDR: prints the HTTP status of GET http://ADDR<health_path> (000: no answer).
probe_server() {
  case $1 in
    unix:* | \[*) printf 'skip\n'; return ;;
  esac
  if ! printf '%s\n' "$1" | grep -Eqx '[A-Za-z0-9.-]+(:[0-9]{1,5})?'; then
    printf 'skip\n'
    return
  fi
  http_status "http://$1$HEALTH_PATH" 3
}

# master_pid: the pid in the pid file, if it is a running nginx master; dies otherwise.
master_pid() {
  [ -f "$PID_FILE" ] || die "no pid file at $PID_FILE (is nginx running, and mounted?)"
  _pid=$(head -n 1 "$PID_FILE" | tr -d ' \r')
  case $_pid in
    '' | *[!0-9]*) die "pid file $PID_FILE holds no pid" ;;
  esac
  [ -r "/proc/$_pid/cmdline" ] || die "nginx master $_pid is not running (or this container lacks the host PID namespace)"
  tr '\0' ' ' <"/proc/$_pid/cmdline" | grep -q '^nginx: master process' ||
    die "process $_pid is not an nginx master; refusing to signal it"
  printf '%s\n' "$_pid"
}

# children: the pids whose parent is $_parent, sorted (fields after `comm)`: state, ppid, ...).
children() {
  for _st in /proc/[0-9]*/stat; do
    read -r _line <"$_st" 2>/dev/null || continue
    _rest=${_line##*) }
    # shellcheck disable=SC2086
    set -- $_rest
    [ "${2:-}" = "$_parent" ] && printf '%s\n' "${_st#/proc/}" | cut -d/ -f1
  done | sort -n
}

# reload: SIGHUP to the master, then waits (up to 15 s) for a new generation of workers, which
# nginx starts only once it has read and accepted the new configuration.
reload() {
  _master=$(master_pid) || exit 1
  _parent=$_master
  _before=$(children)
  kill -HUP "$_master" || die "cannot signal nginx master $_master"
  _tries=0
  while [ "$_tries" -lt 150 ]; do
    sleep 0.1
    _tries=$((_tries + 1))
    [ -r "/proc/$_master/cmdline" ] || die "nginx master $_master exited during the reload"
    for _c in $(children); do
      if ! printf '%s\n' "$_before" | grep -qx "$_c"; then
        tr '\0' ' ' <"/proc/$_c/cmdline" 2>/dev/null | grep -q 'worker process' || continue
        log "nginx (master $_master) reloaded: new worker $_c"
        return 0
      fi
    done
  done
  die "nginx (master $_master) started no new workers within 15 s: it rejected the configuration? (see its error log)"
}

# measure_front: sends REQUESTS GETs to FRONT_URL; prints `OK TOTAL`.
measure_front() {
  _ok=0
  _n=0
  while [ "$_n" -lt "$REQUESTS" ]; do
    _n=$((_n + 1))
    case $(http_status "$FRONT_URL" 5) in
      2??) _ok=$((_ok + 1)) ;;
    esac
  done
  printf '%s %s\n' "$_ok" "$REQUESTS"
}
