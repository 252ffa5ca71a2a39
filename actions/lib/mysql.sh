# Shared by the MySQL/MariaDB actions: runs SQL through the `mariadb` client copied into the image.
# Credentials never travel as params: they come from a client option file mounted read only at
# /rootfix/secrets/client.cnf (`[client]` user=..., password=...).
. /rootfix/lib/common.sh

MYSQL_SECRETS=/rootfix/secrets/client.cnf

# sql ADDRESS QUERY: runs QUERY against ADDRESS (host:port, checked by the caller) over TCP and
# prints the rows tab-separated, without column names. Extra args go to the client (e.g. --force).
sql() {
  _addr=$1
  _query=$2
  shift 2
  [ -r "$MYSQL_SECRETS" ] || die "no database credentials at $MYSQL_SECRETS (mount a client option file there)"
  timeout 30 mariadb --defaults-file="$MYSQL_SECRETS" --protocol=TCP \
    --host="${_addr%:*}" --port="${_addr##*:}" --connect-timeout=5 \
    --batch --skip-column-names "$@" --execute="$_query"
}

# sql_value ADDRESS QUERY: the first column of the first row; dies when the query fails.
sql_value() {
  _out=$(sql "$1" "$2") || die "query failed on $1"
  printf '%s\n' "$_out" | head -n 1 | cut -f1
}
