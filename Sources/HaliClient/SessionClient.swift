public import HaliWire

/// Labelling sessions (OpenSession, GetPatch, LabelEvent, Undo, NextPatch) over a `HaliConnection`.
///
/// The typed helpers are one request, one reply each (an `Error` reply is thrown as `ClientError.server`).
/// `exchange(sending:onReceive:)` is for an interactive client that must send while it waits for what the daemon
/// streams (LabelAcks, Predictions): it pipes envelopes both ways until either side ends.
extension HaliConnection {
    /// Whether the daemon announced labelling sessions in Welcome.capabilities.
    public var offersLabelling: Bool { welcome.capabilities.contains("labels") }

    public func openSession(slideID: String, task: String) async throws -> SessionState {
        let reply = try await request(.openSession(OpenSession(slideID: slideID, task: task)))
        guard case .sessionState(let state) = reply.body else { throw Self.unexpected("session_state", reply) }
        return state
    }

    public func getPatch(_ request: GetPatch) async throws -> Patch {
        let reply = try await self.request(.getPatch(request))
        guard case .patch(let patch) = reply.body else { throw Self.unexpected("patch", reply) }
        return patch
    }

    /// Sends a label event and waits for its LabelAck.
    public func label(_ event: LabelEvent) async throws -> LabelAck {
        let reply = try await request(.labelEvent(event))
        guard case .labelAck(let ack) = reply.body else { throw Self.unexpected("label_ack", reply) }
        return ack
    }

    public func undo(_ undo: Undo) async throws -> LabelAck {
        let reply = try await request(.undo(undo))
        guard case .labelAck(let ack) = reply.body else { throw Self.unexpected("label_ack", reply) }
        return ack
    }

    public func nextPatch(_ request: NextPatch = NextPatch()) async throws -> NextPatchPick {
        let reply = try await self.request(.nextPatch(request))
        guard case .nextPatchPick(let pick) = reply.body else { throw Self.unexpected("next_patch_pick", reply) }
        return pick
    }

    /// How an `exchange` ended.
    public enum ExchangeEnd: Sendable, Equatable {
        /// The caller finished the outbound stream (it is done with the connection).
        case outboundFinished
        /// The daemon closed the connection.
        case closedByDaemon
    }

    /// Full duplex: writes every envelope `outbound` yields, as it comes, and hands every message the daemon
    /// sends (replies, Errors and streamed messages alike) to `onReceive`, in arrival order. Returns when the daemon
    /// closes the connection or when `outbound` finishes; throws what the connection throws.
    ///
    /// The caller chooses request ids (this bypasses `request(_:)`); do not call `request(_:)` or `receive()`
    /// while an exchange runs.
    @discardableResult
    public func exchange(
        sending outbound: AsyncStream<Envelope>, onReceive: @escaping @Sendable (Envelope) -> Void
    ) async throws -> ExchangeEnd {
        // One task only writes and the other only reads: `send` touches the outbound writer, `receive` the inbound
        // iterator and `unsolicited`, never the same state.
        let box = ConnectionBox(self)
        return try await withThrowingTaskGroup(of: ExchangeEnd.self) { group in
            group.addTask {
                for await envelope in outbound { try await box.connection.send(envelope) }
                return .outboundFinished
            }
            group.addTask {
                while let envelope = try await box.connection.receive() { onReceive(envelope) }
                return .closedByDaemon
            }
            let end: ExchangeEnd
            do {
                end = try await group.next() ?? .closedByDaemon
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
            return end
        }
    }

    private static func unexpected(_ expected: String, _ reply: Envelope) -> ClientError {
        .unexpectedReply(expected: expected, got: reply.body.name)
    }
}

private final class ConnectionBox: @unchecked Sendable {
    let connection: HaliConnection
    init(_ connection: HaliConnection) { self.connection = connection }
}
