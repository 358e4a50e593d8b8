#!/usr/bin/env bash
# A throwaway Ceph RADOS Gateway on 127.0.0.1: a real S3 implementation (signatures, multipart,
# ranges, listing as production RGW does them), for the storage conformance and fault tests.
#
#   eval "$(scripts/rgw-server.sh start [DIR])"   prints export lines: DRKIT_RGW_DIR, DRKIT_TEST_RGW_ENDPOINT,
#                                                  DRKIT_TEST_RGW_BUCKET, DRKIT_TEST_RGW_ACCESS_KEY, DRKIT_TEST_RGW_SECRET_KEY
#   scripts/rgw-server.sh stop DIR
#
# One monitor, one OSD on memstore (RAM, 1 GiB), one replica, cephx off inside the cluster
# (`auth ... required = none`); S3 clients still sign every request with the user's keys, and RGW
# checks them. The gateway talks to the monitor in msgr2 crc mode (`ms mon client mode = crc`),
# without which it cannot reach the monitor when cephx is off. Everything binds to 127.0.0.1 on
# ports picked at random; `stop` kills the daemons and removes DIR.
set -euo pipefail

source "$(dirname "$0")/lib/services.sh"

case "${1:-}" in
start)
    for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
        command -v "$tool" >/dev/null || { echo "rgw-server: $tool is missing (apt-get install radosgw ceph-mon ceph-osd ceph-common)" >&2; exit 1; }
    done
    dir=${2:-$(mktemp -d /tmp/drkit-rgw.XXXXXX)}
    mkdir -p "$dir"/{mon,osd,run,log,rgw}
    # A start that fails part-way stops whatever daemons it had started.
    trap 'status=$?; if [ $status -ne 0 ]; then tail -n 5 "$dir"/log/*.log >&2 || true; bash "$0" stop "$dir"; fi' EXIT
    fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
    mon_v2=$(free_port); mon_v1=$(free_port); rgw_port=$(free_port)
    cat >"$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
public addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
keyring = $dir/keyring
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd max object name len = 256
osd max object namespace len = 64
[client.rgw.test]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
rgw dns name = localhost
log file = $dir/log/rgw.log
CONF
    conf=(-c "$dir/ceph.conf")
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. >/dev/null
    monmaptool --create --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" --fsid "$fsid" "$dir/monmap" >/dev/null
    ceph-mon "${conf[@]}" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" >/dev/null 2>&1
    ceph-mon "${conf[@]}" -i a
    osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
    osd_id=$(timeout 60 ceph "${conf[@]}" osd create "$osd_uuid")
    mkdir -p "$dir/osd/ceph-$osd_id"
    ceph-osd "${conf[@]}" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
    ceph-osd "${conf[@]}" -i "$osd_id"
    for _ in $(seq 1 120); do
        timeout 10 ceph "${conf[@]}" osd stat 2>/dev/null | grep -q "1 up" && break
        sleep 0.5
    done
    timeout 10 ceph "${conf[@]}" osd stat 2>/dev/null | grep -q "1 up" \
        || { echo "rgw-server: the OSD did not come up; logs in $dir/log" >&2; exit 1; }
    radosgw "${conf[@]}" -n client.rgw.test
    endpoint="http://127.0.0.1:$rgw_port"
    for _ in $(seq 1 240); do
        curl -s -o /dev/null "$endpoint" && break
        sleep 0.5
    done
    curl -s -o /dev/null "$endpoint" || { echo "rgw-server: the gateway did not answer on $endpoint; logs in $dir/log" >&2; exit 1; }
    key=$(python3 -c 'import secrets; print("DRKIT" + secrets.token_hex(8).upper())')
    secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
    timeout 60 radosgw-admin "${conf[@]}" user create --uid drkit-test --display-name "drkit tests" \
        --access-key "$key" --secret-key "$secret" >/dev/null
    for _ in $(seq 1 60); do
        AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1 \
            aws --endpoint-url "$endpoint" s3api create-bucket --bucket drkit-test >/dev/null 2>&1 && break
        sleep 0.5
    done
    echo "export DRKIT_RGW_DIR='$dir'"
    echo "export DRKIT_TEST_RGW_ENDPOINT='$endpoint'"
    echo "export DRKIT_TEST_RGW_BUCKET=drkit-test"
    echo "export DRKIT_TEST_RGW_ACCESS_KEY='$key'"
    echo "export DRKIT_TEST_RGW_SECRET_KEY='$secret'"
    ;;
stop)
    dir=${2:?usage: rgw-server.sh stop DIR}
    for pidfile in "$dir"/run/*.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 0.5
    for pidfile in "$dir"/run/*.pid; do
        [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
