/// Elements a `MaxHeap` orders: `above(a, b)` is true when a comes out first. A strict total order makes the pops
/// independent of how the heap was built.
protocol HeapOrdered {
    static func above(_ a: Self, _ b: Self) -> Bool
}

/// A binary max-heap in an array, for the lazy greedy picks (k-center's distance bounds, ProbCover's degrees): O(n) to
/// build from an array, O(log n) per push and pop. A protocol rather than a closure keeps the comparison inlined on
/// the 10⁶-element heaps of a slide.
struct MaxHeap<Element: HeapOrdered> {
    private(set) var items: [Element]

    /// Heapifies `items` bottom-up.
    init(_ items: [Element] = []) {
        self.items = items
        if self.items.count > 1 { for i in stride(from: self.items.count / 2 - 1, through: 0, by: -1) { siftDown(i) } }
    }

    var isEmpty: Bool { items.isEmpty }

    mutating func push(_ item: Element) {
        items.append(item)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard Element.above(items[i], items[p]) else { return }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Element? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            siftDown(0)
        }
        return top
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let n = items.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && Element.above(items[l], items[m]) { m = l }
            if r < n && Element.above(items[r], items[m]) { m = r }
            if m == i { return }
            items.swapAt(i, m)
            i = m
        }
    }
}
