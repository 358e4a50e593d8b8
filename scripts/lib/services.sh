# Shared by the scripts that start throwaway test services (sourced, not run).

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL's programs refuse root: as root, run them as the postgres user.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# stop_postgres DIR MODE: stops the server whose data is DIR/data (pg_ctl's -m MODE; the binaries named in
# DIR/bindir, else $bindir) and deletes DIR.
stop_postgres() {
    local dir=$1 mode=$2 binaries=${bindir:-}
    [ -f "$dir/bindir" ] && binaries=$(cat "$dir/bindir")
    if [ -d "$dir/data" ]; then
        as_postgres "$binaries/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}
