// protobuf-c ⇄ Swift for the connection: Hello and Welcome, Ping and Pong, status, errors and Bye. WireCodec.swift
// owns the envelope and the arena; each message here builds its C struct in the arena and reads one back.

import CHaliProto
import CProtobufC
import HaliCore

extension Hello {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Hello> {
        let m = a.message(hali__v1__hello__init)
        m.pointee.protocol_version = protocolVersion
        m.pointee.client_name = a.string(clientName)
        m.pointee.client_version = a.string(clientVersion)
        m.pointee.token = a.string(token)
        return m
    }

    init(c m: Hali__V1__Hello) {
        self.init(
            protocolVersion: m.protocol_version, clientName: string(m.client_name), clientVersion: string(m.client_version), token: string(m.token))
    }
}

extension Welcome {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Welcome> {
        let m = a.message(hali__v1__welcome__init)
        m.pointee.server_version = a.string(serverVersion)
        m.pointee.protocol_version = protocolVersion
        m.pointee.annotator = a.string(annotator)
        m.pointee.n_capabilities = capabilities.count
        m.pointee.capabilities = a.array(capabilities.map { a.string($0) ?? a.array([CChar(0)]) })
        m.pointee.max_frame_bytes = maxFrameBytes
        m.pointee.server_name = a.string(serverName)
        return m
    }

    init(c m: Hali__V1__Welcome) {
        self.init(
            serverVersion: string(m.server_version), protocolVersion: m.protocol_version, annotator: string(m.annotator),
            capabilities: array(m.capabilities, m.n_capabilities) { string($0) }, maxFrameBytes: m.max_frame_bytes, serverName: string(m.server_name))
    }
}

extension Bye {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Bye> {
        let m = a.message(hali__v1__bye__init)
        m.pointee.reason = a.string(reason)
        return m
    }
}

extension Ping {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Ping> {
        let m = a.message(hali__v1__ping__init)
        m.pointee.nonce = nonce
        m.pointee.client_time_ns = clientTimeNs
        return m
    }

    init(c m: Hali__V1__Ping) {
        self.init(nonce: m.nonce, clientTimeNs: m.client_time_ns)
    }
}

extension Pong {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Pong> {
        let m = a.message(hali__v1__pong__init)
        m.pointee.nonce = nonce
        m.pointee.client_time_ns = clientTimeNs
        m.pointee.server_time_ns = serverTimeNs
        return m
    }

    init(c m: Hali__V1__Pong) {
        self.init(nonce: m.nonce, clientTimeNs: m.client_time_ns, serverTimeNs: m.server_time_ns)
    }
}

extension ServerStatus {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__ServerStatus> {
        let m = a.message(hali__v1__server_status__init)
        m.pointee.server_version = a.string(serverVersion)
        m.pointee.protocol_version = protocolVersion
        m.pointee.uptime_s = uptimeSeconds
        m.pointee.connections = connections
        m.pointee.sessions = sessions
        m.pointee.slides = slides
        m.pointee.frames_received = framesReceived
        m.pointee.frames_rejected = framesRejected
        m.pointee.max_frame_bytes = maxFrameBytes
        m.pointee.listen = a.string(listen)
        m.pointee.n_slides_not_served = slidesNotServed.count
        m.pointee.slides_not_served = a.array(slidesNotServed.map { a.string($0) ?? a.array([CChar(0)]) })
        m.pointee.n_slides_pending = slidesPending.count
        m.pointee.slides_pending = a.array(slidesPending.map { a.string($0) ?? a.array([CChar(0)]) })
        return m
    }

    init(c m: Hali__V1__ServerStatus) {
        self.init(
            serverVersion: string(m.server_version), protocolVersion: m.protocol_version, uptimeSeconds: m.uptime_s, connections: m.connections,
            sessions: m.sessions, slides: m.slides, framesReceived: m.frames_received, framesRejected: m.frames_rejected,
            maxFrameBytes: m.max_frame_bytes, listen: string(m.listen),
            slidesNotServed: array(m.slides_not_served, m.n_slides_not_served) { string($0) },
            slidesPending: array(m.slides_pending, m.n_slides_pending) { string($0) })
    }
}

extension ErrorReply {
    func makeC(_ a: Arena) -> UnsafeMutablePointer<Hali__V1__Error> {
        let m = a.message(hali__v1__error__init)
        m.pointee.code = cEnum(code)
        m.pointee.message = a.string(message)
        m.pointee.client_seq = clientSeq
        m.pointee.fatal = boolean(fatal)
        return m
    }

    init(c m: Hali__V1__Error) {
        self.init(code: openEnum(m.code, default: .unspecified), message: string(m.message), clientSeq: m.client_seq, fatal: boolean(m.fatal))
    }
}
