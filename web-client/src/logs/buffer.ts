// A bounded buffer of log lines (a ring: the oldest lines go once it is full) and the
// substring filter over it. Framework-free; no I/O.

/** One line as the Logs page keeps it. */
export interface BufferedLine {
  /** Position since the stream opened: 0 for the first line received. */
  seq: number;
  text: string;
  stderr: boolean;
  /** Milliseconds since the epoch, when the engine gave a time. */
  time: number | null;
}

/** How many lines the Logs page keeps. */
export const LOG_BUFFER_LIMIT = 100_000;

export class LogBuffer {
  private readonly ring: (BufferedLine | undefined)[];
  private head = 0;
  private count = 0;
  private nextSeq = 0;
  /** Increases on every change. */
  version = 0;

  constructor(readonly capacity = LOG_BUFFER_LIMIT) {
    if (capacity < 1) throw new Error("capacity must be at least 1");
    this.ring = new Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  /** Lines received since the stream opened, kept or not. */
  get received(): number {
    return this.nextSeq;
  }

  /** Lines dropped to keep the buffer bounded. */
  get dropped(): number {
    return this.nextSeq - this.count;
  }

  push(lines: Iterable<Omit<BufferedLine, "seq">>): void {
    let changed = false;
    for (const line of lines) {
      const entry = { ...line, seq: this.nextSeq++ };
      const slot = (this.head + this.count) % this.capacity;
      this.ring[slot] = entry;
      if (this.count < this.capacity) this.count++;
      else this.head = (this.head + 1) % this.capacity;
      changed = true;
    }
    if (changed) this.version++;
  }

  /** The i-th kept line, oldest first. */
  at(i: number): BufferedLine {
    if (i < 0 || i >= this.count) throw new RangeError(`line ${i} of ${this.count}`);
    return this.ring[(this.head + i) % this.capacity] as BufferedLine;
  }

  clear(): void {
    this.ring.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.version++;
  }
}

/**
 * The lines a view shows: all of them, or the indexes of those containing `filter`
 * (case-insensitive). Incremental: lines appended since the last call are scanned, not
 * the whole buffer, unless the filter changed or lines were dropped.
 */
export class FilteredView {
  private filter = "";
  private indexes: number[] = [];
  /** seq of the first line not scanned yet. */
  private scannedSeq = 0;
  private firstSeq = 0;

  constructor(private readonly buffer: LogBuffer) {}

  /** Brings the view up to date with the buffer and `filter`; returns the line count. */
  update(filter: string): number {
    const needle = filter.toLowerCase();
    const buffer = this.buffer;
    const first = buffer.length ? buffer.at(0).seq : buffer.received;
    if (needle !== this.filter || first < this.firstSeq) {
      this.filter = needle;
      this.indexes = [];
      this.scannedSeq = first;
    } else if (first > this.firstSeq) {
      // Lines dropped at the front: shift the kept indexes.
      const shift = first - this.firstSeq;
      let cut = 0;
      while (cut < this.indexes.length && (this.indexes[cut] as number) < shift) cut++;
      this.indexes = this.indexes.slice(cut).map((i) => i - shift);
      if (this.scannedSeq < first) this.scannedSeq = first;
    }
    this.firstSeq = first;
    if (!needle) return buffer.length;
    for (let i = this.scannedSeq - first; i < buffer.length; i++) {
      if (buffer.at(i).text.toLowerCase().includes(needle)) this.indexes.push(i);
    }
    this.scannedSeq = buffer.received;
    return this.indexes.length;
  }

  /** The n-th line of the view (after update). */
  line(n: number): BufferedLine {
    return this.filter ? this.buffer.at(this.indexes[n] as number) : this.buffer.at(n);
  }
}

/** The rows a virtualised list renders: the visible ones and `overscan` either side. */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  total: number,
  overscan = 10,
): { start: number; end: number } {
  const first = Math.floor(scrollTop / rowHeight);
  const count = Math.ceil(viewportHeight / rowHeight);
  const start = Math.max(0, first - overscan);
  const end = Math.min(total, first + count + overscan);
  return { start, end: Math.max(start, end) };
}
