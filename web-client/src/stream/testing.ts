// Test helpers for the stream module: a scripted, fake WatchSource, a manual clock and
// message builders. Used only by the unit tests (not bundled: nothing imports it).

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { DeploymentSchema, ProjectSchema } from "../gen/pharos/v1/catalog_pb";
import {
  ChangeKind,
  ChangeSchema,
  EventSchema,
  WatchResponseSchema,
  WatchTopic,
  type WatchResponse,
} from "../gen/pharos/v1/watch_pb";
import type { WatchRequestInit, WatchSource } from "./watcher";

/** A stream the test feeds by hand; ends with an error, or when the reader aborts. */
export class FakeStream implements AsyncIterable<WatchResponse> {
  private queue: WatchResponse[] = [];
  private ending: { error: unknown } | { done: true } | null = null;
  private wake: (() => void) | null = null;
  aborted = false;

  constructor(private readonly signal: AbortSignal) {
    signal.addEventListener("abort", () => {
      this.aborted = true;
      this.wake?.();
    });
  }

  push(...messages: WatchResponse[]): this {
    this.queue.push(...messages);
    this.wake?.();
    return this;
  }

  /** Ends the stream with a status, as the server's trailers would. */
  fail(code: Code, trailers: Record<string, string> = {}): this {
    this.ending = { error: new ConnectError(Code[code], code, new Headers(trailers)) };
    this.wake?.();
    return this;
  }

  /** Ends the stream with a network failure. */
  breakConnection(): this {
    this.ending = { error: new TypeError("Failed to fetch") };
    this.wake?.();
    return this;
  }

  end(): this {
    this.ending = { done: true };
    this.wake?.();
    return this;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    for (;;) {
      if (this.aborted) throw new ConnectError("aborted", Code.Canceled);
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.ending) {
        if ("error" in this.ending) throw this.ending.error;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }
}

type Answer =
  | { reject: unknown }
  | { stream: (stream: FakeStream) => void };

/** A WatchSource answering each request with the next scripted answer. */
export class FakeSource {
  readonly requests: WatchRequestInit[] = [];
  readonly streams: FakeStream[] = [];
  private readonly answers: Answer[] = [];

  /** The next request fails at once (no stream), like a trailers-only error response. */
  reject(code: Code, trailers: Record<string, string> = {}): this {
    this.answers.push({ reject: new ConnectError(Code[code], code, new Headers(trailers)) });
    return this;
  }

  /** The next request fails to connect at all. */
  unreachable(): this {
    this.answers.push({ reject: new TypeError("Failed to fetch") });
    return this;
  }

  /** The next request opens a stream; `script` may push messages into it right away. */
  open(script: (stream: FakeStream) => void = () => {}): this {
    this.answers.push({ stream: script });
    return this;
  }

  get last(): FakeStream {
    const stream = this.streams[this.streams.length - 1];
    if (!stream) throw new Error("no stream was opened");
    return stream;
  }

  readonly source: WatchSource = async (request, signal) => {
    this.requests.push(request);
    const answer = this.answers.shift();
    if (!answer) {
      // Unscripted: a stream that stays open with nothing to say.
      const stream = new FakeStream(signal);
      this.streams.push(stream);
      return stream;
    }
    if ("reject" in answer) throw answer.reject;
    const stream = new FakeStream(signal);
    this.streams.push(stream);
    answer.stream(stream);
    return stream;
  };
}

/** A clock whose timers run only when the test advances it. */
export class ManualClock {
  time = 1_000_000;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;

  readonly now = () => this.time;
  readonly setTimer = (fn: () => void, ms: number): unknown => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  };
  readonly clearTimer = (handle: unknown) => {
    this.timers.delete(handle as number);
  };

  get pending(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.time).sort((a, b) => a - b);
  }

  /** Moves time forward, running each timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) {
        if (entry[1].at <= target && (!due || entry[1].at < due[1].at)) due = entry;
      }
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
      await settle();
    }
    this.time = target;
    await settle();
  }
}

/** Lets every pending promise continuation run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function change(init: MessageInitShape<typeof ChangeSchema>): WatchResponse {
  return create(WatchResponseSchema, {
    message: { case: "change", value: create(ChangeSchema, init) },
  });
}

export function snapshotProject(id: string, revision: bigint): WatchResponse {
  return change({
    kind: ChangeKind.SNAPSHOT,
    topic: WatchTopic.CATALOG,
    key: `project/${id}`,
    revision,
    object: { case: "project", value: create(ProjectSchema, { id, name: id }) },
  });
}

export function upsertProject(id: string, revision: bigint, name = id): WatchResponse {
  return change({
    kind: ChangeKind.UPSERT,
    topic: WatchTopic.CATALOG,
    key: `project/${id}`,
    revision,
    object: { case: "project", value: create(ProjectSchema, { id, name }) },
  });
}

export function deleteDeployment(projectId: string, env: string, revision: bigint): WatchResponse {
  return change({
    kind: ChangeKind.DELETE,
    topic: WatchTopic.CATALOG,
    key: `deployment/${projectId}/${env}`,
    revision,
    object: {
      case: "deployment",
      value: create(DeploymentSchema, {
        id: `${projectId}/${env}`,
        projectId,
        environment: env,
      }),
    },
  });
}

export function snapshotDeployment(projectId: string, env: string, revision: bigint): WatchResponse {
  return change({
    kind: ChangeKind.SNAPSHOT,
    topic: WatchTopic.CATALOG,
    key: `deployment/${projectId}/${env}`,
    revision,
    object: {
      case: "deployment",
      value: create(DeploymentSchema, { id: `${projectId}/${env}`, projectId, environment: env }),
    },
  });
}

export function appendEvent(id: string, revision: bigint, kind = "catalog.applied"): WatchResponse {
  return change({
    kind: ChangeKind.APPEND,
    topic: WatchTopic.EVENTS,
    key: `event/${id}`,
    revision,
    object: {
      case: "event",
      value: create(EventSchema, { id, kind, message: `event ${id}`, source: "catalog" }),
    },
  });
}

export function snapshotComplete(revision: bigint): WatchResponse {
  return create(WatchResponseSchema, {
    message: { case: "snapshotComplete", value: { revision } },
  });
}

export function progress(revision: bigint): WatchResponse {
  return create(WatchResponseSchema, {
    message: { case: "progress", value: { revision } },
  });
}
