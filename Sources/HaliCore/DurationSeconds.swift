extension Duration {
    /// The duration in seconds, for printing and rates (a Double keeps sub-microsecond detail for anything under days).
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
