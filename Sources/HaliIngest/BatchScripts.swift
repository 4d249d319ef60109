// The scheduler's side of `hali batch`: a Slurm job-array script and a Kubernetes Indexed Job, each running one
// `hali batch task` per slide. Both are plain text a lab's admin can read, edit and resubmit; rendering is pure.

import Foundation

/// What one task runs, besides the slide: the `hali` binary (or a container around it) and the ingest options.
public struct BatchTaskCommand: Sendable, Equatable {
    /// The `hali` executable as the compute nodes see it.
    public var hali: String
    /// Ingest options passed through to every task (e.g. `--stain`, `hdab`, `--weights`, PATH).
    public var ingestArguments: [String]
    public var indexDirectory: String

    public init(hali: String, ingestArguments: [String], indexDirectory: String) {
        self.hali = hali
        self.ingestArguments = ingestArguments
        self.indexDirectory = indexDirectory
    }
}

/// `sbatch` settings; nil leaves the cluster's default.
public struct SlurmSettings: Sendable, Equatable {
    public var jobName = "hali-ingest"
    public var partition: String?
    /// Wall time per task, Slurm's format (e.g. `2:00:00`).
    public var time: String?
    /// Memory per task, Slurm's format (e.g. `4G`).
    public var memory: String?
    public var cpusPerTask = 2
    /// Generic resources, e.g. `gpu:1`.
    public var gres: String?
    /// At most this many tasks at once (`--array=…%N`); nil = as the cluster allows.
    public var maxParallel: Int?
    /// Run `hali` inside this Apptainer image (`apptainer exec --bind … IMAGE hali`).
    public var apptainerImage: String?

    public init() {}
}

public enum SlurmScript {
    /// A job array of one task per slide, or per shard of a slide split into `shards` (task i runs `SLIDES[i]`, with
    /// `--shard SHARDS[i]` where that is set). The tasks are listed in the script, so it can be edited and resubmitted
    /// with `sbatch FILE` as it is.
    public static func render(
        slides: [String], shards: [String?]? = nil, mergeShards: Int? = nil, command: BatchTaskCommand, settings: SlurmSettings,
        logDirectory: String, created: String
    ) -> String {
        precondition(!slides.isEmpty, "an array of no tasks")
        var s = "#!/bin/bash\n"
        if let mergeShards {
            s += "# HALI batch ingest, merge step: one Slurm array task per sharded slide (written by `hali batch submit`, \(created)).\n"
            s += "# Task i joins the \(mergeShards) shards of SLIDES[i] into its index with `hali batch merge` (a missing shard is\n"
            s += "# recorded as the slide's failure). Submitted with --dependency=afterany on the ingest array.\n"
        } else {
            s += "# HALI batch ingest: one Slurm array task per slide or shard (written by `hali batch submit`, \(created)).\n"
            s += "# Task i ingests SLIDES[i] with `hali batch task`: a slide whose index is current is skipped, the index is written\n"
            s += "# by rename, and a failure leaves <index dir>/<slide name>.failed.txt with the reason. Edit and resubmit with\n"
            s += "# `sbatch <this file>`; keep --array's range equal to the list (0 to count - 1).\n"
        }
        s += "#SBATCH --job-name=\(settings.jobName)\n"
        s += "#SBATCH --array=0-\(slides.count - 1)\(settings.maxParallel.map { "%\($0)" } ?? "")\n"
        s += "#SBATCH --cpus-per-task=\(settings.cpusPerTask)\n"
        if let memory = settings.memory { s += "#SBATCH --mem=\(memory)\n" }
        if let time = settings.time { s += "#SBATCH --time=\(time)\n" }
        if let partition = settings.partition { s += "#SBATCH --partition=\(partition)\n" }
        if let gres = settings.gres { s += "#SBATCH --gres=\(gres)\n" }
        s += "#SBATCH --output=\(logDirectory)/%x-%A_%a.out\n"
        s += "set -euo pipefail\n\n"
        s += "SLIDES=(\n"
        for slide in slides { s += "  \(shellQuoted(slide))\n" }
        s += ")\n"
        if let shards {
            s += "# The share of a slide's tile rows each task ingests (i/n; empty = the whole slide); a merge job joins them.\n"
            s += "SHARDS=(" + shards.map { shellQuoted($0 ?? "") }.joined(separator: " ") + ")\n"
        }
        var hali = [command.hali]
        if let image = settings.apptainerImage {
            let folders = Set(slides.map { ($0 as NSString).deletingLastPathComponent } + [command.indexDirectory]).sorted()
            hali = ["apptainer", "exec", "--bind", folders.joined(separator: ","), image, command.hali]
        }
        s += "HALI=(\(hali.map(shellQuoted).joined(separator: " ")))\n\n"
        let options = ["--index-dir", command.indexDirectory] + command.ingestArguments
        let perTask =
            mergeShards.map { "merge \"${SLIDES[$SLURM_ARRAY_TASK_ID]}\" --shards \($0) " }
            ?? ("task \"${SLIDES[$SLURM_ARRAY_TASK_ID]}\" "
                + (shards == nil ? "" : "${SHARDS[$SLURM_ARRAY_TASK_ID]:+--shard \"${SHARDS[$SLURM_ARRAY_TASK_ID]}\"} "))
        s += "exec \"${HALI[@]}\" batch \(perTask)--threads \"${SLURM_CPUS_PER_TASK:-1}\" "
        s += options.map(shellQuoted).joined(separator: " ") + "\n"
        return s
    }

    /// The job that joins sharded slides (one task per slide, `hali batch merge`), submitted to start after the
    /// ingest array ends: `sbatch --dependency=afterany:JOB FILE`.
    public static func renderMerge(
        slides: [String], shards: Int, command: BatchTaskCommand, settings: SlurmSettings, logDirectory: String, created: String
    ) -> String {
        var merge = settings
        merge.jobName = settings.jobName + "-merge"
        merge.gres = nil
        merge.cpusPerTask = 1
        return render(slides: slides, mergeShards: shards, command: command, settings: merge, logDirectory: logDirectory, created: created)
    }

    /// `text` as one word for bash: in single quotes, each `'` written as `'\''`.
    public static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// Settings of the Kubernetes Job.
public struct KubernetesSettings: Sendable, Equatable {
    public var name = "hali-ingest"
    public var namespace: String?
    /// The container image with `hali` on its PATH (Deploy/Containerfile builds one).
    public var image = "hali:latest"
    /// Pods at once.
    public var parallelism = 4
    /// Requests (and limits) per pod, Kubernetes' quantities.
    public var cpu = "2"
    public var memory = "4Gi"
    public var gpus = 0
    /// PersistentVolumeClaims holding the slides (mounted read-only) and the index folder, each at the same path as
    /// here, so the paths in the batch mean the same inside the pods.
    public var slidesClaim = "hali-slides"
    public var slidesPath = "/slides"
    public var indexClaim = "hali-index"
    /// Retries of one slide's pod before its index is marked failed (a recorded bad slide is never retried).
    public var retriesPerSlide = 2

    public init() {}
}

public enum KubernetesJob {
    /// `hali batch task`'s exit status when it recorded a slide's failure: the Job's pod failure policy fails that
    /// index at once instead of retrying it.
    public static let recordedFailureExitCode: Int32 = 3

    /// A ConfigMap listing the slides and an Indexed Job (`completionMode: Indexed`, one completion per slide) whose
    /// pod i runs `hali batch task --list … --item i`. Needs Kubernetes 1.29 or later (`backoffLimitPerIndex`,
    /// the `FailIndex` action).
    public static func render(slides: [String], command: BatchTaskCommand, settings: KubernetesSettings, created: String) -> String {
        precondition(!slides.isEmpty, "a job of no slides")
        let namespace = settings.namespace.map { "\n  namespace: \(yamlQuoted($0))" } ?? ""
        var y = "# HALI batch ingest: one Kubernetes Indexed Job completion per slide (written by `hali batch submit`, \(created)).\n"
        y += "# Apply with `kubectl apply -f <this file>`; pod i ingests line i + 1 of slides.txt with `hali batch task`.\n"
        y += "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \(settings.name)-slides\(namespace)\ndata:\n  slides.txt: |\n"
        for slide in slides { y += "    \(slide)\n" }
        y +=
            "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: \(settings.name)\(namespace)\n  labels:\n    app.kubernetes.io/name: hali-ingest\n"
        y += "spec:\n  completionMode: Indexed\n  completions: \(slides.count)\n  parallelism: \(min(settings.parallelism, slides.count))\n"
        y += "  backoffLimitPerIndex: \(settings.retriesPerSlide)\n  maxFailedIndexes: \(slides.count)\n"
        y += "  podFailurePolicy:\n    rules:\n      - action: FailIndex\n        onExitCodes:\n          containerName: hali\n"
        y += "          operator: In\n          values: [\(recordedFailureExitCode)]\n"
        y += "  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: hali-ingest\n    spec:\n      restartPolicy: Never\n"
        y += "      containers:\n        - name: hali\n          image: \(yamlQuoted(settings.image))\n"
        y += "          env:\n            - name: SLIDE_ITEM\n              valueFrom:\n                fieldRef:\n"
        y += "                  fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']\n"
        let args =
            ["batch", "task", "--list", "/etc/hali-batch/slides.txt", "--item", "$(SLIDE_ITEM)", "--threads", settings.cpu]
            + ["--index-dir", command.indexDirectory] + command.ingestArguments
        y += "          command: [\(yamlQuoted(command.hali))]\n"
        y += "          args: [\(args.map(yamlQuoted).joined(separator: ", "))]\n"
        y += "          resources:\n"
        for kind in ["requests", "limits"] {
            y += "            \(kind):\n              cpu: \(yamlQuoted(settings.cpu))\n              memory: \(yamlQuoted(settings.memory))\n"
            if settings.gpus > 0 { y += "              nvidia.com/gpu: \(settings.gpus)\n" }
        }
        y +=
            "          volumeMounts:\n            - name: slides\n              mountPath: \(yamlQuoted(settings.slidesPath))\n              readOnly: true\n"
        y += "            - name: index\n              mountPath: \(yamlQuoted(command.indexDirectory))\n"
        y += "            - name: batch\n              mountPath: /etc/hali-batch\n              readOnly: true\n"
        y += "      volumes:\n        - name: slides\n          persistentVolumeClaim:\n            claimName: \(yamlQuoted(settings.slidesClaim))\n"
        y +=
            "            readOnly: true\n        - name: index\n          persistentVolumeClaim:\n            claimName: \(yamlQuoted(settings.indexClaim))\n"
        y += "        - name: batch\n          configMap:\n            name: \(settings.name)-slides\n"
        return y
    }

    /// A YAML double-quoted scalar: a JSON string is one (JSON's escapes are YAML's, slashes left alone).
    static func yamlQuoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
}
