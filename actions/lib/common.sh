# Shared by every action's phase scripts; installed in each image as /rootfix/lib/common.sh.
# POSIX sh for busybox ash. Params are data: they are only ever expanded inside double quotes,
# checked again here before they reach a file, SQL text or a URL, and never evaluated.

# ROOTFIX_ACTION/ROOTFIX_PHASE prefix every progress line on stderr; stdout is for evidence JSON.
log() {
  printf '%s %s: %s\n' "${ROOTFIX_ACTION:-action}" "${ROOTFIX_PHASE:-phase}" "$*" >&2
}

# die MESSAGE [CODE]: logs and exits (default 1: the phase failed).
die() {
  log "$1"
  exit "${2:-1}"
}

# Exit codes of the phase contract.
EXIT_OK=0
EXIT_ALREADY_HEALTHY=3

# check_param NAME VALUE ERE: the whole VALUE (one line) must match the extended regex ERE.
# The orchestrator checked the action.yaml pattern already; this is the script's own defence.
check_param() {
  case $2 in
    *'
'*) die "param $1: refused (contains a newline)" 2 ;;
  esac
  printf '%s\n' "$2" | grep -Eqx -- "$3" || die "param $1: refused \`$2\` (must match $3)" 2
}

# need_param NAME VALUE: VALUE must be set and non-empty.
need_param() {
  [ -n "$2" ] || die "param $1 is required (ROOTFIX_PARAM_$(printf '%s' "$1" | tr a-z A-Z))" 2
}

# The per-fix state dir shared by the phases of one fix (precheck saves what rollback needs).
state_dir() {
  [ -n "${ROOTFIX_STATE_DIR:-}" ] || die "ROOTFIX_STATE_DIR is not set"
  [ -d "$ROOTFIX_STATE_DIR" ] && [ -w "$ROOTFIX_STATE_DIR" ] ||
    die "state dir $ROOTFIX_STATE_DIR is not a writable directory"
  printf '%s' "$ROOTFIX_STATE_DIR"
}

# write_atomic TARGET SOURCE: replaces TARGET by a copy of SOURCE through a temporary file in
# TARGET's folder and a rename, so a reader sees the old or the new file, never half of one.
# Keeps TARGET's mode and owner.
write_atomic() {
  _wa_dir=$(dirname -- "$1")
  _wa_tmp="$_wa_dir/.rootfix.$$.tmp"
  cp -- "$2" "$_wa_tmp" || die "cannot write $_wa_tmp"
  if [ -e "$1" ]; then
    chmod "$(stat -c %a -- "$1")" "$_wa_tmp" 2>/dev/null || true
    chown "$(stat -c %u:%g -- "$1")" "$_wa_tmp" 2>/dev/null || true
  fi
  mv -f -- "$_wa_tmp" "$1" || { rm -f -- "$_wa_tmp"; die "cannot replace $1"; }
}

# http_status URL [SECONDS]: prints the HTTP status of a GET to URL (000 when no response came
# within SECONDS, default 5). busybox wget's own -T segfaults in Debian's busybox 1.35, hence
# `timeout`.
http_status() {
  _hs=$(timeout "${2:-5}" wget -S -q -O /dev/null -- "$1" 2>&1 | sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' | tail -n 1)
  printf '%s\n' "${_hs:-000}"
}

# json_escape: stdin to a JSON string body on stdout (no quotes around it).
json_escape() {
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' | tr -d '\r' | awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'
}

# now_ms: milliseconds since the epoch with microseconds (adjtimex only reads the clock; busybox
# date has no %N).
now_ms() {
  adjtimex | awk '/time.tv_sec/ { s = $2 } /time.tv_usec/ { u = $2 } END { printf "%.3f\n", s * 1000 + u / 1000 }'
}
