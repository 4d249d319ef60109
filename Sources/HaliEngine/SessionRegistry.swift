public import HaliCore
public import HaliStore

/// All labelling sessions of a daemon, keyed by (annotator, slide, task); created on first open and restored from
/// the label store.
public actor SessionRegistry {
    private let store: LabelStore
    private let tasks: [String: TaskDefinition]
    private let settings: SessionSettings
    private let pool: TrainingPool
    /// Pixels read and encoded for any session, shared by all.
    public nonisolated let pixelCache: RenderedPixelCache
    private var slides: [String: ServedSlide] = [:]
    private var sessions: [String: LabellingSession] = [:]

    public init(
        store: LabelStore, tasks: [TaskDefinition], settings: SessionSettings = SessionSettings(), pool: TrainingPool = TrainingPool(),
        pixelCache: RenderedPixelCache = RenderedPixelCache()
    ) {
        self.store = store
        self.pixelCache = pixelCache
        self.tasks = Dictionary(uniqueKeysWithValues: tasks.map { ($0.name, $0) })
        self.settings = settings
        self.pool = pool
    }

    public func add(_ slide: ServedSlide) { slides[slide.id] = slide }
    public func slide(id: String) -> ServedSlide? { slides[id] }
    public var sessionCount: Int { sessions.count }
    public nonisolated var trainingBacklog: Int { pool.backlog }

    /// Opens (or returns) the session; checks the task exists and the annotator may open it.
    public func open(annotator: Annotator, slideID: String, taskName: String) async throws -> LabellingSession {
        guard let task = tasks[taskName] else {
            throw EngineError(.notFound, "no task \"\(taskName)\" (tasks: \(tasks.keys.sorted().joined(separator: ", ")))")
        }
        guard annotator.mayOpen(task: taskName) else {
            throw EngineError(.permissionDenied, "annotator \(annotator.name) may not open task \(taskName)")
        }
        guard annotator.mayOpen(slide: slideID) else {
            throw EngineError(.permissionDenied, "annotator \(annotator.name) may not open slide \(slideID)")
        }
        guard let slide = slides[slideID] else {
            throw EngineError(.notFound, "no slide \"\(slideID)\" (slides: \(slides.keys.sorted().joined(separator: ", ")))")
        }
        let key = "\(annotator.name)\u{1f}\(slideID)\u{1f}\(taskName)"
        if let existing = sessions[key] { return existing }
        let session: LabellingSession
        do {
            session = try LabellingSession(
                annotator: annotator.name, task: task, slide: slide, store: store, settings: settings, pool: pool, pixelCache: pixelCache)
        } catch {
            throw EngineError(.internal, "cannot restore session: \(error)")
        }
        sessions[key] = session
        await session.restore()
        return session
    }
}
