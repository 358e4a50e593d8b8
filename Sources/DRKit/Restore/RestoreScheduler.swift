/// Orders restore work so that no worker waits at a phase barrier: a table's indexes and constraints
/// start as soon as its own data is loaded (while other tables still load), its ANALYZE follows its
/// index builds, and two tasks on one table only run side by side when their locks allow it.
/// Pure logic: `RestoreEngine` drives it from worker threads under a lock.
struct RestoreScheduler {
    enum Work: Equatable {
        case data(object: Int)
        case ddl(table: String?, entry: Int)
        case analyze(table: String)
    }

    /// The lock a task takes on its table: CREATE INDEX takes SHARE (compatible with itself);
    /// ALTER TABLE ... ADD CONSTRAINT takes ACCESS EXCLUSIVE; ANALYZE takes SHARE UPDATE EXCLUSIVE.
    enum TableLock: Equatable {
        case none, share, exclusive

        func compatible(with other: TableLock) -> Bool {
            self == .none || other == .none || (self == .share && other == .share)
        }
    }

    struct Task: Equatable {
        var work: Work
        var lock: TableLock
        /// Larger first among ready tasks.
        var priority: Int64
        /// Data work: the tables whose rows it loads.
        var tables: [String] = []
    }

    private(set) var pending: [Task]
    private var running: [Int: Task] = [:]
    private var nextTicket = 0
    private var remainingData: [String: Int] = [:]
    private var remainingIndexes: [String: Int] = [:]
    private var totalDataLeft = 0

    /// `dataObjects`: (tables, object index, priority: higher loads first) per data object (a pack holds
    /// several tables). `entries`: parallel post-data entries
    /// with the table they act on (nil when it is not a table with data) and whether they are CREATE INDEX.
    init(dataObjects: [(tables: [String], object: Int, priority: Int64)],
         entries: [(table: String?, isIndex: Bool)], analyze: [String]) {
        var tasks: [Task] = []
        let tablesWithData = Set(dataObjects.flatMap(\.tables))
        for object in dataObjects {
            tasks.append(Task(work: .data(object: object.object), lock: .none, priority: object.priority, tables: object.tables))
            for table in object.tables { remainingData[table, default: 0] += 1 }
        }
        totalDataLeft = dataObjects.count
        for (index, entry) in entries.enumerated() {
            let table = entry.table.flatMap { tablesWithData.contains($0) ? $0 : nil }
            // Ready DDL goes before any data chunk: it shortens the tail of the table that is done.
            tasks.append(Task(work: .ddl(table: table, entry: index), lock: entry.isIndex ? .share : .exclusive, priority: Int64.max - 1))
            if let table, entry.isIndex { remainingIndexes[table, default: 0] += 1 }
        }
        for table in analyze {
            tasks.append(Task(work: .analyze(table: table), lock: .exclusive, priority: Int64.max - 2))
        }
        pending = tasks
    }

    var isFinished: Bool { pending.isEmpty && running.isEmpty }

    private func isReady(_ task: Task) -> Bool {
        switch task.work {
        case .data:
            return true
        case .ddl(let table?, _):
            return remainingData[table, default: 0] == 0
        case .ddl(nil, _):
            return totalDataLeft == 0
        case .analyze(let table):
            return remainingData[table, default: 0] == 0 && remainingIndexes[table, default: 0] == 0
        }
    }

    private func table(of work: Work) -> String? {
        switch work {
        case .data: return nil  // COPY takes ROW EXCLUSIVE: compatible with the other chunks
        case .ddl(let table, _): return table
        case .analyze(let table): return table
        }
    }

    private func lockAllows(_ task: Task) -> Bool {
        guard let table = table(of: task.work) else { return true }
        return running.values.allSatisfy { other in
            table != self.table(of: other.work) || task.lock.compatible(with: other.lock)
        }
    }

    /// The next task a free worker should run, with a ticket to pass to `complete`; nil when nothing is
    /// runnable now (the caller waits for a completion) or everything is done.
    mutating func next() -> (ticket: Int, work: Work)? {
        var best: Int?
        for (i, task) in pending.enumerated() where isReady(task) && lockAllows(task) {
            if best == nil || task.priority > pending[best!].priority { best = i }
        }
        guard let best else { return nil }
        let task = pending.remove(at: best)
        nextTicket += 1
        running[nextTicket] = task
        return (nextTicket, task.work)
    }

    mutating func complete(_ ticket: Int) {
        guard let task = running.removeValue(forKey: ticket) else { return }
        switch task.work {
        case .data:
            for table in task.tables { remainingData[table, default: 0] -= 1 }
            totalDataLeft -= 1
        case .ddl(let table?, _) where task.lock == .share:
            remainingIndexes[table, default: 0] -= 1
        default:
            break
        }
    }
}
