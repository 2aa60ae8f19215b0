// The System page's throughput, latency and capacity panels. The figures come from
// MetricsService.GetSystemMetrics and GetCapacity; the page's Watch stream carries the
// metrics topic for the series behind them, and each new point there (pharosd records
// its own figures every 5 s, capacity every 10 s) refetches the panel: no timer polls.
// The KPI panel (GetAggregates: the catalog's SQL KPIs and the alerts firing) is
// refetched with the capacity sample, so its figures are at most 10 s behind a KPI run.

import type uPlotType from "uplot";
import { metrics } from "../api/client";
import type {
  AggregateGroup,
  GetCapacityResponse,
  GetSystemMetricsResponse,
  Point,
} from "../gen/pharos/v1/metrics_pb";
import type { MetricSelector, WatchStore } from "../stream";
import { RpcError, Section } from "./common";
import { formatAge, formatClock, tsMs } from "./format";
import { useRpc } from "./hooks";
import { cssVar, useUplot } from "./LatencyChart";

/** The series whose new points refresh the panels (see SystemPage's Watch spec). */
export const THROUGHPUT_SERIES: MetricSelector = { name: "pharos_rpc_unary_duration_seconds:p95", labels: { target: "pharosd" } };
export const CAPACITY_SERIES: MetricSelector = { name: "pharos_host_memory_available_bytes" };

/** The time of the newest point the stream brought for `selector`, as a refetch key. */
function newestPoint(store: WatchStore, selector: MetricSelector): string {
  let newest = 0;
  for (const s of store.metricSeries(selector.name)) newest = Math.max(newest, s.points[s.points.length - 1]?.ms ?? 0);
  return String(newest);
}

/** The span the charts show, in seconds: GetSystemMetrics' default window. */
const WINDOW_S = 15 * 60;
const CHART_HEIGHT = 180;

function bytes(n: bigint | number): string {
  const v = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(x >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

function seconds(v: number | undefined): string {
  if (v === undefined) return "—";
  return v < 1 ? `${(v * 1000).toFixed(v < 0.01 ? 2 : 1)} ms` : `${v.toFixed(2)} s`;
}

export function ThroughputPanel({ store, ready, stale }: { store: WatchStore; ready: boolean; stale: boolean }) {
  const refresh = newestPoint(store, THROUGHPUT_SERIES);
  const figures = useRpc((signal) => metrics.getSystemMetrics({}, { signal }), [ready ? refresh : "pending"]);
  const f = figures.data;
  return (
    <Section title="API throughput and latency (last 15 minutes)" id="throughput" stale={stale || figures.error !== undefined}>
      <RpcError what="pharosd's figures" error={figures.error} />
      {f === undefined ? (
        figures.error ? null : <p class="muted">Loading…</p>
      ) : f.requestsPerSecond === undefined ? (
        <p class="muted">pharosd records its own figures every 5 seconds; the first rates appear after two records.</p>
      ) : (
        <>
          <dl class="stats" data-testid="throughput-figures">
            <Figure label="Calls/s" value={f.requestsPerSecond.toFixed(1)} />
            <Figure label="Errors/s" value={(f.errorsPerSecond ?? 0).toFixed(2)} />
            <Figure label="p50" value={seconds(f.latencyP50Seconds)} />
            <Figure label="p95" value={seconds(f.latencyP95Seconds)} />
            <Figure label="p99" value={seconds(f.latencyP99Seconds)} />
          </dl>
          <div class="chart-pair">
            <LineChart
              label="Calls per second, all methods"
              unit="calls/s"
              lines={[
                { label: "calls/s", points: f.throughput, color: "--accent" },
                { label: "errors/s", points: f.errors, color: "--bad" },
              ]}
            />
            <LineChart
              label="Unary call latency percentiles"
              unit="ms"
              scale={1000}
              lines={[
                { label: "p50", points: f.latencyP50, color: "--ok" },
                { label: "p95", points: f.latencyP95, color: "--accent" },
                { label: "p99", points: f.latencyP99, color: "--bad" },
              ]}
            />
          </div>
          <Updated response={f} />
        </>
      )}
    </Section>
  );
}

function Updated({ response }: { response: GetSystemMetricsResponse }) {
  const last = response.throughput[response.throughput.length - 1];
  return last ? <p class="muted small-text">Last point {formatClock(Number(last.timeUnixMs))}.</p> : null;
}

function Figure({ label, value }: { label: string; value: string }) {
  return (
    <div class="stat">
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

interface Line {
  label: string;
  points: Point[];
  /** A CSS custom property naming the colour. */
  color: string;
}

/** Several series over time in one uPlot chart (points aligned on the first's times). */
function LineChart({ label, unit, lines, scale = 1 }: { label: string; unit: string; lines: Line[]; scale?: number }) {
  const container = useUplot(
    (UPlot, el) => {
      const times = [...new Set(lines.flatMap((l) => l.points.map((p) => Number(p.timeUnixMs))))].sort((a, b) => a - b);
      const windowEnd = Math.max(Date.now(), times[times.length - 1] ?? 0);
      const data = [
        times.map((t) => t / 1000),
        ...lines.map((l) => {
          const at = new Map(l.points.map((p) => [Number(p.timeUnixMs), p.value * scale]));
          return times.map((t) => at.get(t) ?? null);
        }),
      ];
      const text = cssVar("--text-muted", "#555");
      const grid = cssVar("--border", "#ddd");
      const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      return new UPlot(
        {
          width: Math.max(260, el.clientWidth),
          height: CHART_HEIGHT,
          // The whole window, however few points there are yet.
          scales: {
            x: { time: true, range: () => [windowEnd / 1000 - WINDOW_S, windowEnd / 1000] },
            y: { range: (_u, _min, max) => [0, Math.max(scale === 1 ? 1 : 0.1, max * 1.1)] },
          },
          axes: [axis, { ...axis, label: unit }],
          series: [{}, ...lines.map((l) => ({ label: l.label, stroke: cssVar(l.color, "#2563eb"), width: 1.5, spanGaps: true }))],
        },
        data as uPlotType.AlignedData,
        el,
      );
    },
    CHART_HEIGHT,
    // The points arrays come from one RPC answer and keep their identity until the next:
    // the chart is rebuilt when the data changes, not on every render of the page.
    [...lines.map((l) => l.points), scale, unit],
  );
  return <div class="chart" ref={container} role="img" aria-label={label} />;
}

function Gauge({ label, used, total, detail }: { label: string; used: number; total: number; detail: string }) {
  const ratio = total > 0 ? used / total : 0;
  const tone = ratio >= 0.9 ? "bad" : ratio >= 0.75 ? "warn" : "ok";
  return (
    <div class={`gauge tone-${tone}`}>
      <div class="gauge-head">
        <span>{label}</span>
        <span class="muted small-text">{detail}</span>
      </div>
      <meter min={0} max={1} low={0.75} high={0.9} optimum={0} value={ratio} aria-label={`${label}: ${(ratio * 100).toFixed(0)}% used`} />
    </div>
  );
}

export function CapacityPanel({ store, ready, stale }: { store: WatchStore; ready: boolean; stale: boolean }) {
  const refresh = newestPoint(store, CAPACITY_SERIES);
  const capacity = useRpc((signal) => metrics.getCapacity({}, { signal }), [ready ? refresh : "pending"]);
  const c = capacity.data;
  return (
    <Section title="Capacity" id="capacity" stale={stale || capacity.error !== undefined}>
      <RpcError what="the capacity sample" error={capacity.error} />
      {c === undefined ? capacity.error ? null : <p class="muted">Loading…</p> : <CapacityBody c={c} />}
    </Section>
  );
}

function CapacityBody({ c }: { c: GetCapacityResponse }) {
  const host = c.host;
  return (
    <div class="capacity" data-testid="capacity">
      {host ? (
        <>
          <Gauge
            label={`CPU (${host.cpuCores} cores)`}
            used={host.cpuBusyRatio ?? 0}
            total={1}
            detail={`${host.cpuBusyRatio === undefined ? "—" : `${(host.cpuBusyRatio * 100).toFixed(0)}% busy`} · load ${host.load1.toFixed(2)}`}
          />
          <Gauge
            label="Memory"
            used={Number(host.memoryTotalBytes - host.memoryAvailableBytes)}
            total={Number(host.memoryTotalBytes)}
            detail={`${bytes(host.memoryTotalBytes - host.memoryAvailableBytes)} of ${bytes(host.memoryTotalBytes)}`}
          />
        </>
      ) : (
        <p class="error-note">Host figures: {c.hostError}</p>
      )}
      {c.disks.map((d) =>
        d.error ? (
          <p key={d.path} class="error-note">
            Disk <code>{d.path}</code>: {d.error}
          </p>
        ) : (
          <Gauge
            key={d.path}
            label={`Disk ${d.path}`}
            used={Number(d.usedBytes)}
            total={Number(d.totalBytes)}
            detail={`${bytes(d.usedBytes)} of ${bytes(d.totalBytes)}, ${bytes(d.availableBytes)} free`}
          />
        ),
      )}
      {c.database ? (
        <p class="small-text">
          pharosd's database ({c.database.backend}): {c.database.error ? <span class="text-bad">{c.database.error}</span> : bytes(c.database.sizeBytes)}
        </p>
      ) : null}
      {c.postgres.map((pg) => (
        <div key={pg.checkId} class="pg-capacity">
          {pg.error ? (
            <p class="error-note">
              PostgreSQL of <code>{pg.checkId}</code>: {pg.error}
            </p>
          ) : (
            <>
              <Gauge
                label={`PostgreSQL ${pg.checkId} connections`}
                used={pg.connectionsUsed}
                total={pg.connectionsMax}
                detail={`${pg.connectionsUsed} of ${pg.connectionsMax} · database ${bytes(pg.sizeBytes)}`}
              />
              {pg.largestTables.length ? (
                <p class="small-text muted">
                  Largest tables: {pg.largestTables.map((t) => `${t.name} ${bytes(t.totalBytes)}`).join(", ")}
                </p>
              ) : null}
            </>
          )}
        </div>
      ))}
      {c.services.length ? (
        <table class="small-table">
          <caption>Container memory per service</caption>
          <thead>
            <tr>
              <th scope="col">Deployment</th>
              <th scope="col">Service</th>
              <th scope="col">Containers</th>
              <th scope="col">Memory</th>
            </tr>
          </thead>
          <tbody>
            {c.services.map((s) => (
              <tr key={`${s.deploymentId}/${s.service}`}>
                <td>{s.deploymentId}</td>
                <td>{s.service || "—"}</td>
                <td>{s.containers}</td>
                <td>
                  {bytes(s.memoryUsedBytes)}
                  {s.memoryLimitBytes > 0n ? ` of ${bytes(s.memoryLimitBytes)}` : ""}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <p class="muted small-text">Sampled {formatClock(tsMs(c.sampleTime))}.</p>
    </div>
  );
}

/** A KPI value's labels, without the `kpi` label every one of them carries. */
function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .filter(([k]) => k !== "kpi")
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

function number(v: number): string {
  return Number.isInteger(v) ? v.toLocaleString() : v.toLocaleString(undefined, { maximumFractionDigits: 3 });
}

/** The catalog's SQL KPIs (seed 002's tenants, devices, alerts...) and the firing alerts. */
export function KpiPanel({ store, ready, stale, now }: { store: WatchStore; ready: boolean; stale: boolean; now: number }) {
  const refresh = newestPoint(store, CAPACITY_SERIES);
  const aggregates = useRpc((signal) => metrics.getAggregates({}, { signal }), [ready ? refresh : "pending"]);
  const groups = aggregates.data?.groups ?? [];
  const kpis = groups.filter((g) => g.name.startsWith("kpi:"));
  const firing = groups.find((g) => g.name === "alerts")?.values.find((v) => Object.keys(v.labels).length === 0)?.value;
  return (
    <Section title="KPIs and alerts" id="kpis" stale={stale || aggregates.error !== undefined}>
      <RpcError what="the platform aggregates" error={aggregates.error} />
      {aggregates.data === undefined ? (
        aggregates.error ? null : <p class="muted">Loading…</p>
      ) : (
        <>
          <p data-testid="alerts-firing">
            {firing === undefined ? "—" : firing === 0 ? "No alert is firing." : `${firing} alert${firing === 1 ? " is" : "s are"} firing.`}
          </p>
          {kpis.length === 0 ? (
            <p class="muted">No SQL KPIs in the catalog (see the catalog's <code>kpis:</code> section).</p>
          ) : (
            <table class="grid-table" data-testid="kpis">
              <caption class="sr-only">SQL KPIs</caption>
              <thead>
                <tr>
                  <th scope="col">KPI</th>
                  <th scope="col">Value</th>
                  <th scope="col">Labels</th>
                  <th scope="col" class="num">Figure</th>
                  <th scope="col">Read</th>
                </tr>
              </thead>
              <tbody>{kpis.flatMap((g) => kpiRows(g, now))}</tbody>
            </table>
          )}
        </>
      )}
    </Section>
  );
}

function kpiRows(g: AggregateGroup, now: number) {
  const name = g.name.slice("kpi:".length);
  const read = g.updated ? `${formatAge(tsMs(g.updated) ?? now, now)} ago` : "never";
  const problem = g.error || (g.values.length === 0 ? g.notes.join("; ") : "");
  if (g.values.length === 0) {
    return [
      <tr key={g.name}>
        <th scope="row">{name}</th>
        <td colSpan={3} class={g.error ? "text-bad" : "muted"}>{problem || "no rows"}</td>
        <td>{read}</td>
      </tr>,
    ];
  }
  return g.values.map((v, i) => (
    <tr key={`${g.name}/${i}`}>
      <th scope="row">{name}</th>
      <td>{v.name}</td>
      <td class="muted">{labelText(v.labels)}</td>
      <td class="num">{number(v.value)}</td>
      <td>
        {read}
        {g.error ? <span class="text-bad"> (last run failed: {g.error})</span> : null}
      </td>
    </tr>
  ));
}
