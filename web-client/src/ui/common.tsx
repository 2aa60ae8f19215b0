import { Code, type ConnectError } from "@connectrpc/connect";
import type { ComponentChildren } from "preact";
import type { HealthStatus } from "../gen/pharos/v1/catalog_pb";
import type { ConnectionState, WatchStatus } from "../stream";
import type { WatchHandle } from "./hooks";
import { formatAge, formatClock, statusInfo, type StatusInfo } from "./format";

/** A status as colour, icon and text together. */
export function Badge({ info, small }: { info: StatusInfo; small?: boolean }) {
  return (
    <span class={`badge tone-${info.tone}${small ? " small" : ""}`}>
      <span class="badge-icon" aria-hidden="true">
        {info.icon}
      </span>
      {info.label}
    </span>
  );
}

export function StatusBadge({ status, small }: { status: HealthStatus | undefined; small?: boolean }) {
  return <Badge info={statusInfo(status)} small={small} />;
}

export function connectionInfo(state: ConnectionState, now: number): StatusInfo & { detail: string } {
  const retry = (at: number | null) =>
    at === null ? "trying now" : `next try in ${Math.max(0, Math.ceil((at - now) / 1000))} s`;
  switch (state.kind) {
    case "live":
      return { tone: "ok", icon: "●", label: "Live", rank: 0, detail: "streaming changes from pharosd" };
    case "connecting":
      return { tone: "unknown", icon: "◌", label: "Connecting…", rank: 0, detail: "opening the watch stream" };
    case "reconnecting":
      return {
        tone: "warn",
        icon: "↻",
        label: "Reconnecting",
        rank: 0,
        detail: `attempt ${state.attempt}, ${retry(state.nextRetryAt)} (${state.reason})`,
      };
    case "unreachable":
      return {
        tone: "bad",
        icon: "✕",
        label: "Server unreachable",
        rank: 0,
        detail: `attempt ${state.attempt}, ${retry(state.nextRetryAt)} (${state.reason})`,
      };
    case "unauthorized":
      return {
        tone: "bad",
        icon: "⊘",
        label: state.code === Code.PermissionDenied ? "Access denied" : "Sign-in required",
        rank: 0,
        detail: state.reason,
      };
    case "stopped":
      return { tone: "unknown", icon: "■", label: "Stopped", rank: 0, detail: "" };
  }
}

/**
 * Above a page's content: nothing while live; otherwise says that what is shown is stale
 * (and since when), or that nothing can be shown because the server cannot be reached.
 */
export function StreamNotice({ status, now, onRetry }: { status: WatchStatus; now: number; onRetry: () => void }) {
  const state = status.state;
  if (state.kind === "live" || state.kind === "stopped") return null;
  const info = connectionInfo(state, now);
  const canRetry =
    state.kind === "unauthorized" ||
    ((state.kind === "reconnecting" || state.kind === "unreachable") && state.nextRetryAt !== null);
  if (state.kind === "connecting" && !status.ready) {
    return (
      <div class="notice tone-unknown" role="status">
        <span aria-hidden="true">◌</span> Loading the current state from pharosd…
      </div>
    );
  }
  return (
    <div class={`notice tone-${info.tone}`} role="status">
      <strong>
        <span aria-hidden="true">{info.icon}</span> {info.label}.
      </strong>{" "}
      {status.ready && status.lastUpdate !== null ? (
        <>
          The data below is <strong>stale</strong>: last update at {formatClock(status.lastUpdate)} (
          {formatAge(status.lastUpdate, now)} ago).{" "}
        </>
      ) : state.kind === "unauthorized" ? (
        <>Nothing can be shown until pharosd accepts a token. </>
      ) : (
        <>
          No data: pharosd at {window.location.origin} has not answered, so nothing is shown.{" "}
        </>
      )}
      <span class="notice-detail">{info.detail}</span>{" "}
      {canRetry && state.kind !== "unauthorized" ? (
        <button type="button" class="link-button" onClick={onRetry}>
          Retry now
        </button>
      ) : null}
    </div>
  );
}

export function RpcError({ what, error }: { what: string; error: ConnectError | undefined }) {
  if (!error) return null;
  const code = Code[error.code] ?? String(error.code);
  return (
    <p class="error-note" role="alert">
      <span aria-hidden="true">✕ </span>
      Could not load {what}: {error.rawMessage || "no answer"} <span class="muted">({code})</span>
    </p>
  );
}

export function Section({
  title,
  id,
  children,
  aside,
  stale,
}: {
  title: string;
  id: string;
  children: ComponentChildren;
  aside?: ComponentChildren;
  stale?: boolean;
}) {
  return (
    <section class={`panel${stale ? " stale" : ""}`} aria-labelledby={id}>
      <div class="panel-head">
        <h2 id={id}>
          {title}
          {stale ? (
            <span class="stale-tag" title="Not live: this may be out of date">
              stale
            </span>
          ) : null}
        </h2>
        {aside ? <div class="panel-aside">{aside}</div> : null}
      </div>
      {children}
    </section>
  );
}

/** What a section shows before the stream's first snapshot arrived. */
export function Pending({ status, what }: { status: WatchStatus; what: string }) {
  const kind = status.state.kind;
  if (kind === "connecting" || kind === "live") return <p class="muted">Waiting for {what}…</p>;
  return (
    <p class="muted">
      <span aria-hidden="true">✕ </span>Nothing to show: {what} has not arrived (see above).
    </p>
  );
}

/**
 * The stream's state as data attributes on a hidden element, for end-to-end tests and
 * debugging: connection state, last revision, and the revisions applied since the
 * snapshot (the last 512), so a test can check them against the server's journal.
 */
export function StreamState({ watch }: { watch: WatchHandle }) {
  const { status, watcher } = watch;
  const applied = watcher.appliedRevisions();
  return (
    <div
      id="stream-state"
      hidden
      data-state={status.state.kind}
      data-ready={status.ready ? "true" : "false"}
      data-last-revision={status.lastRevision.toString()}
      data-last-update={status.lastUpdate === null ? "" : String(status.lastUpdate)}
      data-snapshot-revision={applied.snapshot.toString()}
      data-applied-total={String(applied.total)}
      data-applied={applied.revisions.join(" ")}
      data-duplicates-dropped={String(status.duplicatesDropped)}
      data-resyncs={String(status.resyncs)}
    />
  );
}
