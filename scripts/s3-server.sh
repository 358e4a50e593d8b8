#!/usr/bin/env bash
# A throwaway S3-compatible server (moto) on 127.0.0.1 that verifies SigV4 signatures.
#
#   eval "$(scripts/s3-server.sh start DIR)"   prints export lines: DRKIT_S3_DIR, DRKIT_TEST_S3_ENDPOINT,
#                                                DRKIT_TEST_S3_BUCKET, DRKIT_TEST_S3_ACCESS_KEY, DRKIT_TEST_S3_SECRET_KEY
#   scripts/s3-server.sh stop DIR
#
# moto allows the first INITIAL_NO_AUTH_ACTION_COUNT=3 calls unsigned: IAM create-user, an inline
# allow-all policy, and create-access-key. Every later request must carry a valid signature.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/services.sh"

case "${1:-}" in
start)
    dir=${2:-$(mktemp -d /tmp/drkit-s3.XXXXXX)}
    mkdir -p "$dir"
    port=$(free_port)
    INITIAL_NO_AUTH_ACTION_COUNT=3 nohup python3 "$here/moto_server.py" -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    # Probe with a bare TCP connect: an HTTP request would use up one of the unsigned calls.
    for _ in $(seq 1 150); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
        sleep 0.1
    done
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.5)" 2>/dev/null \
        || { echo "s3-server: moto did not start:" >&2; cat "$dir/server.log" >&2; exit 1; }
    endpoint="http://127.0.0.1:$port"
    aws_() { AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url "$endpoint" "$@"; }
    aws_ iam create-user --user-name drkit-test >/dev/null
    aws_ iam put-user-policy --user-name drkit-test --policy-name allow-all \
        --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
    aws_ iam create-access-key --user-name drkit-test --output json >"$dir/access-key.json"
    chmod 600 "$dir/access-key.json"
    read -r key secret < <(python3 -c "import json; k=json.load(open('$dir/access-key.json'))['AccessKey']; print(k['AccessKeyId'], k['SecretAccessKey'])")
    AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1 \
        aws --endpoint-url "$endpoint" s3api create-bucket --bucket drkit-test >/dev/null
    echo "export DRKIT_S3_DIR='$dir'"
    echo "export DRKIT_TEST_S3_ENDPOINT='$endpoint'"
    echo "export DRKIT_TEST_S3_BUCKET=drkit-test"
    echo "export DRKIT_TEST_S3_ACCESS_KEY='$key'"
    echo "export DRKIT_TEST_S3_SECRET_KEY='$secret'"
    ;;
stop)
    dir=${2:?usage: s3-server.sh stop DIR}
    if [ -f "$dir/pid" ]; then kill "$(cat "$dir/pid")" 2>/dev/null || true; fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
