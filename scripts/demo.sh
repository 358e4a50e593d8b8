#!/usr/bin/env bash
# The main job on the embedded default: a throwaway PostgreSQL with sample data, a local directory
# repository, and a full DR drill: encrypted backup -> verify -> restore into a scratch database ->
# smoke checks -> row-count parity -> teardown, with RTO/RPO measured; then the region-failover drill
# (copy to a second repository, lose the primary, restore from the copy). Evidence goes to
# demo-out/evidence/ and demo-out/evidence-failover/ (or under $DRKIT_DEMO_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${DRKIT_DEMO_OUT:-$PWD/demo-out}
rm -rf "$out"
mkdir -p "$out"
log="$out/demo.log"
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

say "drkit key generate"
"$drkit" key generate --out "$out/demo.key" 2>&1 | tee -a "$log"
say "drkit drill: fresh encrypted backup -> verify -> restore to a scratch database -> smoke checks -> parity -> teardown"
set +e
"$drkit" drill --name embedded-demo --db "$conn dbname=shop" --repo "$out/repo" --key-file "$out/demo.key" --fresh-backup \
    --smoke manifests/drills/smoke/basic.sql --max-rto-seconds 600 --max-rpo-minutes 60 \
    --environment "embedded demo" --evidence-dir "$out/evidence" --metrics-file "$out/evidence/drkit_drill.prom" \
    --audit-file "$out/audit.jsonl" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
set -e
"$drkit" list --repo "$out/repo" 2>&1 | tee -a "$log"
[ "$status" -eq 0 ] || { say "drill FAILED (exit $status); evidence in $out/evidence"; exit "$status"; }

say "drkit drill region-failover: copy the latest backup to a second region (here a directory), lose the primary, restore from the copy"
set +e
SOURCE_DATABASE_URL="$conn dbname=shop" PRIMARY_REPO="$out/repo" SECONDARY_REPO="$out/second-region" DRKIT_KEY_FILE="$out/demo.key" \
    "$drkit" drill manifests/drills/region-failover.yaml --restore-latest --environment "embedded demo" \
    --evidence-dir "$out/evidence-failover" --audit-file "$out/audit.jsonl" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { say "region-failover drill FAILED (exit $status); evidence in $out/evidence-failover"; exit "$status"; }
say "rehearsals passed. Evidence in $out/evidence and $out/evidence-failover:"
ls -1 "$out/evidence" | sed 's/^/   /' >&2
say "read $out/evidence/drill-record.md for the drill record; drkit audit verify --audit-file $out/audit.jsonl checks the audit trail"
