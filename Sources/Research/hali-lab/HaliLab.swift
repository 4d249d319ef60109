import ArgumentParser

/// The research tools: training HALI's networks and measuring HALI against labelled data. Apart from `hali` so that
/// the product never links the training code; `hali train-backbone|train-detector|embed|eval` hand over to it.
@main
struct HaliLab: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hali-lab",
        abstract: "HALI's research tools: train the networks, and measure detection, features and the learning loop.",
        version: "0.3.0",
        subcommands: [TrainBackboneCommand.self, TrainDetectorCommand.self, EmbedCommand.self, Eval.self])
}

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure HALI against labelled data: detection, backbone features, the learning loop.",
        subcommands: [
            EvalDetectionCommand.self, EvalBackboneCommand.self, EvalEffectivenessCommand.self, EvalEfficiencyCommand.self,
            EvalReportCommand.self,
        ])
}
