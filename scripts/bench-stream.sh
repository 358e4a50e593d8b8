#!/usr/bin/env bash
# Point-in-time recovery under load: `drkit stream` beside pgbench at full speed, then the archive
# replayed by `restore --to-latest`, on a throwaway durable cluster (fsync on, wal_level = logical).
#
#   bash scripts/bench-stream.sh                 pgbench scale 10, -c 4 -j 2, 120 s
#   BENCH_STREAM_SECONDS=30 BENCH_STREAM_SCALE=2 bash scripts/bench-stream.sh
#
# Prints pgbench's rate and failures, the stream's lag (now minus the newest archived commit, sampled
# every second while the load runs: its maximum and median), and the replay: seconds, transactions per
# second, and load seconds / replay seconds (target >= 3); then checks the restore equals the source.
# scripts/bench.sh runs it after its own measurements.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${BENCH_STREAM_SECONDS:-120}
scale=${BENCH_STREAM_SCALE:-10}
[ -n "${BENCH_SKIP_SETUP:-}" ] || bash scripts/setup.sh
swift build -c release --product drkit >/dev/null
drkit=$(swift build -c release --show-bin-path)/drkit
bindir=$(pg_config --bindir)

eval "$(DRKIT_PG_DURABLE=1 bash scripts/pg-cluster.sh start)"
work=$(mktemp -d /tmp/drkit-bench-stream.XXXXXX)
stream_pid=
cleanup() {
    [ -z "$stream_pid" ] || kill "$stream_pid" 2>/dev/null || true
    bash scripts/pg-cluster.sh stop "$DRKIT_PG_DIR"
    rm -rf "$work"
}
trap cleanup EXIT
export PGHOST=$DRKIT_TEST_PGHOST PGPORT=$DRKIT_TEST_PGPORT PGUSER=$DRKIT_TEST_PGUSER PGPASSWORD=$DRKIT_TEST_PGPASSWORD
conn="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD"
"$bindir/psql" -X -q -d postgres -c "CREATE DATABASE pitr"
"$bindir/pgbench" -i -q -s "$scale" pitr 2>/dev/null
"$drkit" key generate --out "$work/key" >/dev/null

"$drkit" stream --db "$conn dbname=pitr" --repo "$work/repo" --key-file "$work/key" --flush-interval 1s \
    --replica-identity-full public.pgbench_history --quiet 2>"$work/stream.log" &
stream_pid=$!
until ls "$work"/repo/*/manifest.json >/dev/null 2>&1; do   # the stream's linked base backup
    kill -0 "$stream_pid" 2>/dev/null || { cat "$work/stream.log" >&2; exit 1; }
    sleep 0.2
done

echo "bench-stream: pgbench -s $scale -c 4 -j 2 -T $seconds with drkit stream running" >&2
"$bindir/pgbench" -c 4 -j 2 -T "$seconds" -n pitr >"$work/pgbench.out" 2>&1 &
load_pid=$!
# Lag while the load runs: now minus the newest archived commit (from the segment names: no key).
python3 - "$work/repo" "$load_pid" >"$work/lag.txt" <<'PY'
import os, sys, time, datetime, glob
repo, pid = sys.argv[1], int(sys.argv[2])
def newest():
    names = glob.glob(os.path.join(repo, "stream", "*", "segments", "*.changes*"))
    stamps = [os.path.basename(n).split(".changes")[0].split("-")[3] for n in names if not os.path.basename(n).startswith(".")]
    if not stamps: return None
    t = max(stamps)
    return datetime.datetime.strptime(t[:15], "%Y%m%dT%H%M%S").replace(tzinfo=datetime.timezone.utc).timestamp() + int(t[15:21]) / 1e6
start = time.time()
while True:
    try: os.kill(pid, 0)
    except OSError: break
    last = newest()
    if time.time() - start > 5:  # the first seconds: the stream has not stored a segment of the load yet
        print(f"{time.time() - (last or start):.2f}", flush=True)
    time.sleep(1)
PY
wait "$load_pid"
load_seconds=$(grep -E '^duration:' "$work/pgbench.out" | awk '{print $2}')
tps=$(grep -E '^tps' "$work/pgbench.out" | head -1 | awk '{print $3}')
failed=$(grep -E '^number of failed transactions' "$work/pgbench.out" | awk '{print $5}')
transactions=$(grep -E '^number of transactions actually processed' "$work/pgbench.out" | awk '{print $6}')

# Caught up: the slot's confirmed position passes the WAL written by the load.
end=$("$bindir/psql" -X -At -d pitr -c "SELECT pg_current_wal_insert_lsn()")
until [ "$("$bindir/psql" -X -At -d pitr -c "SELECT confirmed_flush_lsn >= '$end' FROM pg_replication_slots WHERE slot_name = 'drkit_pitr'")" = t ]; do sleep 0.5; done
kill -TERM "$stream_pid"; wait "$stream_pid" || true; stream_pid=

"$bindir/psql" -X -q -d postgres -c "CREATE DATABASE pitr_restored"
sync; "$bindir/psql" -X -q -d postgres -c CHECKPOINT
"$drkit" restore latest --repo "$work/repo" --key-file "$work/key" --target "$conn dbname=pitr_restored" --to-latest --json --quiet >"$work/restore.json"
same=$(for db in pitr pitr_restored; do
    "$bindir/psql" -X -At -d "$db" -c "SELECT md5(string_agg(md5(t::text), '' ORDER BY t::text)) FROM (SELECT aid, abalance FROM pgbench_accounts UNION ALL SELECT tid, tbalance FROM pgbench_tellers UNION ALL SELECT bid, bbalance FROM pgbench_branches) t" \
        -c "SELECT count(*), sum(delta) FROM pgbench_history"
done | sort | uniq | wc -l)

python3 - "$work/restore.json" "$work/lag.txt" "$load_seconds" "$tps" "$failed" "$transactions" "$same" <<'PY'
import json, sys, statistics
report, lags = json.load(open(sys.argv[1]))["pointInTime"], [float(l) for l in open(sys.argv[2]) if l.strip()]
load, tps, failed, transactions, same = float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7] == "2"
print()
print(f"load: pgbench {transactions} transactions in {load:.0f} s ({float(tps):.0f} tps), {failed} failed")
print(f"stream lag while loading: max {max(lags):.1f} s, median {statistics.median(lags):.1f} s over {len(lags)} samples  (target: max < 30 s)")
print(f"replay: {report['transactions']} transactions, {report['changes']} row changes in {report['seconds']:.1f} s ({report['transactionsPerSecond']:.0f} transactions/s)")
print(f"ratio load time / replay time = {load / report['seconds']:.2f}  (target >= 3)")
print(f"restored database equals the source: {'yes' if same else 'NO'}")
PY
