#!/usr/bin/env bash
# drkit against each PostgreSQL major's own pg_dump / pg_restore on the data shapes restores meet:
# the mixed-type set (scripts/bench-mixed.sql) at one or more scales, and thousands of small tables.
# Runs are interleaved (the order alternates every round) with sync + CHECKPOINT before each, for
# --rounds rounds; the report gives each run's median and range, and each ratio's median and range over
# the rounds (drkit's run divided by the anchor's run of the same round).
#
#   bash scripts/bench-restore.sh [--rounds 3] [--versions 15,18] [--scales 1] [--tables 10000] [--chart FILE]
#
#   --versions   majors to run on: 15 is Debian's server; 18 the wheel scripts/pg18.sh installs. The anchor
#                on 18 is its best: pg_dump 18 -Fc --statistics, pg_restore 18 -j2 --transaction-size 1000.
#   --scales     mixed-set scales, comma-separated (1 is about 1 GB on disk); "" skips the mixed set.
#                With more than one (e.g. 0.5,2,8), the report gives seconds per GB of COPY text at each
#                scale and --chart writes an SVG of time against size (default docs/bench-scale.svg).
#   --tables     the many-tables set (each with a key, an index and a foreign key; 50 rows), on every
#                version, with the server's default max_locks_per_transaction (64); 0 skips it.
#
# With the defaults it takes about 35 minutes on 2 cores, most of it the 10,000 tables' restores.
# Every cluster is durable (fsync on), runs with autovacuum off (else the database one run restored is
# vacuumed and analyzed during the next run, on the same two cores: measured, it moved about 5 s of
# server CPU from pg_restore's run into drkit's), and is deleted afterwards. Results: a TSV, and the
# report on stdout with drkit's restore phases and each tool's own CPU (server CPU is the same work).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 versions=15,18 scales=1 tables=10000 chart=docs/bench-scale.svg
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --versions) versions=$2; shift 2 ;;
    --scales|--scale) scales=$2; shift 2 ;;
    --tables) tables=$2; shift 2 ;;
    --chart) chart=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--versions 15,18] [--scales 1[,4,...]] [--tables N] [--chart FILE]" >&2; exit 2 ;;
    esac
done

[ -n "${BENCH_SKIP_SETUP:-}" ] || bash scripts/setup.sh
echo "bench-restore: building release" >&2
swift build -c release --product drkit >/dev/null
drkit=$(swift build -c release --show-bin-path)/drkit
work=$(mktemp -d /tmp/drkit-bench-restore.XXXXXX)
results=$work/results.tsv
cluster_dir=
cleanup() {
    [ -z "$cluster_dir" ] || bash scripts/pg-cluster.sh stop "$cluster_dir"
    rm -rf "$work"
}
trap cleanup EXIT
"$drkit" key generate --out "$work/key" >/dev/null

bindir_of() {  # the server and client binaries of a major
    case "$1" in
    18) bash scripts/pg18.sh bindir ;;
    *) echo "/usr/lib/postgresql/$1/bin" ;;
    esac
}

# measure SET VERSION SCALE STEP ROUND CMD...: one timed run from flushed state, appended to the TSV.
measure() {
    local set=$1 version=$2 scale=$3 step=$4 round=$5; shift 5
    sync
    "$bin/psql" -X -q -d postgres -c CHECKPOINT
    local out
    out=$(python3 scripts/measure.py "$@" 2>>"$work/bench.log") || {
        echo "bench-restore: $step failed; see log:" >&2; tail -n 20 "$work/bench.log" >&2; exit 1; }
    printf '%s\n' "$out" | sed '$d' >>"$work/bench.log"
    [ "$step" != drkit_restore ] || printf '%s pg%s x%s round %s: %s\n' "$set" "$version" "$scale" "$round" \
        "$(printf '%s\n' "$out" | grep -h 'RTO' || true)" >>"$work/phases.txt"
    read -r secs rss cpu <<<"$(printf '%s\n' "$out" | tail -n 1)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$version" "$scale" "$step" "$round" "$secs" "$rss" "${copy_bytes:-0}" "$cpu" >>"$results"
    echo "bench-restore: $set pg$version x$scale $step round $round: $secs s" >&2
}

fresh_db() { "$bin/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }

# pair SET VERSION SCALE ROUND  ANCHOR_STEP "ANCHOR CMD" DRKIT_STEP "DRKIT CMD": both, in an order that
# alternates with the round, so neither always runs on the page cache the other warmed.
pair() {
    local set=$1 version=$2 scale=$3 round=$4 a_step=$5 a_cmd=$6 d_step=$7 d_cmd=$8
    if [ $((round % 2)) -eq 1 ]; then
        measure "$set" "$version" "$scale" "$a_step" "$round" sh -c "$a_cmd"
        measure "$set" "$version" "$scale" "$d_step" "$round" sh -c "$d_cmd"
    else
        measure "$set" "$version" "$scale" "$d_step" "$round" sh -c "$d_cmd"
        measure "$set" "$version" "$scale" "$a_step" "$round" sh -c "$a_cmd"
    fi
}

# compare SET SCALE "PG_DUMP FORMAT" CHECK_SQL: --rounds rounds of backup and restore of database SET,
# each pair interleaved; both restores must answer CHECK_SQL alike. Drops the three databases afterwards.
compare() {
    local set=$1 scale=$2 format=$3 check=$4 round db
    for round in $(seq 1 "$rounds"); do
        rm -rf "$work/$set.dump" "$work/repo-$set"
        pair "$set" "$version" "$scale" "$round" \
            pg_dump "'$bin/pg_dump' $format $dump_extra -f '$work/$set.dump' -d $set" \
            drkit_backup "'$drkit' backup --db '$conn dbname=$set' --repo '$work/repo-$set' --key-file '$work/key' --jobs 2 --quiet"
        fresh_db "${set}_pg"; fresh_db "${set}_drkit"
        pair "$set" "$version" "$scale" "$round" \
            pg_restore "'$bin/pg_restore' -j2 $restore_extra -d ${set}_pg '$work/$set.dump'" \
            drkit_restore "'$drkit' restore latest --repo '$work/repo-$set' --key-file '$work/key' --target '$conn dbname=${set}_drkit' --jobs 2"
        for db in "${set}_pg" "${set}_drkit"; do "$bin/psql" -X -d "$db" -tAc "$check" >"$work/$db.check"; done
        cmp -s "$work/${set}_pg.check" "$work/${set}_drkit.check" || { echo "bench-restore: the two restores of $set differ" >&2; exit 1; }
    done
    "$bin/psql" -X -q -d postgres -c "DROP DATABASE $set" -c "DROP DATABASE ${set}_pg" -c "DROP DATABASE ${set}_drkit"
}

for version in ${versions//,/ }; do
    bin=$(bindir_of "$version")
    eval "$(DRKIT_PG_BINDIR=$bin DRKIT_PG_DURABLE=1 DRKIT_PG_AUTOVACUUM=off bash scripts/pg-cluster.sh start)"
    cluster_dir=$DRKIT_PG_DIR
    export PGHOST=$DRKIT_TEST_PGHOST PGPORT=$DRKIT_TEST_PGPORT PGUSER=$DRKIT_TEST_PGUSER PGPASSWORD=$DRKIT_TEST_PGPASSWORD
    export DRKIT_PG_DUMP=$bin/pg_dump
    conn="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD"
    if [ "$version" -ge 18 ]; then
        dump_extra=--statistics restore_extra="--transaction-size=1000"
    else
        dump_extra= restore_extra=
    fi

    for scale in ${scales//,/ }; do
        echo "bench-restore: pg$version generating the mixed set at scale $scale" >&2
        fresh_db mixed
        "$bin/psql" -X -q -d mixed -v scale="$scale" -f scripts/bench-mixed.sql
        copy_bytes=$(for t in customers orders documents blobs wide metrics; do "$bin/psql" -X -d mixed -c "COPY $t TO STDOUT"; done | wc -c)
        compare mixed "$scale" -Fc \
            "SELECT (SELECT count(*) FROM orders) || '/' || (SELECT count(*) FROM documents) || '/' || (SELECT sum(length(data)) FROM blobs)"
    done

    if [ "$tables" -gt 0 ]; then
        echo "bench-restore: pg$version generating $tables small tables" >&2
        fresh_db many
        "$bin/psql" -X -q -d many -v tables="$tables" -f scripts/bench-many.sql
        copy_bytes=0
        compare many "$tables" "-Fd -j2" "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
    fi
    bash scripts/pg-cluster.sh stop "$cluster_dir"
    cluster_dir=
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $rounds interleaved round(s); drkit --jobs 2 zstd:1 encrypted"
python3 scripts/bench_report.py "$results" --chart "$chart"
echo
echo "drkit restore phases:"
cat "$work/phases.txt"
cp "$results" "/tmp/bench-restore-$(date -u +%Y%m%dT%H%M%S).tsv"
