#!/usr/bin/env bash
# The test command: installs what is missing, starts the test services (a throwaway PostgreSQL
# cluster with password auth, and a signature-checking S3 server), builds, and runs every test
# against them. Services stop on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
eval "$(bash scripts/pg-cluster.sh start)"
cleanup() {
    bash scripts/pg-cluster.sh stop "$DRKIT_PG_DIR"
    [ -z "${DRKIT_S3_DIR:-}" ] || bash scripts/s3-server.sh stop "$DRKIT_S3_DIR"
}
trap cleanup EXIT
eval "$(bash scripts/s3-server.sh start)"

swift build --build-tests
swift test --skip-build "$@"
