#!/usr/bin/env bash
# The main job on the embedded default: a throwaway PostgreSQL with sample data, a local directory
# repository, and a full rehearsal: encrypted backup -> verify -> restore into a scratch database ->
# row-count and checksum parity. Evidence goes to demo-out/ (or $DRKIT_DEMO_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${DRKIT_DEMO_OUT:-$PWD/demo-out}
rm -rf "$out"
mkdir -p "$out"
log="$out/backup.log"
say() { echo "== $*" | tee -a "$log" >&2; }

bash scripts/setup.sh
say "building drkit"
swift build --product drkit 2>&1 | tail -n 1 >&2
drkit="$(swift build --show-bin-path)/drkit"

say "starting a throwaway PostgreSQL cluster (127.0.0.1, scram password auth)"
eval "$(bash scripts/pg-cluster.sh start)"
trap 'bash scripts/pg-cluster.sh stop "$DRKIT_PG_DIR"' EXIT
conn="host=$DRKIT_TEST_PGHOST port=$DRKIT_TEST_PGPORT user=$DRKIT_TEST_PGUSER password=$DRKIT_TEST_PGPASSWORD"

say "loading sample data into database 'shop'"
PGPASSWORD=$DRKIT_TEST_PGPASSWORD "$(pg_config --bindir)/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$DRKIT_TEST_PGHOST" -p "$DRKIT_TEST_PGPORT" -U postgres -d postgres -c "CREATE DATABASE shop" >/dev/null
PGPASSWORD=$DRKIT_TEST_PGPASSWORD "$(pg_config --bindir)/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$DRKIT_TEST_PGHOST" -p "$DRKIT_TEST_PGPORT" -U postgres -d shop -f scripts/sample-data.sql >/dev/null

run() { say "drkit $1"; "$drkit" "$@" 2>&1 | tee -a "$log"; }
run key generate --out "$out/demo.key"
run backup --db "$conn dbname=shop" --repo "$out/repo" --key-file "$out/demo.key" --jobs 2
run list --repo "$out/repo"
say "drkit verify"
"$drkit" verify latest --repo "$out/repo" --key-file "$out/demo.key" --json > "$out/verify.json"
say "drkit restore"
"$drkit" restore latest --repo "$out/repo" --key-file "$out/demo.key" --target "$conn dbname=shop_restored" --jobs 2 2>&1 | tee -a "$log"
run parity --source "$conn dbname=shop" --target "$conn dbname=shop_restored" --checksum --csv "$out/rowcount.csv"

say "rehearsal passed. Evidence in $out:"
ls -1 "$out" | sed 's/^/   /' >&2
