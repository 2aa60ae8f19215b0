// Containers of a project or a deployment: state, health and restarts live from the
// containers topic of the page's Watch stream; CPU and memory from ListContainers (stats
// samples are not journaled), fetched on load and again whenever the stream brings a
// change of these containers. No timer.

import { containers as containerClient } from "../api/client";
import {
  ContainerHealth,
  ContainerState,
  EngineState,
  type Container,
  type ContainerStats,
  type EngineStatus,
} from "../gen/pharos/v1/containers_pb";
import { WatchTopic } from "../gen/pharos/v1/watch_pb";
import type { WatchStatus, WatchStore } from "../stream";
import { Badge, Pending, RpcError, Section } from "./common";
import { formatAge, formatClock, tsMs, type StatusInfo } from "./format";
import { useAuth, useRpc } from "./hooks";

/** Containers on the stream matching a project (and a deployment, if given), by name. */
export function streamContainers(store: WatchStore, projectId: string, deploymentId?: string): Container[] {
  const found: Container[] = [];
  for (const change of store.list(WatchTopic.CONTAINERS, "container/")) {
    if (change.object.case !== "container") continue;
    const c = change.object.value;
    if (c.projectId !== projectId) continue;
    if (deploymentId !== undefined && c.deploymentId !== deploymentId) continue;
    found.push(c);
  }
  return found.sort((a, b) => (a.deploymentId + a.name < b.deploymentId + b.name ? -1 : 1));
}

/** The engine's status from the stream ("engine" key of the containers topic). */
export function streamEngine(store: WatchStore): EngineStatus | undefined {
  const change = store.get(WatchTopic.CONTAINERS, "engine");
  return change?.object.case === "containerEngine" ? change.object.value : undefined;
}

/** The highest revision among these containers' changes: refetch stats when it moves. */
function containersRevision(store: WatchStore, projectId: string): string {
  let max = 0n;
  for (const change of store.list(WatchTopic.CONTAINERS, "container/")) {
    if (change.object.case === "container" && change.object.value.projectId === projectId && change.revision > max) {
      max = change.revision;
    }
  }
  return max.toString();
}

export function stateLabel(state: ContainerState): StatusInfo & { text: string } {
  const info = stateInfo(state);
  return { ...info, label: info.text, rank: 0 };
}

function stateInfo(state: ContainerState): { text: string; tone: StatusInfo["tone"]; icon: string } {
  switch (state) {
    case ContainerState.RUNNING:
      return { text: "running", tone: "ok", icon: "●" };
    case ContainerState.CREATED:
      return { text: "created", tone: "unknown", icon: "○" };
    case ContainerState.PAUSED:
      return { text: "paused", tone: "warn", icon: "‖" };
    case ContainerState.RESTARTING:
      return { text: "restarting", tone: "warn", icon: "↻" };
    case ContainerState.REMOVING:
      return { text: "removing", tone: "warn", icon: "✕" };
    case ContainerState.EXITED:
      return { text: "exited", tone: "bad", icon: "■" };
    case ContainerState.DEAD:
      return { text: "dead", tone: "bad", icon: "✕" };
    default:
      return { text: "unknown", tone: "unknown", icon: "?" };
  }
}

function healthText(health: ContainerHealth): string {
  switch (health) {
    case ContainerHealth.STARTING:
      return "starting";
    case ContainerHealth.HEALTHY:
      return "healthy";
    case ContainerHealth.UNHEALTHY:
      return "unhealthy";
    default:
      return "—";
  }
}

export function formatBytes(bytes: bigint | number | undefined): string {
  if (bytes === undefined) return "—";
  let value = Number(bytes);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value >= 100 || unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function engineNote(engine: EngineStatus | undefined): string | null {
  if (!engine) return null;
  switch (engine.state) {
    case EngineState.DISABLED:
      return "No container engine is configured on pharosd (--docker-host): containers are not collected.";
    case EngineState.CONNECTING:
      return `Connecting to the container engine at ${engine.endpoint}…`;
    case EngineState.DOWN:
      return `The container engine at ${engine.endpoint} is not answering: ${engine.error}`;
    default:
      return null;
  }
}

/** The containers panel of a project page (all deployments) or an operations page (one). */
export function ContainersSection({
  store,
  status,
  projectId,
  deploymentId,
  now,
}: {
  store: WatchStore;
  status: WatchStatus;
  projectId: string;
  deploymentId?: string;
  now: number;
}) {
  const auth = useAuth();
  const stale = status.state.kind !== "live";
  const revision = status.ready ? containersRevision(store, projectId) : "pending";
  const stats = useRpc(
    (signal) => containerClient.listContainers({ projects: [projectId], deploymentId: deploymentId ?? "" }, { signal }),
    [projectId, deploymentId, auth.epoch, revision],
  );
  const byId = new Map<string, ContainerStats | undefined>();
  for (const c of stats.data?.containers ?? []) byId.set(c.id, c.stats);
  const rows = streamContainers(store, projectId, deploymentId);
  const note = engineNote(streamEngine(store));
  return (
    <Section
      title="Containers"
      id="containers"
      stale={stale && status.ready}
      aside={stats.at ? <span class="muted small-text">CPU and memory as of {formatClock(stats.at)}</span> : null}
    >
      {!status.ready ? (
        <Pending status={status} what="the containers" />
      ) : (
        <>
          {note ? <p class="muted">{note}</p> : null}
          <RpcError what="container stats" error={stats.error} />
          {rows.length === 0 ? (
            <p class="muted">No container carries this {deploymentId ? "deployment" : "project"}'s labels.</p>
          ) : (
            <div class="table-scroll">
              <table class="grid-table containers-table">
                <thead>
                  <tr>
                    <th scope="col">Container</th>
                    {deploymentId ? null : <th scope="col">Deployment</th>}
                    <th scope="col">State</th>
                    <th scope="col">Health</th>
                    <th scope="col" class="num">CPU</th>
                    <th scope="col" class="num">Memory</th>
                    <th scope="col" class="num">Restarts</th>
                    <th scope="col">Started</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((c) => {
                    const s = byId.get(c.id);
                    const state = stateLabel(c.state);
                    const started = tsMs(c.started);
                    return (
                      <tr key={c.id} data-container={c.name} data-state={state.text} data-started={started ?? ""}>
                        <th scope="row">
                          <code title={c.id}>{c.name}</code>{" "}
                          <a class="small-text" href={`#/logs/${encodeURIComponent(c.id)}`} aria-label={`Logs of ${c.name}`}>
                            logs
                          </a>
                          <div class="muted small-text">{c.image}</div>
                        </th>
                        {deploymentId ? null : (
                          <td>
                            {c.deploymentId ? (
                              <a href={`#/operations/${c.deploymentId}`}>{c.deploymentId}</a>
                            ) : (
                              <span class="muted">unmatched</span>
                            )}
                          </td>
                        )}
                        <td>
                          <Badge info={state} small />
                          {c.statusText ? <div class="muted small-text">{c.statusText}</div> : null}
                        </td>
                        <td>{healthText(c.health)}</td>
                        <td class="num">{s ? `${s.cpuPercent.toFixed(1)} %` : "—"}</td>
                        <td class="num">
                          {s ? `${formatBytes(s.memoryUsedBytes)} / ${formatBytes(s.memoryLimitBytes)}` : "—"}
                        </td>
                        <td class="num">{c.restartCount.toString()}</td>
                        <td>{started ? `${formatAge(started, now)} ago` : "—"}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </Section>
  );
}
