#!/usr/bin/env bash
# drkit against pg_dump / pg_restore / aws s3 cp on the same data, in one run, on a throwaway
# cluster and a throwaway S3 server (moto, signature checking on).
#
#   bash scripts/bench.sh            ~400 MB of COPY text (1.5M-row events table + 600k-row items table)
#   BENCH_SCALE=0.1 bash scripts/bench.sh   a smaller dataset for a quick look
#
# Runs drkit and its anchors interleaved for BENCH_ROUNDS (3) rounds, the order swapped every round,
# each run after a sync and a CHECKPOINT, and prints per run its median [range] of seconds, archive
# size and peak RSS, and per ratio drkit / anchor (each round's runs against each other) its median
# [range] against the issue targets: the events database (local and S3), and a database of
# BENCH_SMALL_TABLES (2000) small tables; then the codecs side by side (one run each); then
# scripts/bench-restore.sh (the mixed-type set and 10,000 tables on PostgreSQL 15 and 18, interleaved rounds,
# medians and ranges; BENCH_RESTORE_ARGS passes it options, e.g. "--scales 0.5,2,8"), and
# scripts/bench-stream.sh (drkit stream beside pgbench, and the replay of its archive).
set -euo pipefail
cd "$(dirname "$0")/.."

scale=${BENCH_SCALE:-1}
rounds=${BENCH_ROUNDS:-3}
# BENCH_PARTS: which of main (this script's own rounds), codecs, restore (bench-restore.sh) and
# stream (bench-stream.sh) run.
parts=" ${BENCH_PARTS:-main codecs restore stream} "
bash scripts/setup.sh
echo "bench: building release" >&2
swift build -c release --product drkit >/dev/null
drkit=$(swift build -c release --show-bin-path)/drkit
bindir=$(pg_config --bindir)

export DRKIT_PG_DURABLE=1 DRKIT_PG_AUTOVACUUM=off
eval "$(bash scripts/pg-cluster.sh start)"
work=$(mktemp -d /tmp/drkit-bench.XXXXXX)
cleanup() {
    bash scripts/pg-cluster.sh stop "$DRKIT_PG_DIR"
    [ -z "${DRKIT_S3_DIR:-}" ] || bash scripts/s3-server.sh stop "$DRKIT_S3_DIR"
    rm -rf "$work"
}
trap cleanup EXIT
eval "$(bash scripts/s3-server.sh start)"
s3env=(env AWS_ACCESS_KEY_ID="$DRKIT_TEST_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$DRKIT_TEST_S3_SECRET_KEY"
       AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$DRKIT_TEST_S3_ENDPOINT")

export PGHOST=$DRKIT_TEST_PGHOST PGPORT=$DRKIT_TEST_PGPORT PGUSER=$DRKIT_TEST_PGUSER PGPASSWORD=$DRKIT_TEST_PGPASSWORD
conn="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD"
psql_q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

events=$(python3 -c "print(int(1500000 * $scale))")
items=$(python3 -c "print(int(600000 * $scale))")
echo "bench: generating dataset ($events events, $items items)" >&2
psql_q -d postgres -c "CREATE DATABASE bench"
psql_q -d bench <<SQL
CREATE TABLE bench_events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, payload jsonb, note text);
INSERT INTO bench_events (at, payload, note)
  SELECT '2026-01-01'::timestamptz - g * interval '1 second',
         jsonb_build_object('user', g % 10000, 'kind', (ARRAY['click','view','buy'])[1 + g % 3],
                            'score', round((random() * 100)::numeric, 3), 'tags', jsonb_build_array(md5(g::text), g % 7)),
         md5(random()::text) || ' ' || md5(random()::text) || ' ' || repeat(chr(97 + g % 26), g % 40)
  FROM generate_series(1, $events) g;
CREATE INDEX bench_events_at ON bench_events (at);
CREATE TABLE bench_items (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), price numeric(14,4), dims int[], label text);
INSERT INTO bench_items (price, dims, label)
  SELECT (random() * 100000)::numeric(14,4), ARRAY[g % 100, g % 1000, g], 'item ' || md5(g::text)
  FROM generate_series(1, $items) g;
VACUUM ANALYZE;
SQL

measure() { python3 scripts/measure.py "$@"; }
declare -A secs rss size cpu
round=0  # the round a run belongs to (0: outside the rounds)

run() {  # run NAME CMD...: records wall time, peak RSS and own CPU (also in steps.tsv, by round)
    local name=$1; shift
    local out
    # Each step starts from flushed state: no step pays for the writes (dirty buffers, a checkpoint,
    # page cache) the step before it left behind.
    sync
    "$bindir/psql" -X -q -d postgres -c CHECKPOINT
    out=$(measure "$@" 2>>"$work/bench.log") || { echo "bench: $name failed; see log:" >&2; tail -n 20 "$work/bench.log" >&2; exit 1; }
    printf '%s\n' "$out" | sed '$d' > "$work/$name.out"  # the command's own output, e.g. drkit's phases
    read -r secs[$name] rss[$name] cpu[$name] <<<"$(printf '%s\n' "$out" | tail -n 1)"
    printf 'time\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "${secs[$name]}" "${rss[$name]}" "${cpu[$name]}" >> "$work/steps.tsv"
    echo "bench: round $round $name ${secs[$name]} s" >&2
}

sized() {  # sized NAME BYTES: an archive's size in this round
    size[$1]=$2
    printf 'size\t%s\t%s\t%s\n' "$1" "$round" "$2" >> "$work/steps.tsv"
}

in_turn() {  # in_turn STEP...: the steps in order in odd rounds, reversed in even ones
    local steps=("$@") i
    if (( round % 2 )); then for i in "${steps[@]}"; do "$i"; done
    else for (( i = ${#steps[@]} - 1; i >= 0; i-- )); do "${steps[$i]}"; done; fi
}

copy_bytes=$( { "$bindir/psql" -X -d bench -c "COPY bench_events TO STDOUT"; "$bindir/psql" -X -d bench -c "COPY bench_items TO STDOUT"; } | wc -c)
"$drkit" key generate --out "$work/key" >/dev/null

# Many small objects: tables with a primary key, an index and a foreign key each (per-object costs).
small_tables=${BENCH_SMALL_TABLES:-2000}
if [[ $parts == *" main "* ]]; then
    echo "bench: generating $small_tables small tables" >&2
    psql_q -d postgres -c "CREATE DATABASE bench_many"
    psql_q -d bench_many -v tables="$small_tables" -f scripts/bench-many.sql
fi

# The runs of a round. Each backup writes into this round's fresh repository or file; each restore
# goes into an empty database created beforehand, so no run pays for CREATE DATABASE.
step_raw_copy() { run raw_copy sh -c "'$bindir/psql' -X -d bench -c 'COPY bench_events TO STDOUT' >/dev/null && '$bindir/psql' -X -d bench -c 'COPY bench_items TO STDOUT' >/dev/null"; }
step_pg_dump_fc() { run pg_dump_fc "$bindir/pg_dump" -Fc -f "$work/bench.dump" -d bench; sized pg_dump_fc "$(stat -c %s "$work/bench.dump")"; }
step_pg_dump_fd_j2() { run pg_dump_fd_j2 "$bindir/pg_dump" -Fd -j2 -f "$work/bench.dir" -d bench; sized pg_dump_fd_j2 "$(du -sb "$work/bench.dir" | cut -f1)"; }
step_drkit_backup() {
    run drkit_backup "$drkit" backup --db "$conn dbname=bench" --repo "$work/repo" --key-file "$work/key" --jobs 2 --quiet
    sized drkit_backup "$(du -sb "$work/repo" | cut -f1)"
}
step_pg_dump_aws_s3() { run pg_dump_aws_s3 "${s3env[@]}" sh -c "'$bindir/pg_dump' -Fc -d bench | aws s3 cp - s3://$DRKIT_TEST_S3_BUCKET/pgdump/bench.dump"; }
step_drkit_backup_s3() { run drkit_backup_s3 "${s3env[@]}" "$drkit" backup --db "$conn dbname=bench" --repo "s3://$DRKIT_TEST_S3_BUCKET/drkit-$round" --key-file "$work/key" --jobs 2 --quiet; }
step_pg_restore_j2() { run pg_restore_j2 "$bindir/pg_restore" -j2 -d bench_pgrestore "$work/bench.dump"; }
step_drkit_restore() { run drkit_restore "$drkit" restore latest --repo "$work/repo" --key-file "$work/key" --target "$conn dbname=bench_drkit" --jobs 2; }
# Restore from S3: download and pg_restore -j2 (it needs a seekable file) against drkit reading S3 directly.
step_aws_s3_pg_restore() { run aws_s3_pg_restore "${s3env[@]}" sh -c "aws s3 cp s3://$DRKIT_TEST_S3_BUCKET/pgdump/bench.dump '$work/s3.dump' >/dev/null && '$bindir/pg_restore' -j2 -d bench_s3_pgrestore '$work/s3.dump'"; }
step_drkit_restore_s3() { run drkit_restore_s3 "${s3env[@]}" "$drkit" restore latest --repo "s3://$DRKIT_TEST_S3_BUCKET/drkit-$round" --key-file "$work/key" --target "$conn dbname=bench_s3_drkit" --jobs 2 --quiet; }
step_many_pg_dump_fd_j2() { run many_pg_dump_fd_j2 "$bindir/pg_dump" -Fd -j2 -f "$work/many.dir" -d bench_many; }
step_many_drkit_backup() { run many_drkit_backup "$drkit" backup --db "$conn dbname=bench_many" --repo "$work/repo-many" --key-file "$work/key" --jobs 2 --quiet; }
step_many_pg_restore_j2() { run many_pg_restore_j2 "$bindir/pg_restore" -j2 -d many_pgrestore "$work/many.dir"; }
step_many_drkit_restore() { run many_drkit_restore "$drkit" restore latest --repo "$work/repo-many" --key-file "$work/key" --target "$conn dbname=many_drkit" --jobs 2; }

restored_dbs=(bench_pgrestore bench_drkit bench_s3_pgrestore bench_s3_drkit many_pgrestore many_drkit)
for (( round = 1; round <= rounds; round++ )); do
    [[ $parts == *" main "* ]] || break
    rm -rf "$work/bench.dump" "$work/bench.dir" "$work/repo" "$work/many.dir" "$work/repo-many" "$work/s3.dump"
    for db in "${restored_dbs[@]}"; do psql_q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"; done
    in_turn step_raw_copy step_pg_dump_fc step_pg_dump_fd_j2 step_drkit_backup
    in_turn step_pg_dump_aws_s3 step_drkit_backup_s3
    in_turn step_pg_restore_j2 step_drkit_restore
    in_turn step_aws_s3_pg_restore step_drkit_restore_s3
    in_turn step_many_pg_dump_fd_j2 step_many_drkit_backup
    in_turn step_many_pg_restore_j2 step_many_drkit_restore
    # Correctness of what was timed: the same rows and tables on both sides.
    for db in bench_pgrestore bench_drkit bench_s3_pgrestore bench_s3_drkit; do
        psql_q -d $db -tAc "SELECT (SELECT count(*) FROM bench_events) || '/' || (SELECT count(*) FROM bench_items)" > "$work/$db.count"
    done
    for db in many_pgrestore many_drkit; do
        psql_q -d $db -tAc "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace" > "$work/$db.count"
    done
    for pair in "bench_pgrestore bench_drkit" "bench_pgrestore bench_s3_pgrestore" "bench_pgrestore bench_s3_drkit" "many_pgrestore many_drkit"; do
        read -r a b <<<"$pair"
        cmp -s "$work/$a.count" "$work/$b.count" || { echo "bench: round $round: $a and $b differ" >&2; exit 1; }
    done
    cp "$work/drkit_restore.out" "$work/drkit_restore.$round.out"
    cp "$work/many_drkit_restore.out" "$work/many_drkit_restore.$round.out"
done
round=0
for db in "${restored_dbs[@]}"; do psql_q -d postgres -c "DROP DATABASE IF EXISTS $db"; done

# The codecs side by side (issue: choose the default by measurement): backup time and size, then
# restore time and drkit's own CPU during restore (decrypt + decompress compete with the server). One
# run each, outside the rounds.
codecs=(${BENCH_CODECS:-gzip:6 zstd:1 zstd:3 zstd:6})
if [[ $parts == *" codecs "* ]]; then
    [ -n "${secs[pg_dump_fc]:-}" ] || { step_pg_dump_fc; psql_q -d postgres -c "CREATE DATABASE bench_pgrestore"; step_pg_restore_j2; psql_q -d postgres -c "DROP DATABASE bench_pgrestore"; }
    for i in "${!codecs[@]}"; do  # a codec may be listed twice, to see the run-to-run noise
        c=${codecs[$i]}
        run "backup_$i" "$drkit" backup --db "$conn dbname=bench" --repo "$work/repo-$i" --key-file "$work/key" --jobs 2 --quiet --compress "$c"
        size[backup_$i]=$(du -sb "$work/repo-$i" | cut -f1)
        psql_q -d postgres -c "CREATE DATABASE bench_codec_$i"
        run "restore_$i" "$drkit" restore latest --repo "$work/repo-$i" --key-file "$work/key" --target "$conn dbname=bench_codec_$i" --jobs 2 --quiet
        psql_q -d postgres -c "DROP DATABASE bench_codec_$i"
    done
fi

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
mib() { python3 -c "print(f'{$1 / 1048576:.1f}')"; }
echo
echo "dataset: $events + $items rows, $(mib "$copy_bytes") MiB of COPY text; $small_tables small tables; $(nproc) cores; PostgreSQL $(psql_q -d bench -tAc 'SHOW server_version')"
if [[ $parts == *" main "* ]]; then
    python3 scripts/bench_report.py --main --small-tables "$small_tables" "$work/steps.tsv"
    for (( r = 1; r <= rounds; r++ )); do
        echo "round $r drkit restore phases: $(grep -h 'RTO' "$work/drkit_restore.$r.out")"
        echo "round $r drkit $small_tables-table restore phases: $(grep -h 'RTO' "$work/many_drkit_restore.$r.out")"
    done
fi
if [[ $parts == *" codecs "* ]]; then
    echo
    echo "codecs (encrypted, --jobs 2, one run each), beside pg_dump -Fc: ${secs[pg_dump_fc]} s, $(mib "${size[pg_dump_fc]}") MiB; pg_restore -j2: ${secs[pg_restore_j2]} s (the last round's)"
    printf '%-10s %10s %10s %10s %13s %12s %13s\n' codec "backup s" "size MiB" "size/-Fc" "backup/-Fc" "restore s" "restore CPU s"
    for i in "${!codecs[@]}"; do
        printf '%-10s %10s %10s %10s %13s %12s %13s\n' "${codecs[$i]}" "${secs[backup_$i]}" "$(mib "${size[backup_$i]}")" \
            "$(ratio "${size[backup_$i]}" "${size[pg_dump_fc]}")" "$(ratio "${secs[backup_$i]}" "${secs[pg_dump_fc]}")" \
            "${secs[restore_$i]}" "${cpu[restore_$i]}"
    done
fi

# Restore at the floor on other shapes, each major's own best anchor, interleaved rounds.
if [[ $parts == *" restore "* ]]; then
    echo
    echo "mixed types and many tables (scripts/bench-restore.sh):"
    # shellcheck disable=SC2086
    BENCH_SKIP_SETUP=1 bash scripts/bench-restore.sh ${BENCH_RESTORE_ARGS:-}
fi

# Point-in-time recovery in the same run: the stream beside pgbench at full speed, then the replay.
if [[ $parts == *" stream "* ]]; then
    echo
    echo "point-in-time recovery (scripts/bench-stream.sh):"
    BENCH_SKIP_SETUP=1 bash scripts/bench-stream.sh
fi
