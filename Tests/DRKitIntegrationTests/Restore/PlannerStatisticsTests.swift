import XCTest
import Foundation
import TestSupport
@testable import DRKit
import PostgresClient

/// PostgreSQL 18's planner statistics instead of ANALYZE: a backup of 18 carries them (pg_dump 18
/// `--statistics-only`), a whole restore onto 18 loads them. Run on 15 too (scripts/test.sh's matrix),
/// where backups carry none and every table is analyzed.
final class PlannerStatisticsTests: DRKitTestCase {
    /// Autovacuum is off on every table (a reloption the restore keeps): no statistics change by themselves
    /// on either side, so what the restore leaves is what it loaded or analyzed. One `kind` holds lines that
    /// look like pg_dump's own (`--`, a blank line, a backslash line): a most-common value, loaded whole.
    static let source = """
        CREATE TABLE docs (id bigint PRIMARY KEY, doc jsonb NOT NULL, tags text[], amount numeric(14,2), blob bytea,
                           body text, kind text) WITH (autovacuum_enabled = false);
        INSERT INTO docs SELECT g, jsonb_build_object('user', g % 500, 'kind', (ARRAY['a','b','c'])[1 + g % 3], 'n', g % 37),
               ARRAY['t' || g % 11, 't' || g % 7], (g * 7.31)::numeric(14,2) % 10000, decode(md5(g::text), 'hex'),
               CASE WHEN g % 10 = 0 THEN NULL ELSE repeat(md5(g::text), 1 + g % 5) END, (ARRAY['x','y',E'z\\n--\\n\\n\\\\w','w'])[1 + g % 4]
        FROM generate_series(1, 40000) g;
        CREATE INDEX docs_doc ON docs USING gin (doc);
        CREATE INDEX docs_lower_body ON docs (lower(body));
        CREATE INDEX docs_recent ON docs (amount) WHERE id > 30000;
        CREATE TABLE lookup (code text PRIMARY KEY, label text) WITH (autovacuum_enabled = false);
        INSERT INTO lookup SELECT 'c' || g, md5(g::text) FROM generate_series(1, 300) g;
        CREATE TABLE wide (id int PRIMARY KEY, a int, b int, c text) WITH (autovacuum_enabled = false);
        INSERT INTO wide SELECT g, g % 10, g % 10, md5((g % 50)::text) FROM generate_series(1, 2000) g;
        CREATE STATISTICS wide_ab (dependencies, ndistinct) ON a, b FROM wide;
        CREATE TABLE events (id int, at date NOT NULL, v int) PARTITION BY RANGE (at);
        CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') WITH (autovacuum_enabled = false);
        CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') WITH (autovacuum_enabled = false);
        INSERT INTO events SELECT g, date '2025-01-01' + (g % 700), g % 97 FROM generate_series(1, 5000) g;
        ANALYZE;
        CREATE TABLE never (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
        INSERT INTO never SELECT g, 'v' || g FROM generate_series(1, 10) g;
        """

    /// Every column's statistics and every relation's row estimate, one line each.
    static let statisticsQuery = """
        SELECT string_agg(line, E'\\n' ORDER BY line) FROM (
          SELECT format('%s.%s inh=%s null=%s nd=%s mcv=%s mcf=%s hist=%s', tablename, attname, inherited, null_frac, n_distinct,
                        most_common_vals, most_common_freqs, histogram_bounds) AS line
          FROM pg_stats WHERE schemaname = 'public'
          UNION ALL
          SELECT format('%s reltuples=%s', relname, reltuples) FROM pg_class
          WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'i', 'I', 'm')) lines
        """

    static let analyzedQuery = """
        SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_stat_user_tables WHERE analyze_count > 0 AND schemaname = 'public'
        """

    func testARestoreOn18LoadsTheSourcesStatisticsInsteadOfAnalyze() throws {
        let database = try newDatabase("stats_src", sql: PlannerStatisticsTests.source)
        let on18 = Int(try PostgresClientBridge.scalar("SHOW server_version_num", in: database) ?? "") ?? 0 >= 180000
        let id = try backup(database)
        let manifest = try openManifest(id)
        XCTAssertEqual(manifest.statistics != nil, on18, "a backup of 18+ carries the statistics, of older servers none")
        let verify = try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)

        let restored = scratchName("stats_r")
        let result = try restore(id, into: restored, extra: ["--key-file", keyFile])
        XCTAssertEqual(result.status, 0, result.stderr)
        try assertSameDatabase(database, restored)
        let analyzed = try PostgresClientBridge.scalar(PlannerStatisticsTests.analyzedQuery, in: restored)
        guard on18 else {
            XCTAssertEqual(analyzed, "docs,events_2025,events_2026,lookup,never,wide", "without statistics in the backup every table is analyzed")
            return
        }
        XCTAssertTrue(result.stderr.contains("planner statistics of"), result.stderr)
        // Loaded, not computed again: the 40,000-row table's histogram is from a random sample of 30,000
        // rows, which a new ANALYZE would draw differently. Only the table the source never analyzed and
        // the one with extended statistics (whose data pg_dump 18 does not carry) were analyzed.
        XCTAssertEqual(analyzed, "never,wide")
        let sourceStatistics = try XCTUnwrap(PostgresClientBridge.scalar(PlannerStatisticsTests.statisticsQuery, in: database))
        let restoredStatistics = try XCTUnwrap(PostgresClientBridge.scalar(PlannerStatisticsTests.statisticsQuery, in: restored))
        let lines = { (text: String) in text.split(separator: "\n").filter { !$0.hasPrefix("never") } }
        let differing = zip(lines(sourceStatistics), lines(restoredStatistics)).filter { $0 != $1 }
        XCTAssertEqual(lines(sourceStatistics).count, lines(restoredStatistics).count)
        XCTAssertTrue(differing.isEmpty, "differing statistics: \(differing.prefix(3))")
        XCTAssertTrue(sourceStatistics.contains("docs.doc inh=f"), "the comparison covers the jsonb column")
        XCTAssertTrue(sourceStatistics.contains("events.v inh=t"), "and the partitioned parent's inherited statistics")
        XCTAssertTrue(sourceStatistics.contains("docs_lower_body.lower"), "and the expression index's")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT string_agg(reltuples::text, ',') FROM pg_class WHERE relname IN ('never', 'never_pkey')", in: restored),
                       "10,10", "the table the source never analyzed is analyzed on restore, its index too")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*)::text FROM pg_stats_ext WHERE statistics_name = 'wide_ab' AND dependencies IS NOT NULL", in: restored), "1")

        let forced = scratchName("stats_analyze")
        let analyzeAll = try restore(id, into: forced, extra: ["--key-file", keyFile, "--analyze"])
        XCTAssertEqual(analyzeAll.status, 0, analyzeAll.stderr)
        XCTAssertFalse(analyzeAll.stderr.contains("planner statistics of"), analyzeAll.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar(PlannerStatisticsTests.analyzedQuery, in: forced), "docs,events_2025,events_2026,lookup,never,wide")
        // What makes the comparison above mean something: a new ANALYZE samples the large table anew.
        let reanalyzed = try XCTUnwrap(PostgresClientBridge.scalar(PlannerStatisticsTests.statisticsQuery, in: forced))
        let docsHistogram = { (text: String) in text.split(separator: "\n").first { $0.hasPrefix("docs.id ") } }
        XCTAssertNotEqual(docsHistogram(reanalyzed), docsHistogram(sourceStatistics))
    }
}
