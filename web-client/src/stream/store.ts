// The client-side state a Watch stream builds: every current object keyed by
// "topic/key", and a bounded feed of events. Framework-free; no I/O.

import type { MetricsBatch } from "../gen/pharos/v1/metrics_pb";
import {
  ChangeKind,
  WatchTopic,
  type Change,
  type Event,
} from "../gen/pharos/v1/watch_pb";

/** How many events the feed keeps (newest first). */
export const EVENT_FEED_LIMIT = 100;

/** Short, stable names of the topics, used as the first part of store keys. */
export function topicName(topic: WatchTopic): string {
  switch (topic) {
    case WatchTopic.CATALOG:
      return "catalog";
    case WatchTopic.EVENTS:
      return "events";
    case WatchTopic.HEALTH:
      return "health";
    default:
      return `topic-${topic}`;
  }
}

/** The store key of a change: "<topic>/<key>", for example "health/check/api/prod/http". */
export function storeKey(change: Pick<Change, "topic" | "key">): string {
  return `${topicName(change.topic)}/${change.key}`;
}

/** One event of the feed, with the revision and commit time of its journal entry. */
export interface FeedEntry {
  revision: bigint;
  /** Milliseconds since the epoch; from the event's own time, else the commit time. */
  time: number | null;
  event: Event;
}

/** How long live metric points are kept (pharosd keeps 15 minutes at full resolution). */
export const METRIC_WINDOW_MS = 15 * 60 * 1000;

/** A series the metrics topic delivered, its points oldest first. */
export interface LiveSeries {
  name: string;
  labels: Record<string, string>;
  points: { ms: number; value: number }[];
}

/** The key of a series: its name and its labels in order. */
export function seriesKey(name: string, labels: Record<string, string>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`);
  return `${name}{${sorted.join(",")}}`;
}

export class WatchStore {
  private readonly series = new Map<string, LiveSeries>();
  private readonly entries = new Map<string, Change>();
  private feedEntries: FeedEntry[] = [];
  private readonly counts = new Map<string, number>();
  private eventsSeen = 0;
  /** Increases on every mutation, so views can tell cheaply whether anything changed. */
  version = 0;
  /** Per topic, increases when one of its objects changes: list() answers stay valid
   * until then (a health change does not redo the catalog lists). */
  private readonly topicVersions = new Map<WatchTopic, number>();
  private readonly listCache = new Map<string, { version: number; found: readonly Change[] }>();

  constructor(private readonly feedLimit = EVENT_FEED_LIMIT) {}

  /**
   * Adds a metrics batch (only new points come; metric samples are not journaled, so a
   * resumed stream does not replay them). Points older than METRIC_WINDOW_MS before a
   * series' newest are dropped.
   */
  applyMetrics(batch: MetricsBatch): void {
    for (const s of batch.series) {
      const labels = { ...s.labels };
      const key = seriesKey(s.name, labels);
      let live = this.series.get(key);
      if (!live) {
        live = { name: s.name, labels, points: [] };
        this.series.set(key, live);
      }
      for (const p of s.points) live.points.push({ ms: Number(p.timeUnixMs), value: p.value });
      const newest = live.points[live.points.length - 1]?.ms ?? 0;
      let cut = 0;
      while (cut < live.points.length && (live.points[cut]?.ms ?? 0) < newest - METRIC_WINDOW_MS) cut++;
      if (cut > 0) live.points.splice(0, cut);
    }
    this.version++;
  }

  /** The live series named `name`, ordered by key. */
  metricSeries(name: string): LiveSeries[] {
    return [...this.series.entries()]
      .filter(([, s]) => s.name === name)
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([, s]) => s);
  }

  /** Applies one change. Returns false when the change had nothing to apply. */
  apply(change: Change): boolean {
    switch (change.kind) {
      case ChangeKind.SNAPSHOT:
      case ChangeKind.UPSERT:
        this.entries.set(storeKey(change), change);
        this.touch(change.topic);
        break;
      case ChangeKind.DELETE:
        if (!this.entries.delete(storeKey(change))) return false;
        this.touch(change.topic);
        break;
      case ChangeKind.APPEND:
        if (change.object.case !== "event") return false;
        this.append(change, change.object.value);
        break;
      default:
        return false;
    }
    this.version++;
    return true;
  }

  private touch(topic: WatchTopic): void {
    this.topicVersions.set(topic, (this.topicVersions.get(topic) ?? 0) + 1);
  }

  private append(change: Change, event: Event): void {
    const seconds = event.time ?? change.commitTime;
    const time = seconds
      ? Number(seconds.seconds) * 1000 + Math.floor(seconds.nanos / 1e6)
      : null;
    this.feedEntries = [{ revision: change.revision, time, event }, ...this.feedEntries];
    if (this.feedEntries.length > this.feedLimit) {
      this.feedEntries.length = this.feedLimit;
    }
    this.counts.set(event.kind, (this.counts.get(event.kind) ?? 0) + 1);
    this.eventsSeen++;
  }

  /** Drops every keyed object (not the event feed: events that happened still happened). */
  clear(): void {
    if (this.entries.size === 0) return;
    this.entries.clear();
    this.listCache.clear();
    for (const topic of [...this.topicVersions.keys()]) this.touch(topic);
    this.version++;
  }

  get size(): number {
    return this.entries.size;
  }

  get(topic: WatchTopic, key: string): Change | undefined {
    return this.entries.get(`${topicName(topic)}/${key}`);
  }

  /** Every change of a topic whose key starts with a prefix, in key order. */
  list(topic: WatchTopic, prefix = ""): readonly Change[] {
    const full = `${topicName(topic)}/${prefix}`;
    const version = this.topicVersions.get(topic) ?? 0;
    const cached = this.listCache.get(full);
    if (cached && cached.version === version) return cached.found;
    const found: Change[] = [];
    for (const [key, change] of this.entries) {
      if (key.startsWith(full)) found.push(change);
    }
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.listCache.set(full, { version, found });
    return found;
  }

  /** Every stored key, "topic/key", for tests and debugging. */
  keys(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** The last events, newest first, at most the feed limit. */
  get feed(): readonly FeedEntry[] {
    return this.feedEntries;
  }

  /** How many events of each kind arrived since the store was created. */
  get kindCounts(): ReadonlyMap<string, number> {
    return this.counts;
  }

  /** How many events arrived since the store was created (the feed keeps the last ones). */
  get eventsReceived(): number {
    return this.eventsSeen;
  }
}
