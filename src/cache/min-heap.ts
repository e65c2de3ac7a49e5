/** An item ordered by `at` (smallest first). */
export interface Timed {
  at: number;
}

/**
 * Binary min-heap on `at`. Used as a timer wheel for pure schedulers that run on an injected
 * clock: push what should happen when, pop what is due.
 */
export class MinHeap<T extends Timed> {
  private items: T[] = [];

  /** Number of items held. */
  get size(): number {
    return this.items.length;
  }

  /** The earliest item, without removing it. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Adds an item in O(log n). */
  push(item: T): void {
    const h = this.items;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= item.at) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = item;
  }

  /** Removes and returns the earliest item in O(log n). */
  pop(): T | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= last.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }

  /** Keeps only the items `keep` accepts, in O(n log n): how lazily deleted entries are purged. */
  retain(keep: (item: T) => boolean): void {
    // A sorted array is a valid min-heap.
    this.items = this.items.filter(keep).sort((a, b) => a.at - b.at);
  }
}
