import NIOCore
public import NIOSSL

/// TLS for connections that cross a network (swift-nio-ssl, BoringSSL inside): the daemon presents a certificate,
/// the clients verify it against a CA file they are given (a lab's own CA, or the daemon's self-signed
/// certificate itself) or the system's roots, and check the host name. Over a Unix socket or loopback on the
/// daemon's own machine, plain TCP stays the default.
public enum TLSRole: Sendable {
    case server(NIOSSLContext)
    case client(NIOSSLContext, serverHostname: String?)
}

/// Why TLS could not be set up: a file that is not there or not PEM, a key that does not match.
public struct TLSSetupError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

public enum HaliTLS {
    /// The daemon's context: a PEM certificate chain (leaf first) and its PEM private key.
    public static func serverContext(certificatePath: String, keyPath: String) throws(TLSSetupError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certificatePath) } catch {
            throw TLSSetupError(description: "--tls-cert \(certificatePath): not a readable PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw TLSSetupError(description: "--tls-cert \(certificatePath): holds no certificate") }
        do { key = try NIOSSLPrivateKey(file: keyPath, format: .pem) } catch {
            throw TLSSetupError(description: "--tls-key \(keyPath): not a readable PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw TLSSetupError(description: "--tls-cert/--tls-key: \(error) (does the key belong to the certificate?)")
        }
    }

    /// A client's context: trusts the PEM certificates in `trustedCertificatesPath` (nil: the system's roots) and
    /// verifies the daemon's certificate and host name.
    public static func clientContext(trusting trustedCertificatesPath: String?) throws(TLSSetupError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let trustedCertificatesPath {
            do { configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(trustedCertificatesPath)) } catch {
                throw TLSSetupError(description: "--tls-ca \(trustedCertificatesPath): not a readable PEM certificate (\(error))")
            }
        }
        do { return try NIOSSLContext(configuration: configuration) } catch { throw TLSSetupError(description: "TLS: \(error)") }
    }
}
