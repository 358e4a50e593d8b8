#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 with scram-sha-256 password auth.
#
#   eval "$(scripts/pg-cluster.sh start [DIR])"   prints export lines: DRKIT_PG_DIR, DRKIT_TEST_PG{HOST,PORT,USER,PASSWORD}
#   scripts/pg-cluster.sh stop DIR                 stops it and deletes DIR
#
# DRKIT_PG_PORT picks the port (default: a free one). DRKIT_PG_DURABLE=1 keeps fsync on (benchmarks).
# DRKIT_PG_WAL_LEVEL sets wal_level (default logical, which `drkit stream` needs; replica to test its refusal).
# DRKIT_PG_MAX_LOCKS sets max_locks_per_transaction (default 64, PostgreSQL's; a small lock table for the tests
# of many tables). DRKIT_PG_BINDIR picks the server binaries (default: Debian's, from pg_config); DRKIT_PG_ENV_NAME=PG18
# names the printed variables DRKIT_PG18_DIR and DRKIT_TEST_PG18_{HOST,PORT,USER,PASSWORD} instead.
set -euo pipefail

bindir=${DRKIT_PG_BINDIR:-$(pg_config --bindir)}
[ -x "$bindir/initdb" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
name=${DRKIT_PG_ENV_NAME:-}
dir_var=DRKIT_${name:-PG}_DIR
test_prefix=DRKIT_TEST_${name:+${name}_}PG

source "$(dirname "$0")/lib/services.sh"

case "${1:-}" in
start)
    dir=${2:-$(mktemp -d /tmp/drkit-pg.XXXXXX)}
    mkdir -p "$dir"
    port=${DRKIT_PG_PORT:-$(free_port)}
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    printf '%s\n' "$password" > "$dir/pwfile"
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$dir"; fi
    chmod 700 "$dir"
    as_postgres "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
        --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/pwfile"
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        echo "max_connections = 100"
        echo "shared_buffers = 256MB"
        echo "max_wal_size = 2GB"
        echo "wal_level = ${DRKIT_PG_WAL_LEVEL:-logical}"
        echo "max_replication_slots = 20"
        echo "max_wal_senders = 20"
        echo "autovacuum = ${DRKIT_PG_AUTOVACUUM:-on}"
        echo "max_locks_per_transaction = ${DRKIT_PG_MAX_LOCKS:-64}"
        if [ "${DRKIT_PG_DURABLE:-0}" != 1 ]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } >> "$dir/data/postgresql.conf"
    as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "$bindir" > "$dir/bindir"
    echo "export $dir_var='$dir'"
    echo "export ${test_prefix}HOST=127.0.0.1"
    echo "export ${test_prefix}PORT=$port"
    echo "export ${test_prefix}USER=postgres"
    echo "export ${test_prefix}PASSWORD='$password'"
    ;;
stop)
    stop_postgres "${2:?usage: pg-cluster.sh stop DIR}" fast
    ;;
*)
    echo "usage: $0 start [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
