import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  DeploymentSchema,
  EnvironmentSchema,
  HealthStatus,
  PortAllocationSchema,
  ProjectSchema,
} from "../gen/pharos/v1/catalog_pb";
import { DeploymentHealthSchema } from "../gen/pharos/v1/health_pb";
import { ChangeKind, ChangeSchema, WatchTopic, type Change } from "../gen/pharos/v1/watch_pb";
import { WatchStore } from "../stream";
import { worstStatus } from "./format";
import { projectRevision, totals } from "./model";
import { parseRoute } from "./route";

let revision = 0n;
function put(store: WatchStore, topic: WatchTopic, key: string, object: Change["object"]) {
  store.apply(create(ChangeSchema, { kind: ChangeKind.SNAPSHOT, topic, key, revision: ++revision, object }));
}

function catalogStore(): WatchStore {
  const store = new WatchStore();
  put(store, WatchTopic.CATALOG, "environment/prod", {
    case: "environment",
    value: create(EnvironmentSchema, { id: "prod", name: "Production", portRange: { start: 8000, end: 8009 } }),
  });
  put(store, WatchTopic.CATALOG, "environment/dev", {
    case: "environment",
    value: create(EnvironmentSchema, { id: "dev", name: "Development" }),
  });
  for (const id of ["api", "web"]) {
    put(store, WatchTopic.CATALOG, `project/${id}`, {
      case: "project",
      value: create(ProjectSchema, { id, name: id, environments: ["prod", "dev"] }),
    });
    for (const env of ["prod", "dev"]) {
      put(store, WatchTopic.CATALOG, `deployment/${id}/${env}`, {
        case: "deployment",
        value: create(DeploymentSchema, { id: `${id}/${env}`, projectId: id, environment: env }),
      });
    }
  }
  put(store, WatchTopic.CATALOG, "port/prod/8000", {
    case: "portAllocation",
    value: create(PortAllocationSchema, { environment: "prod", port: 8000, projectId: "api", service: "http" }),
  });
  put(store, WatchTopic.CATALOG, "port/dev/9000", {
    case: "portAllocation",
    value: create(PortAllocationSchema, { environment: "dev", port: 9000, projectId: "api", service: "http" }),
  });
  const health = (id: string, status: HealthStatus) =>
    put(store, WatchTopic.HEALTH, `deployment-health/${id}`, {
      case: "deploymentHealth",
      value: create(DeploymentHealthSchema, { deploymentId: id, status }),
    });
  health("api/prod", HealthStatus.HEALTHY);
  health("web/prod", HealthStatus.UNHEALTHY);
  health("api/dev", HealthStatus.DEGRADED);
  // web/dev has no health entry: unknown.
  return store;
}

describe("totals", () => {
  it("counts like GetOverview: unknown without health, ports left in each range", () => {
    const t = totals(catalogStore());
    expect(t).toMatchObject({
      projects: 2,
      deployments: 4,
      healthy: 1,
      degraded: 1,
      unhealthy: 1,
      unknown: 1,
      portsAllocated: 2,
      portsAvailable: 9,
    });
    expect(t.environments).toEqual([
      { id: "dev", name: "Development", deployments: 2, portsAllocated: 1, portsAvailable: 0, status: HealthStatus.DEGRADED },
      { id: "prod", name: "Production", deployments: 2, portsAllocated: 1, portsAvailable: 9, status: HealthStatus.UNHEALTHY },
    ]);
  });

  it("follows deletes and health changes", () => {
    const store = catalogStore();
    store.apply(
      create(ChangeSchema, {
        kind: ChangeKind.DELETE,
        topic: WatchTopic.CATALOG,
        key: "deployment/web/prod",
        revision: ++revision,
      }),
    );
    store.apply(
      create(ChangeSchema, {
        kind: ChangeKind.UPSERT,
        topic: WatchTopic.HEALTH,
        key: "deployment-health/web/dev",
        revision: ++revision,
        object: { case: "deploymentHealth", value: create(DeploymentHealthSchema, { deploymentId: "web/dev", status: HealthStatus.HEALTHY }) },
      }),
    );
    expect(totals(store)).toMatchObject({ deployments: 3, healthy: 2, unhealthy: 0, unknown: 0 });
    expect(projectRevision(store, "web")).toBe(revision);
  });
});

describe("worstStatus", () => {
  it("is the worst known status, as pharosd aggregates", () => {
    expect(worstStatus([HealthStatus.HEALTHY, HealthStatus.UNSPECIFIED])).toBe(HealthStatus.HEALTHY);
    expect(worstStatus([HealthStatus.UNSPECIFIED])).toBe(HealthStatus.UNSPECIFIED);
    expect(worstStatus([HealthStatus.DEGRADED, HealthStatus.UNSPECIFIED])).toBe(HealthStatus.DEGRADED);
    expect(worstStatus([HealthStatus.DEGRADED, HealthStatus.UNHEALTHY])).toBe(HealthStatus.UNHEALTHY);
    expect(worstStatus([])).toBe(HealthStatus.UNSPECIFIED);
  });
});

describe("parseRoute", () => {
  it("maps hashes to pages", () => {
    expect(parseRoute("")).toEqual({ page: "system" });
    expect(parseRoute("#/")).toEqual({ page: "system" });
    expect(parseRoute("#/projects")).toEqual({ page: "projects", environment: "" });
    expect(parseRoute("#/projects?env=prod")).toEqual({ page: "projects", environment: "prod" });
    expect(parseRoute("#/projects/my%20api")).toEqual({ page: "project", id: "my api" });
    expect(parseRoute("#/nope")).toEqual({ page: "not-found", path: "/nope" });
  });
});
