// Optimisers over `Parameter`s (gradients are accumulated by the backward passes; call `step` then zero them).

public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    func step(_ parameters: [Parameter])
}

/// SGD with (heavy-ball) momentum and L2 weight decay on `decays` parameters (PyTorch semantics).
public final class SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float, weightDecay: Float
    private var velocity: [ObjectIdentifier: [Float]] = [:]

    public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0) {
        self.learningRate = learningRate; self.momentum = momentum; self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter]) {
        for p in parameters where p.trainable {
            var v = velocity[ObjectIdentifier(p)] ?? [Float](repeating: 0, count: p.value.count)
            let wd = p.decays ? weightDecay : 0
            for i in 0..<p.value.count {
                let g = p.grad[i] + wd * p.value[i]
                v[i] = momentum * v[i] + g
                p.value[i] -= learningRate * v[i]
            }
            velocity[ObjectIdentifier(p)] = v
        }
    }
}

/// Adam with decoupled weight decay (AdamW) on `decays` parameters.
public final class Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    private var m: [ObjectIdentifier: [Float]] = [:], v: [ObjectIdentifier: [Float]] = [:]
    private var t = 0

    public init(
        learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        weightDecay: Float = 0
    ) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter]) {
        t += 1
        var c1: Float = 1, c2: Float = 1
        for _ in 0..<t { c1 *= beta1; c2 *= beta2 }
        c1 = 1 - c1; c2 = 1 - c2
        for p in parameters where p.trainable {
            let id = ObjectIdentifier(p)
            var mm = m[id] ?? [Float](repeating: 0, count: p.value.count)
            var vv = v[id] ?? [Float](repeating: 0, count: p.value.count)
            let wd = p.decays ? weightDecay : 0
            for i in 0..<p.value.count {
                let g = p.grad[i]
                mm[i] = beta1 * mm[i] + (1 - beta1) * g
                vv[i] = beta2 * vv[i] + (1 - beta2) * g * g
                p.value[i] -= learningRate * ((mm[i] / c1) / ((vv[i] / c2).squareRoot() + epsilon) + wd * p.value[i])
            }
            m[id] = mm; v[id] = vv
        }
    }
}
