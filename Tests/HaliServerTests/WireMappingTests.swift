import HaliEngine
import HaliWire
import Testing

@testable import HaliServer

/// The strategy table names every case of both enumerations once, so neither direction can fall through.
@Test func everyStrategyMapsBothWays() {
    #expect(Strategy.allCases.map { Strategy(PickStrategy($0)) } == Strategy.allCases)
    #expect(PickStrategy.allCases.map { PickStrategy(Strategy($0)) } == PickStrategy.allCases)
}
