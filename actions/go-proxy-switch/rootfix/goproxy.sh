# Shared by the phases of go-proxy-switch.
. /rootfix/lib/common.sh

GROUP=${ROOTFIX_PARAM_RUNNER_GROUP:-}
CHAIN=${ROOTFIX_PARAM_GOPROXY:-}
MODULE=${ROOTFIX_PARAM_PROBE_MODULE:-golang.org/x/text}
VERSION=${ROOTFIX_PARAM_PROBE_VERSION:-v0.14.0}

need_param runner_group "$GROUP"
need_param goproxy "$CHAIN"
check_param runner_group "$GROUP" '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?'
check_param goproxy "$CHAIN" '(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?,)+direct'
check_param probe_module "$MODULE" '[a-z0-9][a-z0-9.-]*(/[a-z0-9][a-z0-9._~-]*)*'
check_param probe_version "$VERSION" 'v[0-9]+\.[0-9]+\.[0-9]+(-[0-9a-z.-]+)?(\+incompatible)?'

ENV_FILE="/runners/$GROUP.env"
STATE=$(state_dir) || exit 1
SAVED_LINE="$STATE/goproxy.line"     # the GOPROXY line as precheck found it
SAVED_ABSENT="$STATE/goproxy.absent" # precheck found no GOPROXY line

# goproxy_lines FILE: the GOPROXY assignments of an environment file (`export ` allowed).
goproxy_lines() {
  grep -E '^[[:space:]]*(export[[:space:]]+)?GOPROXY=' "$1" || true
}

# value_of LINE: the value of one `GOPROXY=...` line, without surrounding quotes.
value_of() {
  printf '%s\n' "$1" | sed -e 's/^[^=]*=//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}

# with_goproxy FILE LINE: FILE with its first GOPROXY line replaced by LINE and later ones
# dropped (LINE appended when there was none; LINE empty: every GOPROXY line dropped).
with_goproxy() {
  RF_LINE=$2 awk '
    BEGIN { line = ENVIRON["RF_LINE"] }
    /^[ \t]*(export[ \t]+)?GOPROXY=/ { if (!done && line != "") print line; done = 1; next }
    { print }
    END { if (!done && line != "") print line }' "$1"
}

# probe PROXY: GET PROXY/<module>/@v/<version>.info over verified TLS; true when it answers 200
# with a JSON object naming the version.
probe() {
  _url="$1/$MODULE/@v/$VERSION.info"
  _body=$(mktemp /tmp/info.XXXXXX)
  _code=$(curl -sS --proto '=https' --max-time 10 --max-filesize 65536 -o "$_body" -w '%{http_code}' -- "$_url" 2>/tmp/curl.err) || _code=000
  if [ "$_code" != 200 ]; then
    log "probe $_url: status $_code $(head -c 300 /tmp/curl.err | tr '\n' ' ')"
    return 1
  fi
  if ! tr -d ' \n\r\t' <"$_body" | grep -q "^{.*\"Version\":\"$VERSION\""; then
    log "probe $_url: 200 but not a .info JSON for $VERSION: $(head -c 200 "$_body" | tr '\n' ' ')"
    return 1
  fi
  log "probe $_url: ok"
  return 0
}

first_proxy() {
  printf '%s\n' "${CHAIN%%,*}"
}
