#!/usr/bin/env bash
# disaster_recovery.sh — the seed runbook's entry point, now a thin wrapper over `drkit drill`.
#
#   scripts/disaster_recovery.sh --restore-latest [--scenario FILE] [--evidence-dir DIR]
#                                [--storage-backends LIST] [--storage-region REGION] [--region-failover]
#                                [-- extra drkit drill flags]
#
# --restore-latest        restore the most recent backup (the default); --fresh-backup takes one first
# --storage-backends      accepted for compatibility with the old script; recorded in the log only
# --storage-region        sets AWS_REGION for S3 repositories
# --region-failover       run manifests/drills/region-failover.yaml instead: copy the backup from
#                         PRIMARY_REPO to SECONDARY_REPO, then restore from the second region alone
#                         (docs/runbooks/region-failover.md)
# Emits drkit's JSON report on stdout and fails (non-zero) when any drill criterion fails.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
drkit=${DRKIT:-drkit}
command -v "$drkit" >/dev/null 2>&1 || drkit="$here/.build/debug/drkit"

scenario="$here/manifests/drills/quarterly-dr.yaml"
evidence="evidence/dr-$(date -u +%Y%m%dT%H%M%SZ)"
mode=--restore-latest
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --restore-latest) mode=--restore-latest ;;
        --fresh-backup) mode=--fresh-backup ;;
        --scenario) scenario=$2; shift ;;
        --evidence-dir) evidence=$2; shift ;;
        --storage-backends) echo "disaster_recovery.sh: storage backends $2 (recorded only)" >&2; shift ;;
        --storage-region) export AWS_REGION=$2; shift ;;
        --region-failover) scenario="$here/manifests/drills/region-failover.yaml" ;;
        --) shift; extra=("$@"); break ;;
        *) echo "disaster_recovery.sh: unknown flag $1" >&2; exit 2 ;;
    esac
    shift
done
exec "$drkit" drill "$scenario" "$mode" --evidence-dir "$evidence" --json "${extra[@]}"
