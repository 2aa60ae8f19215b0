// Presentation helpers: statuses as colour + icon + text, times and durations.

import { durationMs, timestampMs, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import { HealthStatus, PortType } from "../gen/pharos/v1/catalog_pb";
import { EventSeverity } from "../gen/pharos/v1/watch_pb";

export interface StatusInfo {
  /** CSS modifier: ok, warn, bad, unknown. */
  tone: "ok" | "warn" | "bad" | "unknown";
  icon: string;
  label: string;
  /** Sort weight, worst first. */
  rank: number;
}

export function statusInfo(status: HealthStatus | undefined): StatusInfo {
  switch (status) {
    case HealthStatus.HEALTHY:
      return { tone: "ok", icon: "✓", label: "Healthy", rank: 3 };
    case HealthStatus.DEGRADED:
      return { tone: "warn", icon: "▲", label: "Degraded", rank: 1 };
    case HealthStatus.UNHEALTHY:
      return { tone: "bad", icon: "✕", label: "Unhealthy", rank: 0 };
    default:
      return { tone: "unknown", icon: "?", label: "Unknown", rank: 2 };
  }
}

/**
 * The worst known status, as pharosd aggregates deployments into projects and
 * environments: unhealthy > degraded > healthy, unknown only when nothing is known.
 */
export function worstStatus(statuses: Iterable<HealthStatus>): HealthStatus {
  let worst: HealthStatus = HealthStatus.UNSPECIFIED;
  for (const status of statuses) {
    if (status === HealthStatus.UNSPECIFIED) continue;
    if (worst === HealthStatus.UNSPECIFIED || statusInfo(status).rank < statusInfo(worst).rank) worst = status;
  }
  return worst;
}

export function severityInfo(severity: EventSeverity): StatusInfo {
  switch (severity) {
    case EventSeverity.INFO:
      return { tone: "ok", icon: "i", label: "Info", rank: 3 };
    case EventSeverity.WARNING:
      return { tone: "warn", icon: "▲", label: "Warning", rank: 2 };
    case EventSeverity.ERROR:
      return { tone: "bad", icon: "✕", label: "Error", rank: 1 };
    case EventSeverity.CRITICAL:
      return { tone: "bad", icon: "‼", label: "Critical", rank: 0 };
    default:
      return { tone: "unknown", icon: "?", label: "Unspecified", rank: 4 };
  }
}

export function portTypeLabel(type: PortType): string {
  switch (type) {
    case PortType.HTTP:
      return "HTTP";
    case PortType.HTTPS:
      return "HTTPS";
    case PortType.GRPC:
      return "gRPC";
    case PortType.METRICS:
      return "metrics";
    case PortType.DATABASE:
      return "database";
    case PortType.TCP:
      return "TCP";
    default:
      return "unspecified";
  }
}

export function ms(duration: Duration | undefined): number | null {
  return duration ? durationMs(duration) : null;
}

export function formatMs(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "—";
  if (value === 0) return "0 ms";
  if (value < 1) return `${value.toFixed(2)} ms`;
  if (value < 10) return `${value.toFixed(1)} ms`;
  if (value < 1000 || (value < 10_000 && value % 1000 !== 0)) return `${Math.round(value)} ms`;
  const seconds = value / 1000;
  return Number.isInteger(seconds) ? `${seconds} s` : `${seconds.toFixed(1)} s`;
}

export function formatDuration(duration: Duration | undefined): string {
  return formatMs(ms(duration));
}

export function tsMs(timestamp: Timestamp | undefined): number | null {
  return timestamp ? timestampMs(timestamp) : null;
}

// One formatter for every clock time: toLocaleTimeString builds a new one per call, which
// costs a thousand tiles a quarter of a second.
const clock = new Intl.DateTimeFormat(undefined, {
  hour: "numeric",
  minute: "2-digit",
  second: "2-digit",
  hour12: false,
});

export function formatClock(at: number | null): string {
  if (at === null) return "—";
  return clock.format(at);
}

export function formatDateTime(at: number | null): string {
  if (at === null) return "—";
  const date = new Date(at);
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return formatClock(at);
  return date.toLocaleString(undefined, { hour12: false });
}

/** "4 s", "3 min", "2 h", "5 d". */
export function formatAge(fromMs: number, nowMs: number): string {
  const seconds = Math.max(0, Math.round((nowMs - fromMs) / 1000));
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 36) return `${hours} h`;
  return `${Math.round(hours / 24)} d`;
}

export function formatPercent(value: number | undefined): string {
  if (value === undefined) return "—";
  if (value >= 99.995 && value < 100) return "99.99 %";
  return `${value.toFixed(value >= 99 ? 2 : 1)} %`;
}

export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
