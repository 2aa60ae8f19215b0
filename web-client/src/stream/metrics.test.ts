import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { MetricsBatchSchema } from "../gen/pharos/v1/metrics_pb";
import { METRIC_WINDOW_MS, seriesKey, WatchStore } from "./store";

function batch(name: string, labels: Record<string, string>, points: [number, number][]) {
  return create(MetricsBatchSchema, {
    series: [{ name, labels, points: points.map(([ms, value]) => ({ timeUnixMs: BigInt(ms), value })) }],
  });
}

describe("live metric series", () => {
  it("appends each batch's new points per series and keeps 15 minutes", () => {
    const store = new WatchStore();
    const v0 = store.version;
    store.applyMetrics(batch("cpu", { host: "a" }, [[1000, 0.1], [2000, 0.2]]));
    store.applyMetrics(batch("cpu", { host: "b" }, [[1000, 0.5]]));
    store.applyMetrics(batch("cpu", { host: "a" }, [[3000, 0.3]]));
    expect(store.version).toBe(v0 + 3);
    const [a, b] = store.metricSeries("cpu");
    expect(a?.labels).toEqual({ host: "a" });
    expect(a?.points.map((p) => p.value)).toEqual([0.1, 0.2, 0.3]);
    expect(b?.points).toEqual([{ ms: 1000, value: 0.5 }]);
    // A point 15 minutes and more after the first pushes the old ones out.
    store.applyMetrics(batch("cpu", { host: "a" }, [[3000 + METRIC_WINDOW_MS, 0.9]]));
    expect(store.metricSeries("cpu")[0]?.points.map((p) => p.ms)).toEqual([3000, 3000 + METRIC_WINDOW_MS]);
    expect(store.metricSeries("mem")).toEqual([]);
  });

  it("keys series by name and sorted labels", () => {
    expect(seriesKey("x", { b: "2", a: "1" })).toBe("x{a=1,b=2}");
    expect(seriesKey("x", {})).toBe("x{}");
  });
});
