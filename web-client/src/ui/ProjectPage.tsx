import { Code } from "@connectrpc/connect";
import { health } from "../api/client";
import type { CheckHealthDetail, DeploymentHealthDetail, UptimeWindow } from "../gen/pharos/v1/health_pb";
import type { Deployment, PortAllocation } from "../gen/pharos/v1/catalog_pb";
import type { WatchStatus, WatchStore } from "../stream";
import { Pending, RpcError, Section, StatusBadge } from "./common";
import {
  formatAge,
  formatClock,
  formatDuration,
  formatPercent,
  portTypeLabel,
  tsMs,
} from "./format";
import { useAuth, useRpc, type WatchHandle } from "./hooks";
import { ContainersSection } from "./Containers";
import { LatencyChart } from "./LatencyChart";
import { checkHealth, deploymentHealth, deployments, ports, project as projectOf, projectRevision } from "./model";

export function ProjectPage({ watch, id, now }: { watch: WatchHandle; id: string; now: number }) {
  const { status, watcher } = watch;
  const store = watcher.store;
  const stale = status.state.kind !== "live";
  const auth = useAuth();

  // Statuses are live from the stream (its health topic carries every check and
  // deployment transition). Per-run data (latest results, uptime windows, latency) is not
  // on the stream: it is fetched once on load and again when the stream brings a change
  // concerning this project. No timer.
  const revision = status.ready ? projectRevision(store, id).toString() : "pending";
  const detail = useRpc(
    (signal) => health.getProjectHealth({ projectId: id }, { signal }),
    [id, auth.epoch, revision],
  );
  const project = projectOf(store, id);
  const streamDeployments = deployments(store, id);
  const notFound =
    (status.ready && !project && detail.error?.code === Code.NotFound) ||
    (status.ready && !project && !detail.loading && !detail.data);

  if (notFound) {
    return (
      <>
        <p>
          <a href="#/projects">← Projects</a>
        </p>
        <h1 class="page-title">{id}</h1>
        <p class="error-note" role="alert">
          Project <code>{id}</code> is not in the catalog. <a href="#/projects">See the projects that are</a>.
        </p>
      </>
    );
  }

  const checks: CheckHealthDetail[] = detail.data?.deployments.flatMap((d) => d.checks) ?? [];
  return (
    <>
      <p>
        <a href="#/projects">← Projects</a>
      </p>
      <div class="title-row">
        <h1 class="page-title">{project?.name || id}</h1>
        {detail.data ? <StatusBadge status={detail.data.status} /> : null}
      </div>
      <p class="muted">
        <code>{id}</code>
        {project?.type ? ` · ${project.type}` : ""}
        {project?.subdomain ? ` · subdomain ${project.subdomain}` : ""}
      </p>
      {project?.description ? <p>{project.description}</p> : null}

      <p class="muted small-text">
        Statuses follow the watch stream. Latest results, uptime and latency as of{" "}
        {detail.at !== null ? `${formatClock(detail.at)} (${formatAge(detail.at, now)} ago)` : "—"}: fetched again on
        every change of this project on the stream.{" "}
        <button type="button" class="link-button" onClick={() => detail.reload()} disabled={detail.loading}>
          {detail.loading ? "Refreshing…" : "Refresh now"}
        </button>
      </p>
      <RpcError what={`the health of ${id}`} error={detail.error} />

      {detail.data?.deployments.map((d) => (
        <DeploymentSection
          key={d.health?.deploymentId}
          store={store}
          detail={d}
          deployment={streamDeployments.find((x) => x.id === d.health?.deploymentId)}
          stale={stale || detail.error !== undefined}
          now={now}
        />
      ))}
      {detail.data && detail.data.deployments.length === 0 ? (
        <p class="muted">This project has no deployments.</p>
      ) : null}

      <PortsSection allocations={projectPorts(store, id, streamDeployments)} status={status} stale={stale} />

      <ContainersSection store={store} status={status} projectId={id} now={now} />

      <Section title="Latency of recent runs" id="latency" stale={stale}>
        {checks.length === 0 ? (
          <p class="muted">{detail.data ? "No checks to chart." : "Loading…"}</p>
        ) : (
          <LatencyChart checkIds={checks.map((c) => c.check?.checkId ?? "").filter(Boolean)} refresh={`${revision}/${auth.epoch}`} />
        )}
      </Section>
    </>
  );
}

function DeploymentSection({
  store,
  detail,
  deployment,
  stale,
  now,
}: {
  store: WatchStore;
  detail: DeploymentHealthDetail;
  deployment: Deployment | undefined;
  stale: boolean;
  now: number;
}) {
  const h = detail.health;
  if (!h) return null;
  const live = deploymentHealth(store, h.deploymentId);
  const titleId = `dep-${h.deploymentId.replace(/[^a-zA-Z0-9_-]/g, "-")}`;
  return (
    <Section
      title={`Environment ${h.environment}`}
      id={titleId}
      stale={stale}
      aside={<StatusBadge status={live?.status ?? h.status} />}
    >
      <p class="small-text">
        <a href={`#/operations/${h.deploymentId}`}>Operations on {h.deploymentId}</a>
      </p>
      <p class="muted small-text">
        {(live ?? h).healthyChecks} healthy · {(live ?? h).degradedChecks} degraded · {(live ?? h).unhealthyChecks}{" "}
        unhealthy · {(live ?? h).unknownChecks} unknown
      </p>
      {detail.checks.length === 0 ? (
        <p class="muted">No checks declared.</p>
      ) : (
        <div class="table-scroll">
          <table class="grid-table checks-detail">
            <caption class="sr-only">Checks of {h.deploymentId}</caption>
            <thead>
              <tr>
                <th scope="col">Check</th>
                <th scope="col">Status</th>
                <th scope="col">Latest result</th>
                <th scope="col" class="num">Latency</th>
                {["1h", "24h", "7d", "30d"].map((w) => (
                  <th key={w} scope="col" class="num">
                    Uptime {w}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {detail.checks.map((c) => (
                <CheckDetailRow key={c.check?.checkId} store={store} detail={c} deployment={deployment} now={now} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}

function CheckDetailRow({
  store,
  detail,
  deployment,
  now,
}: {
  store: WatchStore;
  detail: CheckHealthDetail;
  deployment: Deployment | undefined;
  now: number;
}) {
  const check = detail.check;
  if (!check) return null;
  const live = checkHealth(store, check.checkId);
  const status = live?.status ?? check.status;
  const flapping = live?.flapping ?? check.flapping;
  const since = tsMs(live?.since ?? check.since);
  const def = deployment?.checks.find((x) => x.name === check.name);
  const result = check.lastResult;
  const at = tsMs(result?.time);
  const windows = new Map(detail.windows.map((w) => [w.window, w]));
  return (
    <tr>
      <th scope="row">
        {check.name}
        <div class="muted small-text">
          {check.kind}
          {def?.target ? ` · ${def.target}` : ""}
          {def?.interval ? ` · every ${formatDuration(def.interval)}` : ""}
        </div>
      </th>
      <td>
        <StatusBadge status={status} small />
        {flapping ? (
          <span class="badge tone-warn small">
            <span aria-hidden="true">≈ </span>flapping
          </span>
        ) : null}
        {since !== null ? <div class="muted small-text">since {formatClock(since)} ({formatAge(since, now)})</div> : null}
      </td>
      <td class="message">
        {result ? (
          <>
            <StatusBadge status={result.outcome} small /> {result.message}
            {at !== null ? <div class="muted small-text">at {formatClock(at)}</div> : null}
          </>
        ) : (
          <span class="muted">no result yet</span>
        )}
      </td>
      <td class="num">
        {result ? (
          <>
            {formatDuration(result.total)}
            <div class="muted small-text">
              {result.connect ? `connect ${formatDuration(result.connect)}` : ""}
              {result.firstByte ? ` · first byte ${formatDuration(result.firstByte)}` : ""}
            </div>
          </>
        ) : (
          "—"
        )}
      </td>
      {["1h", "24h", "7d", "30d"].map((w) => (
        <td key={w} class="num">
          <WindowCell window={windows.get(w)} />
        </td>
      ))}
    </tr>
  );
}

function WindowCell({ window }: { window: UptimeWindow | undefined }) {
  if (!window || window.runs === 0n) return <span class="muted">no runs</span>;
  const runs = window.runs === 1n ? "1 run" : `${window.runs.toString()} runs`;
  return (
    <div
      title={`${runs}; latency p50 ${formatDuration(window.latencyP50)}, p95 ${formatDuration(window.latencyP95)}, p99 ${formatDuration(window.latencyP99)}`}
    >
      {formatPercent(window.uptimePercent)}
      <div class="muted small-text">{runs}</div>
      <div class="muted small-text">p95 {formatDuration(window.latencyP95)}</div>
    </div>
  );
}

/** The project's port allocations: the catalog's port entries, and any a deployment lists. */
function projectPorts(store: WatchStore, id: string, deployments: Deployment[]): PortAllocation[] {
  const found = new Map<string, PortAllocation>();
  for (const p of [...ports(store), ...deployments.flatMap((d) => d.ports)]) {
    if (p.projectId === id) found.set(`${p.environment}/${p.port}`, p);
  }
  return [...found.values()].sort((a, b) => a.environment.localeCompare(b.environment) || a.port - b.port);
}

function PortsSection({ allocations: rows, status, stale }: { allocations: PortAllocation[]; status: WatchStatus; stale: boolean }) {
  const ready = status.ready;
  return (
    <Section title="Ports" id="ports" stale={stale && ready}>
      {!ready ? (
        <Pending status={status} what="the catalog snapshot" />
      ) : rows.length === 0 ? (
        <p class="muted">No ports allocated.</p>
      ) : (
        <table class="grid-table">
          <caption class="sr-only">Allocated ports</caption>
          <thead>
            <tr>
              <th scope="col">Environment</th>
              <th scope="col" class="num">Port</th>
              <th scope="col">Type</th>
              <th scope="col">Service</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((p) => (
              <tr key={`${p.environment}/${p.port}`}>
                <td>{p.environment}</td>
                <td class="num">{p.port}</td>
                <td>{portTypeLabel(p.type)}</td>
                <td>{p.service}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
