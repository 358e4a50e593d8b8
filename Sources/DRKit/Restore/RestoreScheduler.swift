/// Orders restore work so that no worker waits at a phase barrier: a table's indexes and constraints
/// start as soon as its own data is loaded (while other tables still load), its ANALYZE follows its
/// index builds, and two tasks on one table only run side by side when their locks allow it.
/// Pure logic: `RestoreEngine` drives it from worker threads under a lock.
///
/// A restore of thousands of tables has tens of thousands of tasks and claims each under the board's
/// lock, so a claim costs O(log n): tasks wait on per-table counters and move to a ready heap when
/// those reach zero, instead of every claim scanning every pending task.
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

    private struct Task {
        var work: Work
        var lock: TableLock
        /// Larger first among ready tasks; ties go to the task listed first.
        var priority: Int64
        /// The table whose lock it takes (an index into `tableNames`); nil for data and for DDL on
        /// tables without data.
        var table: Int?
        /// Data work: the tables whose rows it loads.
        var loads: [Int] = []
    }

    private let tasks: [Task]
    private var ready = ReadyHeap()
    private var running: [Int: Int] = [:]  // ticket -> task
    private var nextTicket = 0
    private var finished = 0
    private var remainingData: [Int]
    private var remainingIndexes: [Int]
    private var totalDataLeft = 0
    private var waitingForTable: [[Int]]
    private var waitingForAllData: [Int] = []
    private var analyzeTask: [Int?]

    /// `dataObjects`: (tables, object index, priority: higher loads first) per data object (a pack holds
    /// several tables). `entries`: parallel post-data entries
    /// with the table they act on (nil when it is not a table with data) and whether they are CREATE INDEX.
    init(dataObjects: [(tables: [String], object: Int, priority: Int64)],
         entries: [(table: String?, isIndex: Bool)], analyze: [String]) {
        var ids: [String: Int] = [:]
        func id(_ name: String) -> Int {
            if let known = ids[name] { return known }
            ids[name] = ids.count
            return ids.count - 1
        }
        var tasks: [Task] = []
        for object in dataObjects {
            tasks.append(Task(work: .data(object: object.object), lock: .none, priority: object.priority, table: nil,
                              loads: object.tables.map(id)))
        }
        let tablesWithData = Set(dataObjects.flatMap(\.tables))
        for (index, entry) in entries.enumerated() {
            let table = entry.table.flatMap { tablesWithData.contains($0) ? $0 : nil }
            // Ready DDL goes before any data chunk: it shortens the tail of the table that is done.
            tasks.append(Task(work: .ddl(table: table, entry: index), lock: entry.isIndex ? .share : .exclusive,
                              priority: Int64.max - 1, table: table.map(id)))
        }
        for table in analyze {
            tasks.append(Task(work: .analyze(table: table), lock: .exclusive, priority: Int64.max - 2, table: id(table)))
        }
        self.tasks = tasks
        remainingData = Array(repeating: 0, count: ids.count)
        remainingIndexes = Array(repeating: 0, count: ids.count)
        waitingForTable = Array(repeating: [], count: ids.count)
        analyzeTask = Array(repeating: nil, count: ids.count)

        for (index, task) in tasks.enumerated() {
            switch task.work {
            case .data:
                for table in task.loads { remainingData[table] += 1 }
                totalDataLeft += 1
                ready.push(priority: task.priority, task: index)
            case .ddl:
                if let table = task.table {
                    waitingForTable[table].append(index)
                    if task.lock == .share { remainingIndexes[table] += 1 }
                } else {
                    waitingForAllData.append(index)
                }
            case .analyze:
                analyzeTask[task.table!] = index
            }
        }
        if totalDataLeft == 0 { releaseAllDataWaiters() }
        for table in 0..<ids.count where remainingData[table] == 0 { releaseAnalyzeIfDue(table) }
    }

    var isFinished: Bool { finished == tasks.count }

    private func lockAllows(_ task: Task) -> Bool {
        guard let table = task.table else { return true }
        return running.values.allSatisfy { other in
            tasks[other].table != table || task.lock.compatible(with: tasks[other].lock)
        }
    }

    /// The next task a free worker should run, with a ticket to pass to `complete`; nil when nothing is
    /// runnable now (the caller waits for a completion) or everything is done.
    mutating func next() -> (ticket: Int, work: Work)? {
        // Only tasks on the few tables being worked on can be held back by a lock.
        var heldBack: [(Int64, Int)] = []
        defer { for task in heldBack { ready.push(priority: task.0, task: task.1) } }
        while let index = ready.pop() {
            guard lockAllows(tasks[index]) else {
                heldBack.append((tasks[index].priority, index))
                continue
            }
            nextTicket += 1
            running[nextTicket] = index
            return (nextTicket, tasks[index].work)
        }
        return nil
    }

    mutating func complete(_ ticket: Int) {
        guard let index = running.removeValue(forKey: ticket) else { return }
        finished += 1
        let task = tasks[index]
        switch task.work {
        case .data:
            for table in task.loads {
                remainingData[table] -= 1
                guard remainingData[table] == 0 else { continue }
                for waiting in waitingForTable[table] { ready.push(priority: tasks[waiting].priority, task: waiting) }
                waitingForTable[table] = []
                releaseAnalyzeIfDue(table)
            }
            totalDataLeft -= 1
            if totalDataLeft == 0 { releaseAllDataWaiters() }
        case .ddl where task.lock == .share:
            if let table = task.table {
                remainingIndexes[table] -= 1
                releaseAnalyzeIfDue(table)
            }
        default:
            break
        }
    }

    private mutating func releaseAllDataWaiters() {
        for waiting in waitingForAllData { ready.push(priority: tasks[waiting].priority, task: waiting) }
        waitingForAllData = []
    }

    private mutating func releaseAnalyzeIfDue(_ table: Int) {
        guard remainingData[table] == 0, remainingIndexes[table] == 0, let task = analyzeTask[table] else { return }
        analyzeTask[table] = nil
        ready.push(priority: tasks[task].priority, task: task)
    }
}

/// A binary max-heap of task indexes by priority; among equal priorities the lower index comes first.
private struct ReadyHeap {
    private var items: [(priority: Int64, task: Int)] = []

    private static func before(_ a: (priority: Int64, task: Int), _ b: (priority: Int64, task: Int)) -> Bool {
        a.priority != b.priority ? a.priority > b.priority : a.task < b.task
    }

    mutating func push(priority: Int64, task: Int) {
        items.append((priority, task))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Int? {
        guard !items.isEmpty else { return nil }
        let top = items[0].task
        let last = items.removeLast()
        guard !items.isEmpty else { return top }
        items[0] = last
        var parent = 0
        while true {
            let (left, right) = (2 * parent + 1, 2 * parent + 2)
            var first = parent
            if left < items.count, Self.before(items[left], items[first]) { first = left }
            if right < items.count, Self.before(items[right], items[first]) { first = right }
            guard first != parent else { return top }
            items.swapAt(parent, first)
            parent = first
        }
    }
}
