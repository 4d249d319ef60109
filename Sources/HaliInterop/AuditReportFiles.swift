// What `hali report` writes from an `AuditReport`: five CSV tables (columns documented in docs/user-guide.md,
// "Measuring your annotators"; scripts read them, so names only ever get added), two PNG charts, and the plain-text
// summary printed on stdout. Empty CSV cells mean "cannot be computed"; the `note` column says why.

import Foundation
public import HaliImaging
import HaliIndex
import HaliPNG

extension AuditReport {
    public static let fileNames = [
        "sessions.csv", "annotators.csv", "model_accuracy.csv", "agreement_pairs.csv", "agreement_fleiss.csv", "labels_per_minute.png",
        "model_accuracy.png",
    ]

    /// Writes every file of `fileNames` into `directory` (created if needed); returns their paths.
    public func write(to directory: String) throws -> [String] {
        try Directories.ensure(directory, purpose: "--out")
        let texts = [sessionsCSV(), annotatorsCSV(), modelAccuracyCSV(), pairsCSV(), fleissCSV()]
        let charts = [labelsPerMinuteChart(), modelAccuracyChart()]
        let paths = Self.fileNames.map { (directory as NSString).appendingPathComponent($0) }
        for (text, path) in zip(texts, paths) { try text.write(toFile: path, atomically: true, encoding: .utf8) }
        for (chart, path) in zip(charts, paths.suffix(2)) { try Data(chart.png()).write(to: URL(fileURLWithPath: path), options: .atomic) }
        return paths
    }

    // MARK: Tables

    static let activityColumns = [
        "labels", "manual", "accepted", "corrected", "imported", "undos", "active_seconds", "breaks", "labels_per_minute", "manual_per_minute",
        "accepted_per_minute", "corrected_per_minute", "suggestions_shown", "acceptance_rate", "corrections_per_suggestion",
        "median_manual_seconds", "median_accepted_seconds", "median_corrected_seconds", "median_assisted_seconds", "timed_assisted_labels",
        "time_saved_seconds", "speedup", "note",
    ]

    static func activityFields(_ a: Activity) -> [String] {
        [
            "\(a.labels)", "\(a.manual)", "\(a.accepted)", "\(a.corrected)", "\(a.imported)", "\(a.undos)", number(a.activeSeconds, 3), "\(a.breaks)",
            number(a.perMinute(a.labels), 3), number(a.perMinute(a.manual), 3), number(a.perMinute(a.accepted), 3),
            number(a.perMinute(a.corrected), 3), "\(a.suggestionsShown)", number(a.acceptanceRate, 4), number(a.correctionsPerSuggestion, 4),
            number(a.medianManualSeconds, 3), number(a.medianAcceptedSeconds, 3), number(a.medianCorrectedSeconds, 3),
            number(a.medianAssistedSeconds, 3), "\(a.assistedSeconds.count)", number(a.timeSavedSeconds, 3), number(a.speedup, 4),
            a.timeSavedNote ?? "",
        ]
    }

    /// One row per (annotator, slide, task).
    public func sessionsCSV() -> String {
        CSV.line(["annotator", "slide", "task"] + Self.activityColumns)
            + sessions.map { CSV.line([$0.key.annotator, $0.key.slide, $0.key.task] + Self.activityFields($0.activity)) }.joined()
    }

    /// One row per annotator over all their (selected) slides and tasks: counts and times add, per-label times pool.
    public func annotatorsCSV() -> String {
        CSV.line(["annotator", "sessions"] + Self.activityColumns)
            + annotators.map { CSV.line([$0.annotator, "\($0.sessions)"] + Self.activityFields($0.activity)) }.joined()
    }

    /// The model's accuracy (accepted / suggestions) per quarter of each session's labels.
    public func modelAccuracyCSV() -> String {
        CSV.line(["annotator", "slide", "task", "part", "first_label", "last_label", "labels", "accepted", "corrected", "model_accuracy"])
            + accuracyOverSession.map { p in
                CSV.line([
                    p.session.annotator, p.session.slide, p.session.task, "\(p.part)", "\(p.firstLabel)", "\(p.lastLabel)", "\(p.labels)",
                    "\(p.accepted)", "\(p.corrected)", Self.number(p.accuracy, 4),
                ])
            }.joined()
    }

    /// Cohen's kappa per pair of annotators per (slide, task).
    public func pairsCSV() -> String {
        CSV.line([
            "slide", "task", "annotator_a", "annotator_b", "shared_cells", "agreeing_cells", "observed_agreement", "expected_agreement",
            "cohen_kappa", "note",
        ])
            + pairs.map { p in
                CSV.line([
                    p.slide, p.task, p.first, p.second, "\(p.agreement.items)", "\(p.agreement.agreeing)", Self.number(p.agreement.observed, 4),
                    Self.number(p.agreement.expected, 4), Self.number(p.agreement.kappa.value, 4), p.agreement.kappa.undefinedReason ?? "",
                ])
            }.joined()
    }

    /// Fleiss' kappa per (slide, task) with at least three annotators, over the cells all of them labelled.
    public func fleissCSV() -> String {
        CSV.line(["slide", "task", "annotators", "raters", "cells", "classes", "mean_agreement", "expected_agreement", "fleiss_kappa", "note"])
            + groups.map { g in
                CSV.line([
                    g.slide, g.task, g.annotators.joined(separator: "; "), "\(g.annotators.count)", "\(g.agreement.items)", "\(g.classes)",
                    Self.number(g.agreement.observed, 4), Self.number(g.agreement.expected, 4), Self.number(g.agreement.kappa.value, 4),
                    g.agreement.kappa.undefinedReason ?? "",
                ])
            }.joined()
    }

    /// A fixed-point number, or an empty field for a value that cannot be computed.
    static func number(_ value: Double?, _ decimals: Int) -> String { value.map { String(format: "%.\(decimals)f", $0) } ?? "" }

    // MARK: Summary

    /// The plain-text summary `hali report` prints.
    public func summaryLines() -> [String] {
        func rate(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "n/a" }
        func percent(_ v: Double?) -> String { v.map { String(format: "%.1f %%", 100 * $0) } ?? "n/a" }
        var lines = [
            "\(eventCount) events, \(annotators.count) annotator\(annotators.count == 1 ? "" : "s"), \(sessions.count) session\(sessions.count == 1 ? "" : "s") "
                + "(annotator × slide × task). Active time = gaps between consecutive labels of a session; gaps over "
                + String(format: "%g", breakSeconds) + " s are breaks, not work."
        ]
        for (annotator, count, a) in annotators {
            lines.append(
                "\(annotator) (\(count) session\(count == 1 ? "" : "s")): \(a.labels) labels (\(a.manual) manual, \(a.accepted) accepted, "
                    + "\(a.corrected) corrected) in " + String(format: "%.1f", a.activeSeconds / 60) + " active min, \(a.breaks) break"
                    + (a.breaks == 1 ? "" : "s") + ": \(rate(a.perMinute(a.labels))) labels/min (manual \(rate(a.perMinute(a.manual))), "
                    + "accepted \(rate(a.perMinute(a.accepted))), corrected \(rate(a.perMinute(a.corrected))))")
            lines.append(
                "  \(a.suggestionsShown) suggestions shown: acceptance \(percent(a.acceptanceRate)), corrections per suggestion "
                    + "\(rate(a.correctionsPerSuggestion))")
            if let saved = a.timeSavedSeconds, let manual = a.medianManualSeconds, let assisted = a.medianAssistedSeconds {
                lines.append(
                    "  median s/label: manual " + String(format: "%.1f", manual) + ", assisted " + String(format: "%.1f", assisted)
                        + "; time saved " + String(format: "%.0f", saved) + " s over \(a.assistedSeconds.count) assisted labels, speed-up "
                        + (a.speedup.map { String(format: "%.2f×", $0) } ?? "n/a"))
            } else {
                lines.append("  time saved cannot be computed: \(a.timeSavedNote ?? "no timed labels")")
            }
        }
        for (key, _) in sessions {
            let parts = accuracyOverSession.filter { $0.session == key }
            guard parts.contains(where: { $0.accuracy != nil }) else { continue }
            lines.append(
                "model accuracy by quarter of \(key.annotator)'s labels on \(key.slide)/\(key.task): "
                    + parts.map { $0.accuracy.map { String(format: "%.0f %%", 100 * $0) } ?? "–" }.joined(separator: ", "))
        }
        for p in pairs {
            let kappa = p.agreement.kappa.value.map { String(format: "%.3f", $0) } ?? "undefined (\(p.agreement.kappa.undefinedReason!))"
            lines.append("agreement \(p.slide)/\(p.task) \(p.first) vs \(p.second): \(p.agreement.items) shared cells, Cohen's κ \(kappa)")
        }
        for g in groups {
            let kappa = g.agreement.kappa.value.map { String(format: "%.3f", $0) } ?? "undefined (\(g.agreement.kappa.undefinedReason!))"
            lines.append(
                "agreement \(g.slide)/\(g.task), all \(g.annotators.count) annotators: \(g.agreement.items) cells labelled by every one, Fleiss' κ \(kappa)"
            )
        }
        return lines
    }

    // MARK: Charts

    static let sourceColours: [(UInt8, UInt8, UInt8)] = [(120, 120, 120), (44, 160, 44), (214, 39, 40)]
    static let seriesColours: [(UInt8, UInt8, UInt8)] = [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    ]

    /// Grouped bars: each annotator's manual, accepted and corrected labels per active minute.
    public func labelsPerMinuteChart(width: Int = 900, height: Int = 480) -> Canvas {
        var c = Canvas(width: width, height: height)
        let left = 70, right = width - 20, top = 70, bottom = height - 60
        let rates = annotators.map { row in
            [row.activity.manual, row.activity.accepted, row.activity.corrected].map { row.activity.perMinute($0) ?? 0 }
        }
        let (yMax, step) = Self.axis(max: rates.flatMap { $0 }.max() ?? 0)
        func py(_ y: Double) -> Int { bottom - Int((y / yMax * Double(bottom - top)).rounded()) }
        var tick = 0.0
        while tick <= yMax + step / 2 {
            c.line(Double(left), Double(py(tick)), Double(right), Double(py(tick)), (225, 225, 225))
            c.text(String(format: step < 1 ? "%.1f" : "%.0f", tick), x: 8, y: py(tick) - 7, (60, 60, 60))
            tick += step
        }
        let groupWidth = Double(right - left) / Double(max(annotators.count, 1))
        let barWidth = groupWidth * 0.8 / 3
        for (i, group) in rates.enumerated() {
            let x0 = Double(left) + Double(i) * groupWidth + groupWidth * 0.1
            for (s, value) in group.enumerated() where value > 0 {
                let bx = Int(x0 + Double(s) * barWidth)
                c.fillRect(bx + 1, py(value), bx + Int(barWidth) - 1, bottom, Self.sourceColours[s])
            }
            let name = String(annotators[i].annotator.prefix(max(1, Int(groupWidth) / 12)))
            c.text(name, x: Int(x0 + groupWidth * 0.4) - name.count * 6, y: bottom + 12, (0, 0, 0))
        }
        c.line(Double(left), Double(bottom), Double(right), Double(bottom), (0, 0, 0), thickness: 2)
        c.line(Double(left), Double(top), Double(left), Double(bottom), (0, 0, 0), thickness: 2)
        c.text("LABELS PER ACTIVE MINUTE BY SOURCE", x: left, y: 14, (0, 0, 0))
        for (s, name) in ["MANUAL", "ACCEPTED", "CORRECTED"].enumerated() {
            let lx = left + s * 160
            c.fillRect(lx, 42, lx + 14, 54, Self.sourceColours[s])
            c.text(name, x: lx + 22, y: 42, (0, 0, 0))
        }
        return c
    }

    /// One line per session: the model's accuracy on each quarter of the session's labels (no point where no
    /// suggestion was shown in that quarter).
    public func modelAccuracyChart(width: Int = 900, height: Int = 480) -> Canvas {
        var c = Canvas(width: width, height: height)
        let left = 70, right = width - 290, top = 50, bottom = height - 60
        let parts = Double(Self.accuracyParts)
        func px(_ part: Int) -> Double { Double(left) + (Double(part) - 0.5) / parts * Double(right - left) }
        func py(_ y: Double) -> Double { Double(bottom) - y * Double(bottom - top) }
        for tenth in stride(from: 0, through: 10, by: 2) {
            let y = Double(tenth) / 10
            c.line(Double(left), py(y), Double(right), py(y), (225, 225, 225))
            c.text(String(format: "%.1f", y), x: 20, y: Int(py(y)) - 7, (60, 60, 60))
        }
        for part in 1...Self.accuracyParts { c.text("Q\(part)", x: Int(px(part)) - 12, y: bottom + 12, (60, 60, 60)) }
        c.line(Double(left), Double(bottom), Double(right), Double(bottom), (0, 0, 0), thickness: 2)
        c.line(Double(left), Double(top), Double(left), Double(bottom), (0, 0, 0), thickness: 2)
        c.text("MODEL ACCURACY (ACCEPTED / SUGGESTED)", x: left, y: 14, (0, 0, 0))
        c.text("QUARTERS OF EACH SESSION, IN LABEL ORDER", x: left + 60, y: bottom + 36, (0, 0, 0))
        let shown = sessions.map(\.key).filter { key in accuracyOverSession.contains { $0.session == key && $0.accuracy != nil } }
        // Name the slide and task in the legend only when they differ between the lines.
        let oneSlideAndTask = Set(shown.map { [$0.slide, $0.task] }).count == 1
        for (i, key) in shown.enumerated() {
            let colour = Self.seriesColours[i % Self.seriesColours.count]
            let points = accuracyOverSession.filter { $0.session == key }.compactMap { p in p.accuracy.map { (px(p.part), py($0)) } }
            for (a, b) in zip(points, points.dropFirst()) { c.line(a.0, a.1, b.0, b.1, colour, thickness: 3) }
            for p in points { c.fillRect(Int(p.0) - 4, Int(p.1) - 4, Int(p.0) + 4, Int(p.1) + 4, colour) }
            // The legend lists as many sessions as fit beside the plot; the CSV has them all.
            let ly = top + i * 20
            guard ly < bottom - 20 else { continue }
            c.fillRect(right + 16, ly, right + 30, ly + 12, colour)
            c.text(
                String((oneSlideAndTask ? key.annotator : "\(key.annotator) \(key.slide)/\(key.task)").prefix(19)), x: right + 38, y: ly, (0, 0, 0))
        }
        return c
    }

    /// A y-axis top of 1, 2 or 5 × 10^k steps, at most about six ticks, covering `max`.
    static func axis(max value: Double) -> (top: Double, step: Double) {
        guard value > 0 else { return (1, 0.2) }
        let raw = value / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw }!
        return ((value / step).rounded(.up) * step, step)
    }
}
