import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { WatchTopic } from "../gen/pharos/v1/watch_pb";
import { BACKOFF_MAX_MS, backoffCeiling, backoffDelay } from "./backoff";
import { EVENT_FEED_LIMIT } from "./store";
import {
  FakeSource,
  ManualClock,
  appendEvent,
  deleteDeployment,
  progress,
  settle,
  snapshotComplete,
  snapshotDeployment,
  snapshotProject,
  upsertProject,
} from "./testing";
import { Watcher, type WatcherOptions } from "./watcher";

const ALL = [WatchTopic.CATALOG, WatchTopic.EVENTS, WatchTopic.HEALTH];

function setup(options: WatcherOptions = {}) {
  const fake = new FakeSource();
  const clock = new ManualClock();
  const watcher = new Watcher(fake.source, { topics: ALL }, {
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    random: () => 0.5,
    idleTimeoutMs: 0,
    ...options,
  });
  return { fake, clock, watcher };
}

describe("snapshot", () => {
  it("starts from revision 0 and is ready at snapshot_complete", async () => {
    const { fake, watcher } = setup();
    fake.open((s) => s.push(snapshotProject("api", 3n), snapshotDeployment("api", "prod", 4n)));
    watcher.start();
    await settle();

    expect(fake.requests[0]?.sinceRevision).toBe(0n);
    expect(fake.requests[0]?.topics).toEqual(ALL);
    expect(watcher.status.state.kind).toBe("connecting");
    expect(watcher.status.ready).toBe(false);
    expect(watcher.store.keys()).toEqual(["catalog/deployment/api/prod", "catalog/project/api"]);
    // Snapshot revisions are per key; they are not the stream position.
    expect(watcher.status.lastRevision).toBe(0n);

    fake.last.push(snapshotComplete(9n));
    await settle();
    expect(watcher.status.state.kind).toBe("live");
    expect(watcher.status.ready).toBe(true);
    expect(watcher.status.lastRevision).toBe(9n);
    expect(watcher.status.lastUpdate).not.toBeNull();
  });

  it("applies upserts and deletes after the snapshot", async () => {
    const { fake, watcher } = setup();
    fake.open((s) =>
      s.push(
        snapshotProject("api", 1n),
        snapshotDeployment("api", "prod", 2n),
        snapshotComplete(5n),
        upsertProject("api", 6n, "API v2"),
        deleteDeployment("api", "prod", 7n),
      ),
    );
    watcher.start();
    await settle();
    expect(watcher.store.keys()).toEqual(["catalog/project/api"]);
    const project = watcher.store.get(WatchTopic.CATALOG, "project/api");
    expect(project?.object.case === "project" && project.object.value.name).toBe("API v2");
    expect(watcher.status.lastRevision).toBe(7n);
  });

  it("starts over from 0 without leftovers when the stream breaks mid-snapshot", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) => s.push(snapshotProject("old", 1n)).breakConnection());
    fake.open((s) => s.push(snapshotProject("new", 2n), snapshotComplete(4n)));
    watcher.start();
    await settle();
    expect(watcher.status.state.kind).toBe("reconnecting");
    await clock.advance(BACKOFF_MAX_MS);
    expect(fake.requests.map((r) => r.sinceRevision)).toEqual([0n, 0n]);
    expect(watcher.store.keys()).toEqual(["catalog/project/new"]);
    expect(watcher.status.ready).toBe(true);
  });
});

describe("resume", () => {
  it("resumes from the last revision and applies nothing twice", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) =>
      s
        .push(
          snapshotProject("api", 1n),
          snapshotComplete(10n),
          upsertProject("api", 11n, "first"),
          appendEvent("e12", 12n),
        )
        .fail(Code.Unavailable, { "pharos-resume-revision": "12" }),
    );
    // The server replays from 12 inclusive by mistake: 11 and 12 must be dropped.
    fake.open((s) =>
      s.push(
        upsertProject("api", 11n, "replayed"),
        appendEvent("e12", 12n),
        upsertProject("api", 13n, "second"),
        appendEvent("e14", 14n),
      ),
    );
    watcher.start();
    await settle();
    expect(watcher.status.state.kind).toBe("reconnecting");
    expect(watcher.status.lastRevision).toBe(12n);

    await clock.advance(250);
    expect(fake.requests.map((r) => r.sinceRevision)).toEqual([0n, 12n]);
    expect(watcher.status.state.kind).toBe("live");
    expect(watcher.status.lastRevision).toBe(14n);
    expect(watcher.status.duplicatesDropped).toBe(2);
    const project = watcher.store.get(WatchTopic.CATALOG, "project/api");
    expect(project?.object.case === "project" && project.object.value.name).toBe("second");
    expect(watcher.store.feed.map((e) => e.event.id)).toEqual(["e14", "e12"]);
    // The store kept its objects across the reconnect: no snapshot, no clear.
    expect(watcher.status.resyncs).toBe(0);
    // The applied revisions have no repeat and no gap across the reconnect.
    expect(watcher.appliedRevisions()).toEqual({ snapshot: 10n, total: 4, revisions: [11n, 12n, 13n, 14n] });
  });

  it("honours an earlier pharos-resume-revision after RESOURCE_EXHAUSTED", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) =>
      s
        .push(snapshotComplete(10n), upsertProject("a", 11n), appendEvent("e12", 12n))
        .fail(Code.ResourceExhausted, { "pharos-resume-revision": "11" }),
    );
    fake.open((s) => s.push(appendEvent("e12", 12n), upsertProject("c", 13n)));
    watcher.start();
    await settle();
    await clock.advance(250);
    expect(fake.requests.map((r) => r.sinceRevision)).toEqual([0n, 11n]);
    expect(watcher.status.duplicatesDropped).toBe(1);
    expect(watcher.store.keys()).toEqual(["catalog/project/a", "catalog/project/c"]);
    expect(watcher.store.feed.map((e) => e.event.id)).toEqual(["e12"]);
    expect(watcher.status.lastRevision).toBe(13n);
  });

  it("never resumes past what it applied, whatever the trailer says", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) =>
      s.push(snapshotComplete(10n)).fail(Code.ResourceExhausted, { "pharos-resume-revision": "50" }),
    );
    watcher.start();
    await settle();
    await clock.advance(250);
    expect(fake.requests[1]?.sinceRevision).toBe(10n);
  });

  it("reconnects after a network error and after the server simply ends the stream", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) => s.push(snapshotComplete(3n)).breakConnection());
    fake.open((s) => s.push(upsertProject("x", 4n)).end());
    watcher.start();
    await settle();
    await clock.advance(250);
    expect(watcher.status.lastRevision).toBe(4n);
    expect(watcher.status.state.kind).toBe("reconnecting");
    await clock.advance(BACKOFF_MAX_MS);
    expect(fake.requests.map((r) => r.sinceRevision)).toEqual([0n, 3n, 4n]);
  });
});

describe("progress markers", () => {
  it("advance the revision a resumed stream starts from", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) => s.push(snapshotComplete(5n), progress(20n), progress(18n)).fail(Code.Unavailable));
    watcher.start();
    await settle();
    expect(watcher.status.lastRevision).toBe(20n);
    await clock.advance(250);
    expect(fake.requests[1]?.sinceRevision).toBe(20n);
  });

  it("refresh lastUpdate", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) => s.push(snapshotComplete(5n)));
    watcher.start();
    await settle();
    const first = watcher.status.lastUpdate;
    await clock.advance(10_000);
    fake.last.push(progress(6n));
    await settle();
    expect(watcher.status.lastUpdate).toBe((first ?? 0) + 10_000);
  });

  it("drop changes a progress marker already covered", async () => {
    const { fake, watcher } = setup();
    fake.open((s) => s.push(snapshotComplete(5n), progress(9n), upsertProject("late", 8n)));
    watcher.start();
    await settle();
    expect(watcher.store.keys()).toEqual([]);
    expect(watcher.status.duplicatesDropped).toBe(1);
  });
});

describe("resync", () => {
  it("clears the store and takes a new snapshot on OUT_OF_RANGE", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) =>
      s
        .push(snapshotProject("gone", 1n), snapshotComplete(10n), upsertProject("also-gone", 11n))
        .fail(Code.Unavailable),
    );
    fake.reject(Code.OutOfRange, { "pharos-resync": "snapshot" });
    fake.open((s) => s.push(snapshotProject("fresh", 2n)));
    watcher.start();
    await settle();
    expect(watcher.store.keys()).toEqual(["catalog/project/also-gone", "catalog/project/gone"]);

    await clock.advance(250);
    // Resumed from 11, was told it is out of range, and resubscribed from 0 at once.
    expect(fake.requests.map((r) => r.sinceRevision)).toEqual([0n, 11n, 0n]);
    expect(watcher.status.resyncs).toBe(1);
    expect(watcher.status.ready).toBe(false);
    expect(watcher.store.keys()).toEqual(["catalog/project/fresh"]);

    fake.last.push(snapshotComplete(3n), upsertProject("next", 4n));
    await settle();
    expect(watcher.status.ready).toBe(true);
    expect(watcher.status.state.kind).toBe("live");
    // Revision 4 is below the old position (11): the new snapshot reset it.
    expect(watcher.status.lastRevision).toBe(4n);
    expect(watcher.store.keys()).toEqual(["catalog/project/fresh", "catalog/project/next"]);
    // The log of applied revisions starts over with the new snapshot.
    expect(watcher.appliedRevisions()).toEqual({ snapshot: 3n, total: 1, revisions: [4n] });
  });

  it("keeps the last revisionLog applied revisions and counts them all", async () => {
    const { fake, watcher } = setup({ revisionLog: 2 });
    fake.open((s) => s.push(snapshotComplete(5n), upsertProject("a", 6n), upsertProject("b", 7n), upsertProject("c", 8n)));
    watcher.start();
    await settle();
    expect(watcher.appliedRevisions()).toEqual({ snapshot: 5n, total: 3, revisions: [7n, 8n] });
  });

  it("backs off when even a fresh subscription is out of range", async () => {
    const { fake, watcher } = setup();
    fake.reject(Code.OutOfRange, { "pharos-resync": "snapshot" });
    watcher.start();
    await settle();
    expect(watcher.status.state).toMatchObject({ kind: "reconnecting", attempt: 1 });
    expect(fake.requests).toHaveLength(1);
  });
});

describe("backoff", () => {
  it("grows from 250 ms doubling to a 5 s cap", () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 7, 50].map(backoffCeiling);
    expect(ceilings).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it("jitters between half the ceiling and the ceiling", () => {
    expect(backoffDelay(3, () => 0)).toBe(500);
    expect(backoffDelay(3, () => 0.999999)).toBe(1000);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(4);
      expect(delay).toBeGreaterThanOrEqual(1000);
      expect(delay).toBeLessThanOrEqual(2000);
    }
  });

  it("schedules growing retries, reports the attempt and next retry, then unreachable", async () => {
    const { fake, clock, watcher } = setup({ random: () => 0.999999 });
    for (let i = 0; i < 7; i++) fake.unreachable();
    const states: string[] = [];
    watcher.start();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      await settle();
      const state = watcher.status.state;
      if (state.kind !== "reconnecting" && state.kind !== "unreachable") {
        throw new Error(`unexpected state ${state.kind}`);
      }
      expect(state.attempt).toBe(i + 1);
      expect(state.nextRetryAt).not.toBeNull();
      states.push(state.kind);
      const delay = (state.nextRetryAt ?? 0) - clock.time;
      delays.push(delay);
      await clock.advance(delay);
    }
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    expect(states).toEqual([
      "reconnecting",
      "reconnecting",
      "reconnecting",
      "unreachable",
      "unreachable",
      "unreachable",
      "unreachable",
    ]);
    expect(fake.requests).toHaveLength(8);
    expect(fake.requests.every((r) => r.sinceRevision === 0n)).toBe(true);
  });

  it("starts over at 250 ms once a stream worked again", async () => {
    const { fake, clock, watcher } = setup({ random: () => 0.999999 });
    fake.unreachable().unreachable().unreachable();
    fake.open((s) => s.push(snapshotComplete(1n)).fail(Code.Unavailable));
    watcher.start();
    await settle();
    await clock.advance(250 + 500 + 1000);
    expect(fake.requests).toHaveLength(4);
    const state = watcher.status.state;
    expect(state).toMatchObject({ kind: "reconnecting", attempt: 1 });
    expect(clock.pending).toEqual([250]);
  });

  it("retryNow skips the wait", async () => {
    const { fake, clock, watcher } = setup();
    fake.unreachable().unreachable().unreachable().unreachable();
    fake.open((s) => s.push(snapshotComplete(1n)));
    watcher.start();
    await settle();
    await clock.advance(250 + 500 + 1000);
    expect(watcher.status.state.kind).toBe("unreachable");
    watcher.retryNow();
    await settle();
    expect(watcher.status.state.kind).toBe("live");
  });
});

describe("authorization", () => {
  it("stops on UNAUTHENTICATED until retryNow", async () => {
    const { fake, clock, watcher } = setup();
    fake.reject(Code.Unauthenticated);
    fake.open((s) => s.push(snapshotComplete(2n)));
    watcher.start();
    await settle();
    expect(watcher.status.state).toMatchObject({ kind: "unauthorized", code: Code.Unauthenticated });
    await clock.advance(60_000);
    expect(fake.requests).toHaveLength(1);
    watcher.retryNow();
    await settle();
    expect(fake.requests).toHaveLength(2);
    expect(watcher.status.state.kind).toBe("live");
  });
});

describe("events feed", () => {
  it("keeps the last 100 events, newest first, and counts every kind", async () => {
    const { fake, watcher } = setup();
    fake.open((s) => {
      s.push(snapshotComplete(1n));
      for (let i = 0; i < 150; i++) {
        s.push(appendEvent(`e${i}`, BigInt(2 + i), i % 3 === 0 ? "catalog.invalid" : "catalog.applied"));
      }
    });
    watcher.start();
    await settle();
    const feed = watcher.store.feed;
    expect(feed).toHaveLength(EVENT_FEED_LIMIT);
    expect(feed[0]?.event.id).toBe("e149");
    expect(feed[EVENT_FEED_LIMIT - 1]?.event.id).toBe("e50");
    expect(watcher.store.eventsReceived).toBe(150);
    expect(Object.fromEntries(watcher.store.kindCounts)).toEqual({
      "catalog.invalid": 50,
      "catalog.applied": 100,
    });
    // Events are a feed, not keyed state.
    expect(watcher.store.size).toBe(0);
  });

  it("survives a resync (events that happened still happened)", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) => s.push(snapshotComplete(1n), appendEvent("e2", 2n)).fail(Code.Unavailable));
    fake.reject(Code.OutOfRange, { "pharos-resync": "snapshot" });
    fake.open((s) => s.push(snapshotComplete(1n)));
    watcher.start();
    await settle();
    await clock.advance(250);
    expect(watcher.status.resyncs).toBe(1);
    expect(watcher.store.feed.map((e) => e.event.id)).toEqual(["e2"]);
  });
});

describe("lifecycle", () => {
  it("stop aborts the stream and cancels retries", async () => {
    const { fake, clock, watcher } = setup();
    fake.open((s) => s.push(snapshotComplete(1n)));
    watcher.start();
    await settle();
    watcher.stop();
    await settle();
    expect(fake.last.aborted).toBe(true);
    expect(watcher.status.state.kind).toBe("stopped");
    await clock.advance(60_000);
    expect(fake.requests).toHaveLength(1);
  });

  it("reopens a stream that went silent", async () => {
    const { fake, clock, watcher } = setup({ idleTimeoutMs: 30_000 });
    fake.open((s) => s.push(snapshotComplete(7n)));
    watcher.start();
    await settle();
    await clock.advance(20_000);
    fake.last.push(progress(8n));
    await settle();
    await clock.advance(20_000);
    expect(watcher.status.state.kind).toBe("live");
    await clock.advance(10_000);
    expect(watcher.status.state.kind).toBe("reconnecting");
    expect(fake.streams[0]?.aborted).toBe(true);
    await clock.advance(250);
    expect(fake.requests.map((r) => r.sinceRevision)).toEqual([0n, 8n]);
  });

  it("notifies subscribers of store and state changes", async () => {
    const { fake, watcher } = setup();
    let calls = 0;
    const unsubscribe = watcher.subscribe(() => calls++);
    fake.open((s) => s.push(snapshotProject("a", 1n), snapshotComplete(1n)));
    watcher.start();
    await settle();
    expect(calls).toBeGreaterThanOrEqual(3);
    unsubscribe();
    const before = calls;
    fake.last.push(upsertProject("b", 2n));
    await settle();
    expect(calls).toBe(before);
  });
});
