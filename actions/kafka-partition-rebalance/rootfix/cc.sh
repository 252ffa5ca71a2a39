# Shared by the phases of kafka-partition-rebalance: Cruise Control's REST API through busybox wget,
# its JSON through jq.
. /rootfix/lib/common.sh

CC_URL=${ROOTFIX_PARAM_CRUISE_CONTROL_URL:-}
TOPICS=${ROOTFIX_PARAM_TOPICS:-orders,payments}
MAX_URP=${ROOTFIX_PARAM_MAX_URP:-0}

need_param cruise_control_url "$CC_URL"
check_param cruise_control_url "$CC_URL" 'http://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/?'
check_param topics "$TOPICS" '[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*'
check_param max_urp "$MAX_URP" '[0-9]{1,5}'

STATE=$(state_dir) || exit 1
API="${CC_URL%/}/kafkacruisecontrol"
STARTED="$STATE/rebalance.started" # execute started the rebalance of this fix (holds its task id)

# The topics as an anchored Java regex, URL-encoded: orders,payments -> ^(orders|payments)$
TOPIC_ALT=$(printf '%s' "$TOPICS" | sed -e 's/\./\\./g' -e 's/,/|/g')
# urlencode TEXT: percent-encodes the regex characters these values can hold (topic names are only
# [A-Za-z0-9._-], all unreserved).
urlencode() {
  printf '%s' "$1" | sed -e 's/\\/%5C/g' -e 's/\^/%5E/g' -e 's/(/%28/g' -e 's/)/%29/g' \
    -e 's/|/%7C/g' -e 's/\$/%24/g' -e 's/?/%3F/g' -e 's/!/%21/g' -e 's/\*/%2A/g'
}
TOPIC_RE=$(urlencode "^($TOPIC_ALT)\$")
# Everything but the topics: what a rebalance must not move.
OTHER_TOPICS_RE=$(urlencode "^(?!($TOPIC_ALT)\$).*")

# cc METHOD PATH_AND_QUERY [USER_TASK_ID]: the response body on stdout; CC_STATUS and CC_TASK
# (the User-Task-ID header) in the files $STATE/.status and $STATE/.task. Fails on no answer or
# a status >= 400.
cc() {
  _headers=$(mktemp /tmp/cc.h.XXXXXX)
  _body=$(mktemp /tmp/cc.b.XXXXXX)
  if [ "$1" = POST ]; then
    set -- "$2" "${3:-}" --post-data ''
  else
    set -- "$2" "${3:-}"
  fi
  _path=$1
  _task=$2
  shift 2
  if [ -n "$_task" ]; then set -- "$@" --header "User-Task-ID: $_task"; fi
  timeout 60 wget -S -q -O "$_body" "$@" -- "$API/$_path" 2>"$_headers"
  _rc=$?
  sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$_headers" | tail -n 1 >"$STATE/.status"
  grep -i '^ *user-task-id:' "$_headers" | tail -n 1 | sed 's/^[^:]*://' | tr -cd 'A-Za-z0-9-' >"$STATE/.task"
  if [ "$_rc" -ne 0 ]; then
    log "$API/$_path: $(grep -v '^ ' "$_headers" | head -c 300 | tr '\n' ' ') (status $(cat "$STATE/.status"))"
    return 1
  fi
  cat "$_body"
}

# cc_wait METHOD PATH: repeats a request Cruise Control answers 202 (still computing) with the
# same User-Task-ID until the final answer (at most ~5 min); the final body on stdout.
cc_wait() {
  _out=$(cc "$1" "$2") || return 1
  _n=0
  while [ "$(cat "$STATE/.status")" = 202 ]; do
    _n=$((_n + 1))
    [ "$_n" -le 150 ] || { log "$2: still in progress after 5 min"; return 1; }
    _t=$(cat "$STATE/.task")
    [ -n "$_t" ] || { log "$2: 202 without a User-Task-ID"; return 1; }
    sleep 2
    _out=$(cc "$1" "$2" "$_t") || return 1
  done
  printf '%s\n' "$_out"
}

# executor_state: NO_TASK_IN_PROGRESS, ..._IN_PROGRESS, STOPPING_EXECUTION, ...
executor_state() {
  cc GET 'state?substates=executor&json=true' | jq -er '.ExecutorState.state' ||
    die "cannot read the executor state from $API/state"
}

# urp_count: under-replicated partitions of the topics (filtered again here, whatever the server
# did with the topic parameter).
urp_count() {
  cluster_state | TOPICS=$TOPICS jq -er '
    (env.TOPICS | split(",")) as $t
    | [.KafkaPartitionState.urp[] | select(.topic as $x | $t | index($x))] | length' ||
    die "cannot read the under-replicated partitions from $API/kafka_cluster_state"
}

cluster_state() {
  cc GET "kafka_cluster_state?json=true&topic=$TOPIC_RE"
}
