import { CapacityPanel, KpiPanel, ThroughputPanel } from "./SystemMetrics";
import { Component } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { catalog } from "../api/client";
import { HealthStatus, type Deployment, type Project } from "../gen/pharos/v1/catalog_pb";
import type { CheckHealth, DeploymentHealth } from "../gen/pharos/v1/health_pb";
import type { CheckDefinition } from "../gen/pharos/v1/catalog_pb";
import type { WatchStore } from "../stream";
import { Badge, Pending, RpcError, Section, StatusBadge } from "./common";
import type { WatchStatus } from "../stream";
import {
  formatAge,
  formatClock,
  formatDuration,
  plural,
  severityInfo,
  statusInfo,
  tsMs,
} from "./format";
import { useAuth, useRpc, type WatchHandle } from "./hooks";
import {
  checkHealth,
  checkId,
  deploymentHealth,
  deployments,
  project as projectOf,
  totals,
  type Totals,
} from "./model";

export function SystemPage({ watch, now }: { watch: WatchHandle; now: number }) {
  const { status, watcher } = watch;
  const store = watcher.store;
  const stale = status.state.kind !== "live";
  return (
    <>
      <h1 class="page-title">System</h1>
      <Overview watch={watch} stale={stale} />
      <HealthGrid store={store} status={status} stale={stale} />
      <ThroughputPanel store={store} ready={status.ready} stale={stale} />
      <CapacityPanel store={store} ready={status.ready} stale={stale} />
      <KpiPanel store={store} ready={status.ready} stale={stale} now={now} />
      <EventsFeed store={store} status={status} stale={stale} now={now} />
    </>
  );
}

function Overview({ watch, stale }: { watch: WatchHandle; stale: boolean }) {
  const auth = useAuth();
  // Once, for the first paint; from then on the stream keeps the totals current.
  const overview = useRpc((signal) => catalog.getOverview({}, { signal }), [auth.epoch]);
  const { status, watcher } = watch;
  let data: Totals | null = null;
  let source = "";
  if (status.ready) {
    data = totals(watcher.store);
    source = `kept current from the watch stream (revision ${status.lastRevision})`;
  } else if (overview.data) {
    const o = overview.data;
    data = {
      projects: o.projects,
      deployments: o.deployments,
      healthy: o.healthyDeployments,
      degraded: o.degradedDeployments,
      unhealthy: o.unhealthyDeployments,
      unknown: o.unknownDeployments,
      portsAllocated: o.portsAllocated,
      portsAvailable: o.portsAvailable,
      environments: o.environments.map((e) => ({
        id: e.id,
        name: e.name,
        deployments: e.deployments,
        portsAllocated: e.portsAllocated,
        portsAvailable: e.portsAvailable,
        status: HealthStatus.UNSPECIFIED,
      })),
    };
    source = `from GetOverview at revision ${o.revision}`;
  }
  return (
    <Section
      title="Platform totals"
      id="totals"
      stale={stale && data !== null}
      aside={data ? <span class="muted small-text">{source}</span> : null}
    >
      {data === null ? (
        overview.error ? (
          <RpcError what="the platform overview" error={overview.error} />
        ) : (
          <p class="muted">Loading…</p>
        )
      ) : (
        <>
          <dl class="stats">
            <Stat label="Projects" value={data.projects} href="#/projects" />
            <Stat label="Deployments" value={data.deployments} />
            <Stat label="Healthy" value={data.healthy} status={HealthStatus.HEALTHY} />
            <Stat label="Degraded" value={data.degraded} status={HealthStatus.DEGRADED} />
            <Stat label="Unhealthy" value={data.unhealthy} status={HealthStatus.UNHEALTHY} />
            <Stat label="Unknown" value={data.unknown} status={HealthStatus.UNSPECIFIED} />
            <Stat label="Ports allocated" value={data.portsAllocated} />
            <Stat label="Ports available" value={data.portsAvailable} />
          </dl>
          <table class="grid-table">
            <caption class="sr-only">Environments</caption>
            <thead>
              <tr>
                <th scope="col">Environment</th>
                <th scope="col">Health</th>
                <th scope="col" class="num">Deployments</th>
                <th scope="col" class="num">Ports allocated</th>
                <th scope="col" class="num">Ports available</th>
              </tr>
            </thead>
            <tbody>
              {data.environments.map((env) => (
                <tr key={env.id}>
                  <th scope="row">
                    <a href={`#/projects?env=${encodeURIComponent(env.id)}`}>{env.name || env.id}</a>{" "}
                    <span class="muted">({env.id})</span>
                  </th>
                  <td>{status.ready ? <StatusBadge status={env.status} small /> : <span class="muted">—</span>}</td>
                  <td class="num">{env.deployments}</td>
                  <td class="num">{env.portsAllocated}</td>
                  <td class="num">{env.portsAvailable}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Section>
  );
}

function Stat({ label, value, status, href }: { label: string; value: number; status?: HealthStatus; href?: string }) {
  const info = status === undefined ? null : statusInfo(status);
  return (
    <div class={`stat${info ? ` tone-${info.tone}` : ""}${info && value === 0 ? " zero" : ""}`}>
      <dt>
        {info ? (
          <span class="badge-icon" aria-hidden="true">
            {info.icon}
          </span>
        ) : null}
        {label}
      </dt>
      <dd>{href ? <a href={href}>{value}</a> : value}</dd>
    </div>
  );
}

/**
 * Cards drawn in the first frame with data; the rest follow a chunk per frame, so a large
 * catalog's first screen does not wait for a thousand cards below the fold.
 */
const FIRST_CARDS = 120;
const CARDS_PER_FRAME = 300;

function HealthGrid({ store, status, stale }: { store: WatchStore; status: WatchStatus; stale: boolean }) {
  const [problemsOnly, setProblemsOnly] = useState(false);
  const [limit, setLimit] = useState(FIRST_CARDS);
  const total = status.ready ? deployments(store).length : 0;
  useEffect(() => {
    if (limit >= total) return;
    const frame = requestAnimationFrame(() => setLimit((l) => l + CARDS_PER_FRAME));
    return () => cancelAnimationFrame(frame);
  }, [limit, total]);
  if (!status.ready) {
    return (
      <Section title="Deployment health" id="health">
        <Pending status={status} what="the health snapshot" />
      </Section>
    );
  }
  const all = deployments(store);
  const rows = all.map((d) => ({ deployment: d, health: deploymentHealth(store, d.id) }));
  const shown = problemsOnly
    ? rows.filter((r) => r.health?.status !== HealthStatus.HEALTHY)
    : rows;
  return (
    <Section
      title="Deployment health"
      id="health"
      stale={stale}
      aside={
        <label class="check">
          <input
            type="checkbox"
            checked={problemsOnly}
            onChange={(e) => setProblemsOnly((e.target as HTMLInputElement).checked)}
          />{" "}
          Only deployments that are not healthy
        </label>
      }
    >
      {all.length === 0 ? (
        <p class="muted">The catalog has no deployments.</p>
      ) : shown.length === 0 ? (
        <p>
          <Badge info={statusInfo(HealthStatus.HEALTHY)} /> Every deployment is healthy.
        </p>
      ) : (
        <ul class="health-grid">
          {shown.slice(0, limit).map(({ deployment, health }) => (
            <DeploymentCard
              key={deployment.id}
              deployment={deployment}
              project={projectOf(store, deployment.projectId)}
              health={health}
              checks={deployment.checks.map((def) => checkHealth(store, checkId(deployment, def.name)))}
            />
          ))}
        </ul>
      )}
      <p class="muted small-text">
        Statuses come from the watch stream. Its health topic carries status changes, not every
        run, so the result shown for a check is the one that caused its last change (with its
        time); a project's page has the latest run of each check.
      </p>
    </Section>
  );
}

interface CardProps {
  deployment: Deployment;
  project: Project | undefined;
  health: DeploymentHealth | undefined;
  /** The live state of each of the deployment's checks, in declaration order. */
  checks: (CheckHealth | undefined)[];
}

/**
 * One deployment's tile. The objects come from the store, which replaces an object only
 * when a change for it arrives, so comparing references tells whether the tile changed:
 * with 1,000 tiles and a hundred changes a second, only the changed tiles re-render.
 * Nothing here depends on the clock (times are shown as clock times, not ages).
 */
class DeploymentCard extends Component<CardProps> {
  override shouldComponentUpdate(next: CardProps): boolean {
    const p = this.props;
    return (
      p.deployment !== next.deployment ||
      p.project !== next.project ||
      p.health !== next.health ||
      p.checks.length !== next.checks.length ||
      p.checks.some((c, i) => c !== next.checks[i])
    );
  }

  override render() {
    const { deployment, project, health, checks } = this.props;
    const info = statusInfo(health?.status);
    return (
      <li class={`card tone-border-${info.tone}`} data-deployment={deployment.id} data-status={info.tone}>
        <div class="card-head">
          <h3>
            <a href={`#/projects/${encodeURIComponent(deployment.projectId)}`}>
              {project?.name || deployment.projectId}
            </a>{" "}
            <span class="env-tag">{deployment.environment}</span>
          </h3>
          <StatusBadge status={health?.status} />
        </div>
        {health && deployment.checks.length > 1 ? (
          <p class="muted small-text">
            {health.healthyChecks} healthy · {health.degradedChecks} degraded · {health.unhealthyChecks} unhealthy ·{" "}
            {health.unknownChecks} unknown
          </p>
        ) : null}
        {deployment.checks.length === 0 ? (
          <p class="muted small-text">No checks declared.</p>
        ) : (
          <ul class="check-list" aria-label={`Checks of ${deployment.id}`}>
            {deployment.checks.map((def, i) => (
              <CheckItem key={def.name} def={def} check={checks[i]} />
            ))}
          </ul>
        )}
      </li>
    );
  }
}

/** One check in a tile: status, name, kind, latency and the result of its last change. */
function CheckItem({ def, check }: { def: CheckDefinition; check: CheckHealth | undefined }) {
  const since = tsMs(check?.since);
  const result = check?.lastResult;
  return (
    <li>
      <StatusBadge status={check?.status} small />{" "}
      {check?.flapping ? (
        <span class="badge tone-warn small" title="Too many status changes: changes are not announced one by one">
          <span aria-hidden="true">≈ </span>flapping
        </span>
      ) : null}
      <strong>{def.name}</strong>{" "}
      <span class="muted small-text">
        {def.kind}
        {result ? ` · ${formatDuration(result.total)}` : ""}
        {since !== null ? ` · since ${formatClock(since)}` : ""}
      </span>
      {result?.message ? <div class="muted small-text message">{result.message}</div> : null}
    </li>
  );
}

function EventsFeed({ store, status, stale, now }: { store: WatchStore; status: WatchStatus; stale: boolean; now: number }) {
  const ready = status.ready;
  // The feed belongs to this page's stream: it starts empty when the stream does.
  const openedAt = useMemo(() => Date.now(), [store]);
  const feed = store.feed;
  const counts = [...store.kindCounts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return (
    <Section
      title="Recent events"
      id="events"
      stale={stale && ready}
      aside={<span class="muted small-text">since this page opened at {formatClock(openedAt)}</span>}
    >
      {counts.length > 0 ? (
        <ul class="chips" aria-label="Events by kind">
          {counts.map(([kind, count]) => (
            <li key={kind} class="chip">
              <code>{kind}</code> <strong>{count}</strong>
            </li>
          ))}
        </ul>
      ) : null}
      {feed.length === 0 && !ready ? (
        <Pending status={status} what="the event stream" />
      ) : feed.length === 0 ? (
        <p class="muted">
          {ready ? (
            "No events since this page opened. The events topic is a feed with no history in its snapshot: events appear here as they happen."
          ) : null}
        </p>
      ) : (
        <>
          <ol class="feed">
            {feed.map((entry) => {
              const info = severityInfo(entry.event.severity);
              const [first = "", ...rest] = entry.event.message.split("\n");
              return (
                <li key={`${entry.revision}`} class={`feed-item tone-border-${info.tone}`}>
                  <div class="feed-head">
                    <Badge info={info} small />
                    <code>{entry.event.kind}</code>
                    <span class="muted small-text">
                      {entry.event.source}
                      {entry.event.projectId ? ` · ${entry.event.projectId}` : ""}
                      {entry.event.environment ? ` · ${entry.event.environment}` : ""}
                    </span>
                    <time class="muted small-text" dateTime={entry.time ? new Date(entry.time).toISOString() : undefined}>
                      {entry.time !== null ? `${formatClock(entry.time)} (${formatAge(entry.time, now)} ago)` : ""}
                    </time>
                  </div>
                  <p class="feed-message">{first}</p>
                  {rest.length > 0 ? <pre class="feed-detail">{rest.join("\n")}</pre> : null}
                </li>
              );
            })}
          </ol>
          {store.eventsReceived > feed.length ? (
            <p class="muted small-text">
              Showing the last {feed.length} of {plural(store.eventsReceived, "event")} received.
            </p>
          ) : null}
        </>
      )}
    </Section>
  );
}
