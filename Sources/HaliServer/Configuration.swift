import Foundation
public import HaliCore
public import HaliEngine
public import HaliTransport
import HaliWire

public struct ServerConfiguration: Sendable {
    public var listen: [Endpoint]
    public var annotators: AnnotatorRegistry
    public var tasks: [TaskDefinition]
    /// Whole-slide images the daemon serves, by path.
    public var slidePaths: [String]
    /// Largest frame body accepted; larger frames are refused before their bodies are buffered.
    public var maxFrameBytes: Int = defaultMaxFrameBytes
    /// Authenticated connections; a Hello past this is refused with RESOURCE_EXHAUSTED.
    public var maxConnections: Int = 1024
    /// Connections that have not yet said Hello, in all and from one peer address. A new connection past either
    /// limit closes the oldest waiting one (of the same peer, when that is the limit reached), so idle connections,
    /// however many, can never keep an annotator from connecting.
    public var maxUnauthenticated: Int = 256
    public var maxUnauthenticatedPerPeer: Int = 32
    /// Hello, idle and per-frame deadlines (`ConnectionDeadlines`).
    public var deadlines = ConnectionDeadlines.Limits()
    /// PEM certificate chain and private key: TCP endpoints speak TLS (Unix sockets stay plain: they do not leave
    /// the machine, and their file mode is their access control).
    public var tls: (certificatePath: String, keyPath: String)?
    /// Refuse to start when a configured slide cannot be served (else it is left out, logged and listed by status).
    public var strict = false
    /// Undecodable frames in a row after which a connection is closed.
    public var maxConsecutiveMalformedFrames: Int = 3
    /// How long a graceful shutdown waits for connections to finish their current request.
    public var shutdownGracePeriod: Duration = .seconds(5)
    public var serverName: String = "halid"
    /// Holds `labels.sqlite` (the label store) and `index/` (slide indexes).
    public var dataDirectory: String = "hali-data"
    /// Ingest slides that have no index before listening (else they are refused with the reason).
    public var ingestMissing = true
    /// Pixel size for slides that record none.
    public var micronsPerPixel: Double?
    /// Backbone weights for first-use ingests: cells get CNN embeddings, which the models and the active learner use.
    public var weightsPath: String?
    /// Learned nucleus detector weights for first-use ingests (`hali train-detector`); nil = the watershed detector.
    public var detectorWeightsPath: String?
    public var sessions = SessionSettings()
    /// Concurrent retrains across all sessions (first come, first served; picks after fits).
    public var trainingWidth = ProcessInfo.processInfo.activeProcessorCount
    /// OpenBLAS threads per BLAS call. The daemon's parallelism is across sessions (`trainingWidth`); its matrices
    /// are small, and OpenBLAS's extra threads spin in sched_yield between calls (measured: a third of the daemon's
    /// CPU under 100 annotators), taking the cores the fits need.
    public var blasThreads = 1
    /// Look in the index folder this often for new indexes to serve (`HaliDaemon.rescanIndexes`); nil = only when
    /// asked (SIGHUP).
    public var indexRescanInterval: Duration?
    /// Pixels read and encoded for clients, kept for the next request of the same region (all sessions share them).
    public var pixelCacheBytes = 64 << 20

    public init(listen: [Endpoint], annotators: AnnotatorRegistry, tasks: [TaskDefinition] = TaskDefinition.builtIn, slidePaths: [String] = []) {
        self.listen = listen
        self.annotators = annotators
        self.tasks = tasks
        self.slidePaths = slidePaths
    }
}

public enum HaliVersion {
    public static let string = "0.3.0"
}
