// The client-side state a Watch stream builds: every current object keyed by
// "topic/key", and a bounded feed of events. Framework-free; no I/O.

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

export class WatchStore {
  private readonly entries = new Map<string, Change>();
  private feedEntries: FeedEntry[] = [];
  private readonly counts = new Map<string, number>();
  private eventsSeen = 0;
  /** Increases on every mutation, so views can tell cheaply whether anything changed. */
  version = 0;

  constructor(private readonly feedLimit = EVENT_FEED_LIMIT) {}

  /** Applies one change. Returns false when the change had nothing to apply. */
  apply(change: Change): boolean {
    switch (change.kind) {
      case ChangeKind.SNAPSHOT:
      case ChangeKind.UPSERT:
        this.entries.set(storeKey(change), change);
        break;
      case ChangeKind.DELETE:
        if (!this.entries.delete(storeKey(change))) return false;
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
    this.version++;
  }

  get size(): number {
    return this.entries.size;
  }

  get(topic: WatchTopic, key: string): Change | undefined {
    return this.entries.get(`${topicName(topic)}/${key}`);
  }

  /** Every change of a topic whose key starts with a prefix, in key order. */
  list(topic: WatchTopic, prefix = ""): Change[] {
    const full = `${topicName(topic)}/${prefix}`;
    const found: Change[] = [];
    for (const [key, change] of this.entries) {
      if (key.startsWith(full)) found.push(change);
    }
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
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
