# Shared by the phases of http-set-value: the params, checked again, and the two requests.
. /rootfix/lib/common.sh

URL=${ROOTFIX_PARAM_URL:-}
VALUE=${ROOTFIX_PARAM_VALUE:-}
METHOD=${ROOTFIX_PARAM_METHOD:-PUT}

need_param url "$URL"
need_param value "$VALUE"
check_param url "$URL" 'https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?(\?[A-Za-z0-9._~%=&-]*)?'
check_param value "$VALUE" '[A-Za-z0-9._:-]{1,256}'
check_param method "$METHOD" 'PUT|POST'

STATE=$(state_dir) || exit 1
SAVED="$STATE/saved" # the value precheck found, byte for byte
SECRETS=/rootfix/secrets
# The longest value saved and restored (a flag, not a document).
MAX_BYTES=4096

# The options every request takes: fail on an HTTP error with its status, bounded time, the
# token as a header read from a file (never on the command line), the CA bundle when given.
curl_opts() {
  set -- --silent --show-error --fail --max-time 10 --connect-timeout 5 --proto '=http,https'
  if [ -f "$SECRETS/token" ]; then
    printf 'Authorization: Bearer %s\n' "$(tr -d '\r\n' <"$SECRETS/token")" >/tmp/auth-header
    set -- "$@" --header @/tmp/auth-header
  fi
  [ -f "$SECRETS/ca.crt" ] && set -- "$@" --cacert "$SECRETS/ca.crt"
  printf '%s\n' "$@"
}

# get_value FILE: GET the value into FILE (exit status non-zero on any failure).
get_value() {
  # shellcheck disable=SC2046
  curl $(curl_opts) --output "$1" -- "$URL"
}

# put_value FILE: write FILE's bytes as the value.
put_value() {
  # shellcheck disable=SC2046
  curl $(curl_opts) --request "$METHOD" --header 'Content-Type: text/plain' \
    --data-binary "@$1" --output /dev/null -- "$URL"
}

# same_as_target FILE: the file holds the target value (a trailing newline ignored).
same_as_target() {
  [ "$(cat "$1")" = "$VALUE" ]
}
