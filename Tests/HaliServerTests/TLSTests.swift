import Foundation
import HaliClient
import HaliCore
import HaliServer
import HaliTransport
import HaliWire
import Logging
import Testing

/// A self-signed certificate for localhost and 127.0.0.1 made by Debian's openssl for this run; nil (the test says
/// why and is skipped) where openssl is absent.
func selfSignedCertificate() throws -> (certificate: String, key: String)? {
    let directory = NSTemporaryDirectory() + "hali-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let openssl = ["/usr/bin/openssl", "/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let openssl else { return nil }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: openssl)
    process.arguments = [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem",
    ]
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return (directory + "/cert.pem", directory + "/key.pem")
}

@Suite(.serialized) struct TLSTests {
    @Test func selfSignedDaemonIsRefusedWithoutTrustAndAcceptedWithIt() async throws {
        guard let (certificate, key) = try selfSignedCertificate() else {
            print("TLSTests: openssl not found, skipped (apt-get install openssl)")
            return
        }
        try await withDaemon(configure: { $0.tls = (certificate, key) }) { _, endpoint in
            // The system's roots do not know this certificate.
            do {
                try await HaliConnection.withConnection(to: endpoint, hello: hello(), tls: try HaliTLS.clientContext(trusting: nil)) { _ in }
                Issue.record("an untrusted certificate was accepted")
            } catch ClientError.connectFailed(_, let reason) {
                #expect(reason.contains("TLS"), "\(reason)")
            }
            // Trusting the daemon's own certificate: the handshake, Hello and a request go through, by IP and by name.
            guard case .tcp(_, let port) = endpoint else { return }
            for host in ["127.0.0.1", "localhost"] {
                try await HaliConnection.withConnection(
                    to: .tcp(host: host, port: port), hello: hello(), tls: try HaliTLS.clientContext(trusting: certificate)
                ) { c in
                    #expect(c.welcome.annotator == "tester")
                    _ = try await c.ping()
                }
            }
            // A plaintext client gets no session, and is told why in words (not "a frame of 352,518,400 bytes").
            do {
                try await HaliConnection.withConnection(to: endpoint, hello: hello()) { _ in }
                Issue.record("a plaintext client was served by a TLS daemon")
            } catch ClientError.connectFailed(_, let reason) {
                #expect(reason.contains("the daemon speaks TLS"), "\(reason)")
            }
        }
    }

    @Test func badCertificateFilesStopTheDaemonAtStart() throws {
        guard let (certificate, _) = try selfSignedCertificate(), let (_, otherKey) = try selfSignedCertificate() else { return }
        var configuration = ServerConfiguration(listen: [.tcp(host: "127.0.0.1", port: 0)], annotators: try AnnotatorRegistry([]))
        configuration.dataDirectory = NSTemporaryDirectory() + "halid-tls-bad-\(getpid())"
        for (cert, key, words) in [
            ("/no/such.pem", otherKey, "--tls-cert"), (certificate, "/no/such.pem", "--tls-key"), (certificate, otherKey, "key"),
        ] {
            configuration.tls = (cert, key)
            do {
                _ = try HaliDaemon(configuration: configuration, logger: .init(label: "tls"))
                Issue.record("\(cert) with \(key) was accepted")
            } catch {
                #expect("\(error)".contains(words), "\(error)")
            }
        }
    }
}
