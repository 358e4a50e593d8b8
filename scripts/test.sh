#!/usr/bin/env bash
# The test command: installs what is missing, starts the test services (a throwaway PostgreSQL
# cluster with password auth, a signature-checking S3 mock (moto) and a real S3 implementation
# (Ceph RGW)), builds, and runs every test against them. Services stop on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# Each start's output is assigned before eval, so a service that fails to start stops the run here.
services=$(bash scripts/pg-cluster.sh start)
eval "$services"
cleanup() {
    bash scripts/pg-cluster.sh stop "$DRKIT_PG_DIR"
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
