import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ChangeKind, ChangeSchema, WatchTopic, type Change } from "../gen/pharos/v1/watch_pb";
import { WatchStore } from "./store";
import { snapshotDeployment, snapshotProject, upsertProject } from "./testing";

function changeOf(response: ReturnType<typeof snapshotProject>): Change {
  if (response.message.case !== "change") throw new Error("not a change");
  return response.message.value;
}

function healthChange(key: string, revision: bigint): Change {
  return create(ChangeSchema, { kind: ChangeKind.UPSERT, topic: WatchTopic.HEALTH, key, revision });
}

describe("WatchStore.list", () => {
  it("answers from its cache until an object of the same topic changes", () => {
    const store = new WatchStore();
    store.apply(changeOf(snapshotProject("b", 1n)));
    store.apply(changeOf(snapshotProject("a", 2n)));
    store.apply(changeOf(snapshotDeployment("a", "prod", 3n)));
    const projects = store.list(WatchTopic.CATALOG, "project/");
    expect(projects.map((c) => c.key)).toEqual(["project/a", "project/b"]);
    // A health change leaves the catalog lists as they were: the same answer, not redone.
    store.apply(healthChange("check/a/prod/http", 4n));
    expect(store.list(WatchTopic.CATALOG, "project/")).toBe(projects);
    expect(store.list(WatchTopic.HEALTH).map((c) => c.key)).toEqual(["check/a/prod/http"]);
    // A catalog change is seen at once.
    store.apply(changeOf(upsertProject("c", 5n)));
    const after = store.list(WatchTopic.CATALOG, "project/");
    expect(after).not.toBe(projects);
    expect(after.map((c) => c.key)).toEqual(["project/a", "project/b", "project/c"]);
    // So is a delete, and clearing the store for a resync.
    store.apply(create(ChangeSchema, { kind: ChangeKind.DELETE, topic: WatchTopic.CATALOG, key: "project/b", revision: 6n }));
    expect(store.list(WatchTopic.CATALOG, "project/").map((c) => c.key)).toEqual(["project/a", "project/c"]);
    store.clear();
    expect(store.list(WatchTopic.CATALOG, "project/")).toEqual([]);
    expect(store.list(WatchTopic.HEALTH)).toEqual([]);
  });
});
