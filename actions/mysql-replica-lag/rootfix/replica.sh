# Shared by the phases of mysql-replica-lag: which global variable the mode sets, and to what.
. /rootfix/lib/mysql.sh

ADDRESS=${ROOTFIX_PARAM_REPLICA_ADDRESS:-}
MODE=${ROOTFIX_PARAM_MODE:-slow-query-throttle}
MAX_MS=${ROOTFIX_PARAM_MAX_EXECUTION_MS:-2000}

need_param replica_address "$ADDRESS"
check_param replica_address "$ADDRESS" '[A-Za-z0-9.-]+:[0-9]{1,5}'
check_param mode "$MODE" 'read-only|slow-query-throttle'
check_param max_execution_ms "$MAX_MS" '[1-9][0-9]{0,5}'

STATE=$(state_dir) || exit 1
SAVED="$STATE/saved" # `VARIABLE VALUE` as precheck found it

# variable_value NAME: the global value of NAME (empty when the server has no such variable).
variable_value() {
  sql "$ADDRESS" "SHOW GLOBAL VARIABLES LIKE '$1'" | cut -f2
}

# pick_variable: sets VAR (the variable this mode changes on this server) and TARGET (its value).
pick_variable() {
  case $MODE in
    slow-query-throttle)
      if [ -n "$(variable_value max_execution_time)" ]; then
        VAR=max_execution_time # MySQL: milliseconds, SELECT only
        TARGET=$MAX_MS
      else
        VAR=max_statement_time # MariaDB: seconds, any statement
        TARGET=$(awk -v ms="$MAX_MS" 'BEGIN { printf "%.6f", ms / 1000 }')
      fi
      ;;
    read-only)
      if [ -n "$(variable_value super_read_only)" ]; then VAR=super_read_only; else VAR=read_only; fi
      TARGET=ON
      ;;
  esac
  [ -n "$(variable_value "$VAR")" ] || die "cannot read @@GLOBAL.$VAR on $ADDRESS"
}

# same A B: true when two values of the variable are equal (numbers compared as numbers).
same() {
  case $1$2 in
    *[!0-9.]*) [ "$(printf '%s' "$1" | tr a-z A-Z)" = "$(printf '%s' "$2" | tr a-z A-Z)" ] ;;
    *) awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 == b + 0) }' ;;
  esac
}

# set_global NAME VALUE: SET GLOBAL with a value that can only be ON, OFF or a number.
set_global() {
  check_param "$1 value" "$2" 'ON|OFF|[0-9]{1,12}(\.[0-9]{1,6})?'
  sql "$ADDRESS" "SET GLOBAL $1 = $2" || die "SET GLOBAL $1 = $2 failed on $ADDRESS"
}

# lag: the replica's Seconds_Behind_Master, or `none` when it replicates from nothing.
lag() {
  _status=$(sql "$ADDRESS" "SHOW SLAVE STATUS" --vertical 2>/dev/null || true)
  _lag=$(printf '%s\n' "$_status" | sed -n 's/^ *Seconds_Behind_Master: //p')
  printf '%s\n' "${_lag:-none}"
}
