import ArgumentParser
import Foundation
import HaliCore
import HaliTerminal
import HaliWire

/// `hali label SLIDE TASK`: the terminal labelling client.
///
/// Option parsing only: the terminal shell is `HaliTerminal.TerminalLabelling`, the client's decisions `LabelClient`.
struct LabelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "label",
        abstract: "Label cells in the terminal: the patch, the model's suggestions, a key per class.",
        discussion: """
            Keys: arrows or hjkl select the nearest cell that way; a class key labels it; Enter or Space accepts its \
            suggestion; A accepts all suggestions in view; u undoes; Shift-arrows or wasd pan; + and - zoom; n asks \
            the daemon for the next patch; ? shows help; q quits. See docs/terminal-client.md.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .long, help: "Colours: auto (from $COLORTERM, $TERM, $NO_COLOR), truecolor, 256 or none.")
    var color: String = "auto"

    @Option(
        name: .long,
        help:
            "How the patch is drawn: auto (ask the terminal; $HALI_GRAPHICS overrides), kitty, sixel, iterm, blocks (half-block characters) or none."
    )
    var graphics: String = "auto"

    @Option(name: .long, help: "Next-patch strategy: default, coreset, entropy, margin or random.")
    var strategy: String = "default"

    @Option(
        name: .long,
        help:
            "Patch side in microns to ask NextPatch for (0: the daemon's default). About 2 µm per column of the picture shows cells as boxes, e.g. 90 at 80×24."
    )
    var patchUm: Double = 0

    @Argument(help: "The slide's id (see hali slides).")
    var slide: String

    @Argument(help: "The labelling task, e.g. til, tumour, ki67, phenotype.")
    var task: String

    func validate() throws {
        guard color == "auto" || ColorMode(rawValue: color) != nil else {
            throw ValidationError("--color must be auto, truecolor, 256 or none")
        }
        guard graphics == "auto" || GraphicsProtocol(rawValue: graphics) != nil else {
            throw ValidationError("--graphics must be auto, kitty, sixel, iterm, blocks or none")
        }
        guard patchUm >= 0 else { throw ValidationError("--patch-um must be 0 or positive") }
        guard Self.strategies[strategy] != nil else {
            throw ValidationError("--strategy must be one of \(Self.strategies.keys.sorted().joined(separator: ", "))")
        }
    }

    static let strategies: [String: Strategy] = [
        "default": .default, "coreset": .coreset, "entropy": .entropy, "margin": .margin, "random": .random,
    ]

    func run() async throws {
        let options = TerminalLabelling.Options(
            slideID: slide, task: task, colorMode: ColorMode(rawValue: color), strategy: Self.strategies[strategy] ?? .default,
            patchSizeMicrons: patchUm, graphics: GraphicsProtocol(rawValue: graphics))
        let hello = Hello(clientName: "hali-terminal", clientVersion: HaliCLIVersion.string, token: try connection.resolvedToken())
        let outcome: TerminalLabelling.Outcome
        do {
            outcome = try await TerminalLabelling.run(
                endpoint: try connection.endpoint(), hello: hello, tls: try connection.tlsContext(), options: options)
        } catch let error as TerminalError {
            FileHandle.standardError.write(Data("hali label: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let lost = outcome.unacknowledged
        print(
            "hali label: \(outcome.labelsDone) labels done in \(slide)/\(task)"
                + (lost > 0 ? "; \(lost) label(s) were not acknowledged by the daemon and may be lost" : ""))
        if lost > 0 { throw ExitCode(1) }
    }
}
