// The client side of the watch contract (proto/pharos/v1/watch.proto,
// docs/architecture.md "The watch contract"), framework-free:
//
// - start with since_revision = 0: apply the snapshot into the store, ready at
//   snapshot_complete{R}, then apply live UPSERT / DELETE / APPEND changes;
// - track the last revision from changes, snapshot_complete and progress markers, and
//   drop any change at or below it (a resumed stream never applies a change twice);
// - UNAVAILABLE, RESOURCE_EXHAUSTED, a network error or an unexpected end: reconnect
//   with jittered exponential backoff (250 ms doubling to 5 s), resuming from the last
//   revision (or from pharos-resume-revision when the server names an earlier one);
// - OUT_OF_RANGE (trailer pharos-resync: snapshot): clear the store and resubscribe
//   from 0 at once;
// - UNAUTHENTICATED / PERMISSION_DENIED: stop and wait for retryNow() (after sign-in).
//
// The transport is injected as a WatchSource, so tests drive this with fake streams.

import { Code, ConnectError } from "@connectrpc/connect";
import type { HealthStatus } from "../gen/pharos/v1/catalog_pb";
import {
  ChangeKind,
  type WatchResponse,
  type WatchTopic,
} from "../gen/pharos/v1/watch_pb";
import { backoffDelay } from "./backoff";
import { WatchStore } from "./store";

/** The fields of a WatchRequest this client sends. */
export interface WatchRequestInit {
  sinceRevision: bigint;
  topics: WatchTopic[];
  projects: string[];
  environments: string[];
  healthStatuses: HealthStatus[];
  metricSelectors: MetricSelector[];
}

/** A series selector for the metrics topic: a name and labels that must match. */
export interface MetricSelector {
  name: string;
  labels?: Record<string, string>;
}

/**
 * Opens one Watch stream. The promise settles when the server answered (response
 * headers, or an immediate error such as OUT_OF_RANGE); the iterable then yields the
 * stream's messages and throws the status that ended it (a ConnectError whose metadata
 * holds the trailers). Aborting the signal cancels the stream.
 */
export type WatchSource = (
  request: WatchRequestInit,
  signal: AbortSignal,
) => Promise<AsyncIterable<WatchResponse>>;

/** What a page watches. */
export interface WatchSpec {
  topics: WatchTopic[];
  projects?: string[];
  environments?: string[];
  healthStatuses?: HealthStatus[];
  /** Series for the metrics topic (include WatchTopic.METRICS in topics). */
  metricSelectors?: MetricSelector[];
}

export type ConnectionState =
  /** The first stream is being opened, or its snapshot is still arriving. */
  | { kind: "connecting" }
  /** The stream is open and the store is current. */
  | { kind: "live" }
  /**
   * The stream ended; `nextRetryAt` (ms since the epoch) is when the next attempt starts,
   * null while an attempt is under way.
   */
  | { kind: "reconnecting"; attempt: number; nextRetryAt: number | null; reason: string }
  /** Several attempts in a row failed; still retrying every few seconds. */
  | { kind: "unreachable"; attempt: number; nextRetryAt: number | null; reason: string }
  /** The server refused the caller (UNAUTHENTICATED or PERMISSION_DENIED); no retries. */
  | { kind: "unauthorized"; code: Code; reason: string }
  | { kind: "stopped" };

export interface WatchStatus {
  state: ConnectionState;
  /** The store holds a complete snapshot (possibly stale when not live). */
  ready: boolean;
  /** The last revision received: a change's, a snapshot_complete's or a progress marker's. */
  lastRevision: bigint;
  /** When the last message arrived (ms since the epoch); null before the first. */
  lastUpdate: number | null;
  /** How many times the store was dropped and rebuilt after OUT_OF_RANGE. */
  resyncs: number;
  /** Changes dropped because their revision had already been applied. */
  duplicatesDropped: number;
}

export interface WatcherOptions {
  store?: WatchStore;
  random?: () => number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Consecutive failed attempts after which the state is "unreachable" (default 4). */
  unreachableAfter?: number;
  /**
   * A live stream that delivers nothing (not even a progress marker) for this long is
   * presumed dead and reopened (default 45 s; pharosd sends progress every 10 s).
   * 0 disables the watchdog.
   */
  idleTimeoutMs?: number;
  /** How many applied revisions appliedRevisions() keeps, newest last (default 512). */
  revisionLog?: number;
}

export const RESUME_TRAILER = "pharos-resume-revision";
export const RESYNC_TRAILER = "pharos-resync";

type Listener = () => void;

export class Watcher {
  readonly store: WatchStore;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private readonly unreachableAfter: number;
  private readonly idleTimeoutMs: number;

  private running = false;
  private generation = 0;
  private abort: AbortController | null = null;
  private retryTimer: unknown = null;
  private idleTimer: unknown = null;
  private lastMessageAt = 0;
  private listeners = new Set<Listener>();

  private needSnapshot = true;
  private attempt = 0;
  private lastRevision = 0n;
  /** An earlier revision the server asked the next stream to resume from. */
  private resumeFrom: bigint | null = null;
  private state: ConnectionState = { kind: "stopped" };
  private ready = false;
  private lastUpdate: number | null = null;
  private resyncs = 0;
  private duplicatesDropped = 0;
  private readonly revisionLogLimit: number;
  /** Revisions of the live changes applied since the last snapshot, oldest first. */
  private revisionLog: bigint[] = [];
  /** How many live changes were applied since the last snapshot (the log keeps the last). */
  private appliedSinceSnapshot = 0;
  /** The revision of the last snapshot_complete; live changes follow it. */
  private snapshotRevision = 0n;
  private cached: WatchStatus | null = null;

  constructor(
    private readonly source: WatchSource,
    private readonly spec: WatchSpec,
    options: WatcherOptions = {},
  ) {
    this.store = options.store ?? new WatchStore();
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer =
      options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
    this.unreachableAfter = options.unreachableAfter ?? 4;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
    this.revisionLogLimit = options.revisionLog ?? 512;
  }

  /** Opens the stream (once; later calls do nothing while running). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.setState({ kind: "connecting" });
    void this.connect();
  }

  /** Closes the stream and cancels any pending retry. The store is kept. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.generation++;
    this.cancelTimers();
    this.abort?.abort();
    this.abort = null;
    this.setState({ kind: "stopped" });
  }

  /**
   * Reconnects now instead of waiting for the next retry, or after an authorization
   * failure (for example once a token was entered). Does nothing while live or while an
   * attempt is under way.
   */
  retryNow(): void {
    if (!this.running) return;
    const kind = this.state.kind;
    const waiting =
      kind === "unauthorized" ||
      ((kind === "reconnecting" || kind === "unreachable") && this.state.nextRetryAt !== null);
    if (!waiting) return;
    this.cancelTimers();
    void this.connect();
  }

  /**
   * The revisions of the live changes applied since the last snapshot, oldest first (at
   * most the last `revisionLog`), with the snapshot's revision and the total count: lets
   * an end-to-end test compare what the page applied with the server's journal.
   */
  appliedRevisions(): { snapshot: bigint; total: number; revisions: readonly bigint[] } {
    return { snapshot: this.snapshotRevision, total: this.appliedSinceSnapshot, revisions: this.revisionLog };
  }

  /** Calls `listener` after every change of the store or of the status. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get status(): WatchStatus {
    if (!this.cached) {
      this.cached = {
        state: this.state,
        ready: this.ready,
        lastRevision: this.lastRevision,
        lastUpdate: this.lastUpdate,
        resyncs: this.resyncs,
        duplicatesDropped: this.duplicatesDropped,
      };
    }
    return this.cached;
  }

  private emit(): void {
    this.cached = null;
    for (const listener of [...this.listeners]) listener();
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    this.emit();
  }

  private cancelTimers(): void {
    if (this.retryTimer !== null) this.clearTimer(this.retryTimer);
    this.retryTimer = null;
    if (this.idleTimer !== null) this.clearTimer(this.idleTimer);
    this.idleTimer = null;
  }

  private async connect(): Promise<void> {
    this.retryTimer = null;
    const generation = ++this.generation;
    const fromScratch = this.needSnapshot;
    const since = fromScratch ? 0n : (this.resumeFrom ?? this.lastRevision);
    this.resumeFrom = null;
    if (fromScratch) {
      // A new snapshot replaces everything: nothing of an earlier stream may survive.
      this.store.clear();
      this.ready = false;
      this.lastRevision = 0n;
    }
    if (this.state.kind === "reconnecting" || this.state.kind === "unreachable") {
      this.setState({ ...this.state, nextRetryAt: null });
    } else if (this.state.kind === "unauthorized") {
      this.setState({ kind: "connecting" });
    } else {
      this.emit();
    }
    const abort = new AbortController();
    this.abort = abort;
    let snapshotDone = false;
    try {
      const stream = await this.source(
        {
          sinceRevision: since,
          topics: [...this.spec.topics],
          projects: [...(this.spec.projects ?? [])],
          environments: [...(this.spec.environments ?? [])],
          healthStatuses: [...(this.spec.healthStatuses ?? [])],
          metricSelectors: [...(this.spec.metricSelectors ?? [])],
        },
        abort.signal,
      );
      if (generation !== this.generation) return;
      this.armIdle(generation);
      if (!fromScratch) {
        // A resumed stream needs no snapshot: accepted means current from here on.
        this.attempt = 0;
        this.setState({ kind: "live" });
      }
      for await (const message of stream) {
        if (generation !== this.generation) return;
        if (this.handle(message, fromScratch && !snapshotDone)) snapshotDone = true;
      }
      if (generation !== this.generation) return;
      this.fail(new ConnectError("the server ended the stream", Code.Unavailable));
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err);
    } finally {
      if (generation === this.generation) {
        if (this.idleTimer !== null) this.clearTimer(this.idleTimer);
        this.idleTimer = null;
      }
    }
  }

  /** Applies one message. Returns true when it completed the snapshot. */
  private handle(message: WatchResponse, inSnapshot: boolean): boolean {
    this.lastUpdate = this.lastMessageAt = this.now();
    let completed = false;
    const m = message.message;
    switch (m.case) {
      case "change": {
        const change = m.value;
        if (change.kind === ChangeKind.SNAPSHOT) {
          // Snapshot revisions are per key (the revision that last changed it); they do
          // not advance the stream position.
          if (inSnapshot) this.store.apply(change);
          break;
        }
        if (change.revision <= this.lastRevision) {
          this.duplicatesDropped++;
          break;
        }
        this.store.apply(change);
        this.lastRevision = change.revision;
        this.revisionLog.push(change.revision);
        if (this.revisionLog.length > this.revisionLogLimit) this.revisionLog.shift();
        this.appliedSinceSnapshot++;
        break;
      }
      case "snapshotComplete":
        if (!inSnapshot) break;
        completed = true;
        this.needSnapshot = false;
        this.ready = true;
        this.attempt = 0;
        if (m.value.revision > this.lastRevision) this.lastRevision = m.value.revision;
        this.snapshotRevision = m.value.revision;
        this.revisionLog = [];
        this.appliedSinceSnapshot = 0;
        this.state = { kind: "live" };
        break;
      case "progress":
        if (m.value.revision > this.lastRevision && !inSnapshot) {
          this.lastRevision = m.value.revision;
        }
        break;
      case "metrics":
        this.store.applyMetrics(m.value);
        break;
      default:
        break;
    }
    this.emit();
    return completed;
  }

  private armIdle(generation: number): void {
    if (this.idleTimeoutMs <= 0) return;
    this.lastMessageAt = this.now();
    const check = () => {
      this.idleTimer = null;
      if (generation !== this.generation) return;
      const quiet = this.now() - this.lastMessageAt;
      if (quiet >= this.idleTimeoutMs) {
        // Half-open connection (a sleeping laptop, a dropped NAT entry): reopen.
        this.generation++;
        this.abort?.abort();
        this.fail(
          new ConnectError(
            `no message for ${Math.round(quiet / 1000)} s`,
            Code.DeadlineExceeded,
          ),
        );
        return;
      }
      this.idleTimer = this.setTimer(check, this.idleTimeoutMs - quiet);
    };
    this.idleTimer = this.setTimer(check, this.idleTimeoutMs);
  }

  private fail(err: unknown): void {
    if (!this.running) return;
    this.abort = null;
    const error = ConnectError.from(err);
    const reason = describe(error);

    if (error.code === Code.Unauthenticated || error.code === Code.PermissionDenied) {
      this.setState({ kind: "unauthorized", code: error.code, reason });
      return;
    }

    if (error.code === Code.OutOfRange && !this.needSnapshot) {
      // Our revision is older than the journal keeps (or newer than the server ever
      // wrote): drop every object and take a new snapshot, at once. Never carry on from
      // "now" as if nothing had been missed.
      this.needSnapshot = true;
      this.store.clear();
      this.ready = false;
      this.lastRevision = 0n;
      this.resyncs++;
      this.setState({ kind: "reconnecting", attempt: this.attempt, nextRetryAt: null, reason });
      void this.connect();
      return;
    }

    if (!this.needSnapshot) {
      const resume = error.metadata.get(RESUME_TRAILER);
      if (resume !== null && /^\d+$/.test(resume.trim())) {
        const revision = BigInt(resume.trim());
        // Honour an earlier resume point (what it replays is dropped by revision, as
        // lastRevision stays where it is); never skip ahead of what was applied.
        if (revision < this.lastRevision) this.resumeFrom = revision;
      }
    }

    this.attempt++;
    const delay = backoffDelay(this.attempt, this.random);
    const kind = this.attempt >= this.unreachableAfter ? "unreachable" : "reconnecting";
    this.setState({ kind, attempt: this.attempt, nextRetryAt: this.now() + delay, reason });
    this.retryTimer = this.setTimer(() => void this.connect(), delay);
  }
}

function describe(error: ConnectError): string {
  const name = Code[error.code] ?? `code ${error.code}`;
  return `${name}: ${error.rawMessage}`;
}
