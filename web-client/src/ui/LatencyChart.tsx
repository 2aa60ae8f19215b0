import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type uPlotType from "uplot";
import { health } from "../api/client";
import { HealthStatus } from "../gen/pharos/v1/catalog_pb";
import type { CheckResult } from "../gen/pharos/v1/health_pb";
import { RpcError } from "./common";
import { formatClock, formatMs, ms, tsMs } from "./format";
import { useRpc } from "./hooks";

const RESULTS = 200;

/** uPlot is only needed here: load it (and its CSS) on first use, in its own chunk. */
let uplotModule: Promise<typeof uPlotType> | null = null;
export function loadUplot(): Promise<typeof uPlotType> {
  uplotModule ??= Promise.all([import("uplot"), import("uplot/dist/uPlot.min.css")]).then(([m]) => m.default);
  return uplotModule;
}

export function LatencyChart({ checkIds, refresh }: { checkIds: string[]; refresh: string }) {
  const [selected, setSelected] = useState(checkIds[0] ?? "");
  const checkId = checkIds.includes(selected) ? selected : (checkIds[0] ?? "");
  const results = useRpc(
    (signal) => health.listCheckResults({ checkId, pageSize: RESULTS }, { signal }),
    [checkId, refresh],
  );
  const rows = useMemo(() => (results.data ? [...results.data.results].reverse() : []), [results.data]);
  return (
    <div class="chart-block">
      <label class="inline-field">
        Check{" "}
        <select value={checkId} onChange={(e) => setSelected((e.target as HTMLSelectElement).value)}>
          {checkIds.map((id) => (
            <option key={id} value={id}>
              {id}
            </option>
          ))}
        </select>
      </label>
      <RpcError what={`the results of ${checkId}`} error={results.error} />
      {results.data === undefined ? (
        results.error ? null : <p class="muted">Loading results…</p>
      ) : rows.length === 0 ? (
        <p class="muted">No recorded results for {checkId} yet.</p>
      ) : (
        <>
          <Summary rows={rows} />
          <Plot rows={rows} label={`Total latency of the last ${rows.length} runs of ${checkId}`} />
        </>
      )}
    </div>
  );
}

function Summary({ rows }: { rows: CheckResult[] }) {
  const totals = rows.map((r) => ms(r.total)).filter((v): v is number => v !== null).sort((a, b) => a - b);
  const failed = rows.filter((r) => r.outcome === HealthStatus.UNHEALTHY).length;
  const degraded = rows.filter((r) => r.outcome === HealthStatus.DEGRADED).length;
  const median = totals.length ? totals[Math.floor(totals.length / 2)] ?? null : null;
  const max = totals.length ? totals[totals.length - 1] ?? null : null;
  return (
    <p class="small-text" aria-live="polite">
      {rows.length} runs from {formatClock(tsMs(rows[0]?.time))} to {formatClock(tsMs(rows[rows.length - 1]?.time))}:
      median {formatMs(median)}, max {formatMs(max)},{" "}
      <span class={failed ? "text-bad" : ""}>
        {failed ? <span aria-hidden="true">✕ </span> : null}
        {failed} failed
      </span>
      , {degraded} degraded.
    </p>
  );
}

export function cssVar(name: string, fallback: string): string {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function Plot({ rows, label }: { rows: CheckResult[]; label: string }) {
  const container = useUplot(
    (UPlot, el) => {
      const xs = rows.map((r) => (tsMs(r.time) ?? 0) / 1000);
      const total = rows.map((r) => ms(r.total));
      const failed = rows.map((r) => (r.outcome === HealthStatus.UNHEALTHY ? (ms(r.total) ?? 0) : null));
      const text = cssVar("--text-muted", "#555");
      const grid = cssVar("--border", "#ddd");
      const line = cssVar("--accent", "#2563eb");
      const bad = cssVar("--bad", "#c62828");
      const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      const options: uPlotType.Options = {
        width: Math.max(260, el.clientWidth),
        height: 240,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [axis, { ...axis, label: "ms", values: (_u, ticks) => ticks.map((t) => `${t}`) }],
        series: [
          {},
          {
            label: "Total latency",
            stroke: line,
            width: 1.5,
            points: { show: rows.length < 80 },
            value: (_u, v) => (v == null ? "—" : formatMs(v)),
          },
          {
            label: "Failed runs",
            stroke: bad,
            fill: bad,
            paths: () => null,
            points: { show: true, size: 8, stroke: bad, fill: bad },
            value: (_u, v) => (v == null ? "—" : `✕ ${formatMs(v)}`),
          },
        ],
      };
      return new UPlot(options, [xs, total, failed] as uPlotType.AlignedData, el);
    },
    240,
    [rows],
  );
  return <div class="chart" ref={container} role="img" aria-label={label} />;
}

/**
 * A uPlot chart in a container: built by `make` once uPlot is loaded, again when `deps`
 * or the colour scheme change (colours are read from CSS), resized with the container,
 * destroyed on unmount. Returns the container's ref.
 */
export function useUplot(
  make: (UPlot: typeof uPlotType, el: HTMLDivElement) => uPlotType,
  height: number,
  deps: unknown[],
) {
  const container = useRef<HTMLDivElement>(null);
  const [scheme, setScheme] = useState(0);
  useEffect(() => {
    const media = window.matchMedia("(prefers-color-scheme: dark)");
    const onChange = () => setScheme((n) => n + 1);
    media.addEventListener("change", onChange);
    return () => media.removeEventListener("change", onChange);
  }, []);
  useEffect(() => {
    const el = container.current;
    if (!el) return;
    let chart: uPlotType | null = null;
    let cancelled = false;
    let observer: ResizeObserver | null = null;
    loadUplot().then((UPlot) => {
      if (cancelled) return;
      chart = make(UPlot, el);
      observer = new ResizeObserver(() => {
        if (chart && el.clientWidth > 0) chart.setSize({ width: Math.max(260, el.clientWidth), height });
      });
      observer.observe(el);
    });
    return () => {
      cancelled = true;
      observer?.disconnect();
      chart?.destroy();
    };
  }, [...deps, scheme]);
  return container;
}
