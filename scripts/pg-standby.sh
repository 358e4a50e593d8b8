#!/usr/bin/env bash
# A throwaway streaming standby of a test cluster (scripts/pg-cluster.sh), built with pg_basebackup -R.
#
#   eval "$(scripts/pg-standby.sh start)"   prints export lines: DRKIT_STANDBY_DIR, DRKIT_STANDBY_PORT
#   scripts/pg-standby.sh stop DIR           stops it and deletes DIR (the primary's slot is the caller's)
#
# The primary: DRKIT_TEST_PG{HOST,PORT,USER,PASSWORD}; its binaries: DRKIT_PG_BINDIR (default Debian's).
# DRKIT_STANDBY_SLOT (required) names the physical slot pg_basebackup creates on the primary. On
# PostgreSQL 17+ the standby synchronizes failover logical slots (sync_replication_slots, and
# hot_standby_feedback, which that needs); the primary's synchronized_standby_slots is the caller's.
set -euo pipefail

bindir=${DRKIT_PG_BINDIR:-$(pg_config --bindir)}

source "$(dirname "$0")/lib/services.sh"

case "${1:-}" in
start)
    slot=${DRKIT_STANDBY_SLOT:?DRKIT_STANDBY_SLOT names the physical slot to create}
    dir=$(mktemp -d /tmp/drkit-standby.XXXXXX)
    port=$(free_port)
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
    chmod 700 "$dir"
    major=$("$bindir/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
    # -R writes primary_conninfo with the password it used, and (pg_basebackup 17+) the dbname slot sync needs.
    as_postgres env PGPASSWORD="$DRKIT_TEST_PGPASSWORD" "$bindir/pg_basebackup" \
        -d "host=$DRKIT_TEST_PGHOST port=$DRKIT_TEST_PGPORT user=$DRKIT_TEST_PGUSER dbname=postgres" \
        -D "$dir/data" -R -C -S "$slot" -X stream --checkpoint=fast >"$dir/basebackup.log" 2>&1 \
        || { cat "$dir/basebackup.log" >&2; rm -rf "$dir"; exit 1; }
    {
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        echo "hot_standby = on"
        echo "hot_standby_feedback = on"
        if [ "$major" -ge 17 ]; then echo "sync_replication_slots = on"; fi
    } >> "$dir/data/postgresql.auto.conf"
    # The server outlives this script: it must not hold the caller's descriptors (a test harness that
    # waits for them to close would wait for the server). 255 is bash's own script descriptor.
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "$bindir" > "$dir/bindir"
    echo "export DRKIT_STANDBY_DIR='$dir'"
    echo "export DRKIT_STANDBY_PORT=$port"
    ;;
stop)
    stop_postgres "${2:?usage: pg-standby.sh stop DIR}" immediate
    ;;
*)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
