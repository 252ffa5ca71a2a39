# Shared by the phases of fix-db-leak.
. /rootfix/lib/mysql.sh

DB_ADDRESS=${ROOTFIX_PARAM_DB_ADDRESS:-}
DB_USER=${ROOTFIX_PARAM_DB_USER:-}
IDLE_SECONDS=${ROOTFIX_PARAM_IDLE_SECONDS:-300}
MAX_LEAKED=${ROOTFIX_PARAM_MAX_LEAKED:-0}

need_param db_address "$DB_ADDRESS"
need_param db_user "$DB_USER"
check_param db_address "$DB_ADDRESS" '[A-Za-z0-9.-]+:[0-9]{1,5}'
# The user goes into SQL text as a quoted literal: only letters, digits and `_` ever get there.
check_param db_user "$DB_USER" '[A-Za-z_][A-Za-z0-9_]{0,62}'
check_param idle_seconds "$IDLE_SECONDS" '[0-9]{1,5}'
check_param max_leaked "$MAX_LEAKED" '[0-9]{1,4}'

STATE=$(state_dir) || exit 1

# Connections of the user idle (`Sleep`) for at least idle_seconds, never our own.
LEAKED_WHERE="USER = '$DB_USER' AND COMMAND = 'Sleep' AND TIME >= $IDLE_SECONDS AND ID <> CONNECTION_ID()"

# counts: prints `TOTAL LEAKED` for the user.
counts() {
  _row=$(sql "$DB_ADDRESS" "SELECT COUNT(*), COALESCE(SUM($LEAKED_WHERE), 0) FROM information_schema.PROCESSLIST WHERE USER = '$DB_USER' AND ID <> CONNECTION_ID()") ||
    die "cannot read the process list of $DB_ADDRESS"
  printf '%s\n' "$_row" | head -n 1 | tr '\t' ' '
}
