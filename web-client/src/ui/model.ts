// Views over the watch store: the objects a page shows, joined and counted.

import { HealthStatus, type Deployment, type Environment, type PortAllocation, type Project } from "../gen/pharos/v1/catalog_pb";
import type { CheckHealth, DeploymentHealth } from "../gen/pharos/v1/health_pb";
import { WatchTopic, type Change } from "../gen/pharos/v1/watch_pb";
import type { WatchStore } from "../stream";
import { worstStatus } from "./format";

type ObjectCase = NonNullable<Change["object"]["case"]>;
type ObjectOf<C extends ObjectCase> = Extract<Change["object"], { case: C }>["value"];

function objects<C extends ObjectCase>(changes: readonly Change[], kind: C): ObjectOf<C>[] {
  const found: ObjectOf<C>[] = [];
  for (const change of changes) {
    if (change.object.case === kind) found.push(change.object.value as ObjectOf<C>);
  }
  return found;
}

export function environments(store: WatchStore): Environment[] {
  return objects(store.list(WatchTopic.CATALOG, "environment/"), "environment");
}

export function projects(store: WatchStore): Project[] {
  return objects(store.list(WatchTopic.CATALOG, "project/"), "project");
}

export function project(store: WatchStore, id: string): Project | undefined {
  const change = store.get(WatchTopic.CATALOG, `project/${id}`);
  return change?.object.case === "project" ? change.object.value : undefined;
}

export function deployments(store: WatchStore, projectId?: string): Deployment[] {
  const prefix = projectId === undefined ? "deployment/" : `deployment/${projectId}/`;
  return objects(store.list(WatchTopic.CATALOG, prefix), "deployment");
}

export function ports(store: WatchStore): PortAllocation[] {
  return objects(store.list(WatchTopic.CATALOG, "port/"), "portAllocation");
}

export function deploymentHealth(store: WatchStore, deploymentId: string): DeploymentHealth | undefined {
  const change = store.get(WatchTopic.HEALTH, `deployment-health/${deploymentId}`);
  return change?.object.case === "deploymentHealth" ? change.object.value : undefined;
}

export function checkHealth(store: WatchStore, checkId: string): CheckHealth | undefined {
  const change = store.get(WatchTopic.HEALTH, `check/${checkId}`);
  return change?.object.case === "checkHealth" ? change.object.value : undefined;
}

export function checkId(deployment: Deployment, name: string): string {
  return `${deployment.projectId}/${deployment.environment}/${name}`;
}

export function deploymentStatus(store: WatchStore, deployment: Deployment): HealthStatus {
  return deploymentHealth(store, deployment.id)?.status ?? HealthStatus.UNSPECIFIED;
}

/**
 * The highest revision among a project's health and catalog entries: changes whenever
 * anything the project page shows changes on the stream.
 */
export function projectRevision(store: WatchStore, projectId: string): bigint {
  let max = 0n;
  const lists = [
    store.list(WatchTopic.HEALTH, `check/${projectId}/`),
    store.list(WatchTopic.HEALTH, `deployment-health/${projectId}/`),
    store.list(WatchTopic.CATALOG, `deployment/${projectId}/`),
  ];
  for (const list of lists) for (const change of list) if (change.revision > max) max = change.revision;
  return max;
}

export interface EnvironmentTotals {
  id: string;
  name: string;
  deployments: number;
  portsAllocated: number;
  portsAvailable: number;
  status: HealthStatus;
}

export interface Totals {
  projects: number;
  deployments: number;
  healthy: number;
  degraded: number;
  unhealthy: number;
  unknown: number;
  portsAllocated: number;
  portsAvailable: number;
  environments: EnvironmentTotals[];
}

/**
 * Platform totals computed from the stream, the way pharosd computes GetOverview: a
 * deployment without a health entry counts as unknown; ports available are each
 * environment's range size less its allocations.
 */
export function totals(store: WatchStore): Totals {
  const all = deployments(store);
  const allPorts = ports(store);
  const count = { healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 };
  const statusOf = new Map<string, HealthStatus>();
  for (const deployment of all) {
    const status = deploymentStatus(store, deployment);
    statusOf.set(deployment.id, status);
    if (status === HealthStatus.HEALTHY) count.healthy++;
    else if (status === HealthStatus.DEGRADED) count.degraded++;
    else if (status === HealthStatus.UNHEALTHY) count.unhealthy++;
    else count.unknown++;
  }
  const envs = environments(store).map((env): EnvironmentTotals => {
    const envDeployments = all.filter((d) => d.environment === env.id);
    const allocated = allPorts.filter((p) => p.environment === env.id).length;
    const size = env.portRange ? env.portRange.end - env.portRange.start + 1 : 0;
    const statuses = envDeployments.map((d) => statusOf.get(d.id) ?? HealthStatus.UNSPECIFIED);
    return {
      id: env.id,
      name: env.name,
      deployments: envDeployments.length,
      portsAllocated: allocated,
      portsAvailable: Math.max(0, size - allocated),
      status: worstStatus(statuses),
    };
  });
  return {
    projects: projects(store).length,
    deployments: all.length,
    ...count,
    portsAllocated: allPorts.length,
    portsAvailable: envs.reduce((sum, env) => sum + env.portsAvailable, 0),
    environments: envs,
  };
}
