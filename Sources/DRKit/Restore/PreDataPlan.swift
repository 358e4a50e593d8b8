/// How pre-data runs: in transactions of at most `entriesPerTransaction` entries, and, when the backup's
/// table of contents names what each entry depends on, on several connections side by side.
///
/// pg_dump's script run as one transaction holds a lock on every relation it creates until it ends:
/// about 4,000 tables exhaust the server's default lock table (`max_locks_per_transaction` × connections)
/// and the restore fails with "out of shared memory". pg_restore commits every entry; drkit commits
/// every batch. Pure logic: `RestoreExecution.runPreData` drives it.
enum PreDataPlan {
    static let entriesPerTransaction = 100

    /// For each script entry, the script entries it needs first, from the table of contents; nil when an
    /// entry cannot be matched to exactly one place there, or needs one the script puts after it (then
    /// pre-data runs in script order).
    /// A dependency on an entry the script does not hold (not dumped, or left out by a partial restore)
    /// stands for that entry's own dependencies.
    static func dependencies(of script: DDLScript, toc: DumpTOC) -> [[Int]]? {
        var scriptEntry: [DDLEntryKey: Int] = [:]
        for (index, entry) in script.entries.enumerated() {
            guard let key = entry.key, scriptEntry.updateValue(index, forKey: key) == nil else { return nil }
        }
        var byId: [Int: DumpTOC.Entry] = [:]
        var tocIds: [DDLEntryKey: [Int]] = [:]
        for entry in toc.entries {
            byId[entry.id] = entry
            tocIds[DDLEntryKey(type: entry.type, schema: entry.schema ?? "-", name: entry.name), default: []].append(entry.id)
        }
        var entryOfId: [Int: Int] = [:]
        for (key, index) in scriptEntry {
            guard let ids = tocIds[key] else { return nil }
            for id in ids { entryOfId[id] = index }
        }
        // Script entries a TOC id stands for: itself if the script holds it, else what it depends on.
        var resolved: [Int: Set<Int>] = [:]
        var visiting: Set<Int> = []
        func standsFor(_ id: Int) -> Set<Int> {
            if let index = entryOfId[id] { return [index] }
            if let known = resolved[id] { return known }
            guard let entry = byId[id], visiting.insert(id).inserted else { return [] }
            defer { visiting.remove(id) }
            let result = entry.dependencies.reduce(into: Set<Int>()) { $0.formUnion(standsFor($1)) }
            resolved[id] = result
            return result
        }
        var result: [[Int]] = []
        for index in script.entries.indices {
            var needs = Set<Int>()
            for id in tocIds[script.entries[index].key!] ?? [] {
                for dependency in byId[id]?.dependencies ?? [] { needs.formUnion(standsFor(dependency)) }
            }
            needs.remove(index)
            // pg_dump writes entries in an order that respects their dependencies; anything else is not
            // a table of contents of this script.
            guard needs.allSatisfy({ $0 < index }) else { return nil }
            result.append(needs.sorted())
        }
        return result
    }
}

/// Pre-data entries handed out in batches: an entry is ready once every entry it needs has been
/// reported done; ready entries go out in script order.
struct PreDataSchedule {
    private var waitingOn: [Int]
    private var dependents: [[Int]]
    private var ready: [Int] = []  // kept sorted
    private var outstanding: Int

    init(dependencies: [[Int]]) {
        let waiting = dependencies.map(\.count)
        waitingOn = waiting
        dependents = Array(repeating: [], count: dependencies.count)
        for (index, needs) in dependencies.enumerated() { for need in needs { dependents[need].append(index) } }
        ready = dependencies.indices.filter { waiting[$0] == 0 }
        outstanding = dependencies.count
    }

    var isFinished: Bool { outstanding == 0 }

    /// Up to `limit` ready entries, in script order; empty when none is ready now.
    mutating func next(limit: Int) -> [Int] {
        let batch = Array(ready.prefix(limit))
        ready.removeFirst(batch.count)
        return batch
    }

    mutating func complete(_ batch: [Int]) {
        outstanding -= batch.count
        var released: [Int] = []
        for index in batch {
            for dependent in dependents[index] {
                waitingOn[dependent] -= 1
                if waitingOn[dependent] == 0 { released.append(dependent) }
            }
        }
        if !released.isEmpty { ready = (ready + released).sorted() }
    }
}
