// Load generator: N simulated annotators labelling at a fixed rate against a running halid.
//
// Each annotator connects with its own token (bench-<i>:bench-token-<i>; start the daemon with
// --annotators-file from `hali-bench-serve --write-annotators FILE`), opens a session on the slide for the task,
// fetches one patch, and labels its cells in turn at --rate labels/s (class alternates by a fixed rule), for
// --duration seconds. It measures, per label, the time from sending the LabelEvent to its LabelAck, and, for the
// labels that trigger a retrain (the 20th, then every 5th), the time from sending that label to the next
// Predictions message. Prints p50/p95/p99 of both, throughput, and errors.
//
// With --report-every S it also prints one line per S seconds (the soak: Deploy/bench/soak.sh): acks, both
// latencies and errors within that interval alone, so drift over a long run shows.
//
// Usage: hali-bench-serve --server 127.0.0.1:7070 --slide ID --task til --annotators 100 --rate 1 --duration 30
import Foundation
import HaliClient
import HaliCore
import HaliWire

struct Options {
    var server = "127.0.0.1:7070"
    var slide = ""
    var task = "til"
    var annotators = 100
    var rate = 1.0
    var duration = 30.0
    var writeAnnotators: String?
    var reportEvery: Double?
}

func parse() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst().makeIterator()
    while let a = args.next() {
        switch a {
        case "--server": o.server = args.next() ?? o.server
        case "--slide": o.slide = args.next() ?? ""
        case "--task": o.task = args.next() ?? o.task
        case "--annotators": o.annotators = Int(args.next() ?? "") ?? o.annotators
        case "--rate": o.rate = Double(args.next() ?? "") ?? o.rate
        case "--duration": o.duration = Double(args.next() ?? "") ?? o.duration
        case "--write-annotators": o.writeAnnotators = args.next()
        case "--report-every": o.reportEvery = Double(args.next() ?? "")
        default:
            FileHandle.standardError.write(Data("unknown argument \(a)\n".utf8))
            exit(2)
        }
    }
    return o
}

/// Send times of one annotator's labels, and of the oldest label whose retrain has not yet produced Predictions.
final class Timing: @unchecked Sendable {
    private let lock = NSLock()
    private var sentAt: [UInt64: ContinuousClock.Instant] = [:]
    private var trainingSentAt: [ContinuousClock.Instant] = []

    func sent(_ seq: UInt64, at time: ContinuousClock.Instant, triggersTraining: Bool) {
        lock.lock()
        defer { lock.unlock() }
        sentAt[seq] = time
        if triggersTraining { trainingSentAt.append(time) }
    }

    func acked(_ seq: UInt64) -> ContinuousClock.Instant? {
        lock.lock()
        defer { lock.unlock() }
        return sentAt.removeValue(forKey: seq)
    }

    /// Predictions answer every retrain triggered so far (the pool coalesces a burst into one fit).
    func predictionsArrived() -> ContinuousClock.Instant? {
        lock.lock()
        defer { lock.unlock() }
        guard let first = trainingSentAt.first else { return nil }
        trainingSentAt.removeAll()
        return first
    }
}

actor Results {
    var ack: [Double] = []
    var suggestions: [Double] = []
    var errors: [String] = []
    var labels = 0
    // Since the last interval report.
    var intervalAck: [Double] = []
    var intervalSuggestions: [Double] = []
    var intervalErrors = 0
    func add(ack ms: Double) { ack.append(ms); intervalAck.append(ms); labels += 1 }
    func add(suggestion ms: Double) { suggestions.append(ms); intervalSuggestions.append(ms) }
    func add(error: String) { errors.append(error); intervalErrors += 1 }
    func takeInterval() -> (ack: [Double], suggestions: [Double], errors: Int) {
        defer { (intervalAck, intervalSuggestions, intervalErrors) = ([], [], 0) }
        return (intervalAck, intervalSuggestions, intervalErrors)
    }
}

func percentile(_ values: [Double], _ p: Double) -> Double { HaliCore.percentile(values, p) ?? .nan }

let options = parse()
if let path = options.writeAnnotators {
    let lines = (0..<options.annotators).map { "bench-\($0) \(SHA256.hexDigest("bench-token-\($0)"))" }
    try! (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    print("wrote \(options.annotators) annotators to \(path)")
    exit(0)
}
let endpoint = try! Endpoint(parsing: options.server)
let results = Results()
let clock = ContinuousClock()
let start = clock.now
let end = start + .milliseconds(Int(options.duration * 1000))

func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) * 1e-15 }

let reporter = Task {
    guard let every = options.reportEvery, every > 0 else { return }
    print("interval_end_s,acks,ack_p50_ms,ack_p95_ms,ack_p99_ms,suggestions,sugg_p50_ms,sugg_p95_ms,sugg_p99_ms,errors")
    var k = 1
    while !Task.isCancelled {
        try? await Task.sleep(until: start + .milliseconds(Int(every * 1000) * k), clock: clock)
        if Task.isCancelled { return }
        let (a, g, e) = await results.takeInterval()
        print(
            String(
                format: "%.0f,%d,%.2f,%.2f,%.2f,%d,%.2f,%.2f,%.2f,%d", every * Double(k), a.count, percentile(a, 0.5), percentile(a, 0.95),
                percentile(a, 0.99), g.count, percentile(g, 0.5), percentile(g, 0.95), percentile(g, 0.99), e))
        fflush(nil)  // every stream: the line goes out now even when piped (tee)
        k += 1
    }
}

await withTaskGroup(of: Void.self) { group in
    for i in 0..<options.annotators {
        group.addTask {
            do {
                // Stagger connections over the first second.
                try await Task.sleep(for: .milliseconds(i * 1000 / max(1, options.annotators)))
                let hello = Hello(clientName: "hali-bench-serve", token: "bench-token-\(i)")
                try await HaliConnection.withConnection(to: endpoint, hello: hello) { c in
                    guard
                        case .sessionState(let state) = try await c.request(.openSession(OpenSession(slideID: options.slide, task: options.task)))
                            .body,
                        let slide = state.slide
                    else { throw ClientError.unexpectedReply(expected: "session_state", got: "") }
                    // Each annotator works on its own 512×512 window, spread over the slide.
                    let columns = max(1, Int(slide.width / 512)), rows = max(1, Int(slide.height / 512))
                    let cell = i % (columns * rows)
                    let region = Region(x: Int64(cell % columns) * 512, y: Int64(cell / columns) * 512, width: 512, height: 512)
                    guard case .patch(let patch) = try await c.request(.getPatch(GetPatch(target: .region(region)))).body
                    else { throw ClientError.unexpectedReply(expected: "patch", got: "") }
                    guard !patch.cells.isEmpty else { return }
                    let classes = state.classes.map(\.name)
                    // Full duplex: acks and pushed Predictions are timed as they arrive, not when the next label goes out.
                    let timing = Timing()
                    let (stream, outbound) = AsyncStream<Envelope>.makeStream()
                    let sender = Task {
                        var seq = state.lastAckedSeq
                        var index = 0
                        let interval = Duration.milliseconds(Int(1000 / options.rate))
                        var next = clock.now
                        while clock.now < end {
                            try? await Task.sleep(until: next, clock: clock)
                            next = next + interval
                            let target = patch.cells[index % patch.cells.count]
                            index += 1
                            seq += 1
                            let name = classes[target.areaUm2 > 40 ? 0 : 1]
                            // The 20th label, then every 5th, triggers a retrain.
                            timing.sent(seq, at: clock.now, triggersTraining: index >= 20 && (index - 20) % 5 == 0)
                            outbound.yield(
                                Envelope(
                                    requestID: seq,
                                    .labelEvent(LabelEvent(clientSeq: seq, cellID: target.id, className: name, source: .manual, clientTimeMs: 0))))
                        }
                        // Leave time for the last acks and predictions, then hang up.
                        try? await Task.sleep(for: .seconds(2))
                        outbound.finish()
                    }
                    try await c.exchange(sending: stream) { envelope in
                        let now = clock.now
                        switch envelope.body {
                        case .labelAck(let ack):
                            if let sent = timing.acked(ack.clientSeq) { Task { await results.add(ack: ms(now - sent)) } }
                        case .predictions:
                            if let sent = timing.predictionsArrived() { Task { await results.add(suggestion: ms(now - sent)) } }
                        case .error(let e):
                            Task { await results.add(error: "annotator \(i): \(e.code) \(e.message)") }
                        default:
                            break
                        }
                    }
                    sender.cancel()
                }
            } catch {
                await results.add(error: "annotator \(i): \(error)")
            }
        }
    }
}

reporter.cancel()
let elapsed = ms(clock.now - start) / 1000
let ack = await results.ack, sug = await results.suggestions, errors = await results.errors, labels = await results.labels
print(
    String(
        format: "%d annotators, %.2f labels/s each, %.0f s: %d labels acked (%.1f/s), %d errors", options.annotators, options.rate, elapsed, labels,
        Double(labels) / elapsed, errors.count))
print(
    String(
        format: "label -> ack           p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms", percentile(ack, 0.5), percentile(ack, 0.95),
        percentile(ack, 0.99), ack.max() ?? .nan))
print(
    String(
        format: "label -> suggestions   p50 %.1f ms, p95 %.1f ms, p99 %.1f ms (%d retrains observed)", percentile(sug, 0.5), percentile(sug, 0.95),
        percentile(sug, 0.99), sug.count))
for e in errors.prefix(5) { print("error: \(e)") }
