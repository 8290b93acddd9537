import Foundation

/// A thread that calls `body` every `interval` seconds until stopped.
/// (The sentry writes cached pages back without a Flush after them, and sends
/// Close late and in batches: without this, such data would wait for shutdown.)
final class PeriodicCommitter: @unchecked Sendable {
    private let condition = NSCondition()
    private var stopped = false
    private var finished = false
    private var thread: Thread?

    init(interval: Double, _ body: @escaping @Sendable (_ round: Int) -> Void) {
        let thread = Thread { [condition] in
            var round = 0
            while true {
                condition.lock()
                let deadline = Date(timeIntervalSinceNow: interval)
                while !self.stopped && condition.wait(until: deadline) {}
                let stop = self.stopped
                condition.unlock()
                if stop { break }
                body(round)
                round += 1
            }
            condition.lock()
            self.finished = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "sealgofer-commit"
        self.thread = thread
        thread.start()
    }

    /// Stops the thread and waits until a round in progress has ended.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        // From the committer's own thread (a last release inside a round) there is nothing to wait for.
        while !finished && Thread.current !== thread { condition.wait() }
        condition.unlock()
    }
}
