// A container's log: ContainerService.TailLogs (the last N lines, then, with follow, new
// ones as they are written) into a bounded buffer (src/logs/buffer.ts), shown through a
// virtualised list: only the rows in view (and a few either side) are in the DOM, so
// 100,000 lines scroll smoothly. Pause freezes the view while lines keep arriving; the
// filter keeps the lines containing a substring. The container's state comes from the
// containers topic of the page's Watch stream.

import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "preact/hooks";
import { containers as containerClient } from "../api/client";
import { LogStream } from "../gen/pharos/v1/containers_pb";
import { WatchTopic } from "../gen/pharos/v1/watch_pb";
import { FilteredView, LOG_BUFFER_LIMIT, LogBuffer, visibleRange } from "../logs/buffer";
import { Badge, Pending, Section } from "./common";
import { stateLabel } from "./Containers";
import { formatClock, tsMs } from "./format";
import { useAuth, type WatchHandle } from "./hooks";

// The most lines TailLogs starts with (the server refuses more); 0 asks for the whole log.
const MAX_TAIL = 10_000;

const ROW_HEIGHT = 20;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;
// Errors a followed log outlives: the server restarting or out of reach.
const RETRYABLE = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.Canceled]);
const VIEWPORT_ROWS = 30;

export function LogsPage({ watch, container }: { watch: WatchHandle; container: string }) {
  const { status, watcher } = watch;
  const store = watcher.store;
  const auth = useAuth();
  const [tail, setTail] = useState(1000);
  const [tailInput, setTailInput] = useState("1000");
  const [follow, setFollow] = useState(true);
  const [paused, setPaused] = useState(false);
  const [filter, setFilter] = useState("");
  const [streamState, setStreamState] = useState<{ kind: "opening" | "open" | "reconnecting" | "ended"; error?: ConnectError }>({
    kind: "opening",
  });
  const [, bump] = useReducer((n: number) => n + 1, 0);
  const buffer = useMemo(() => new LogBuffer(LOG_BUFFER_LIMIT), [container, tail, follow, auth.epoch]);
  const view = useMemo(() => new FilteredView(buffer), [buffer]);

  const found = store
    .list(WatchTopic.CONTAINERS, "container/")
    .map((c) => (c.object.case === "container" ? c.object.value : null))
    .find((c) => c && (c.id === container || c.name === container));

  // One TailLogs stream, reopened when the container, tail N or follow change. A
  // followed stream that breaks (pharosd restarting, the network) is reopened after the
  // last line received (its cursor), so nothing repeats and nothing is lost.
  useEffect(() => {
    const abort = new AbortController();
    let frame: number | null = null;
    const schedule = () => {
      if (frame === null) {
        frame = requestAnimationFrame(() => {
          frame = null;
          bump(undefined);
        });
      }
    };
    setStreamState({ kind: "opening" });
    (async () => {
      let cursor = "";
      let backoff = FIRST_BACKOFF_MS;
      for (;;) {
        try {
          const request = cursor ? { container, follow, afterCursor: cursor } : { container, tail, follow };
          const stream = containerClient.tailLogs(request, { signal: abort.signal });
          let opened = false;
          for await (const response of stream) {
            if (!opened) {
              // The server's first message (it may carry no lines) says the stream is open.
              opened = true;
              setStreamState({ kind: "open" });
              backoff = FIRST_BACKOFF_MS;
            }
            buffer.push(
              response.lines.map((l) => ({
                text: l.text,
                stderr: l.stream === LogStream.STDERR,
                time: tsMs(l.time),
              })),
            );
            for (const line of response.lines) if (line.cursor) cursor = line.cursor;
            schedule();
          }
          if (!abort.signal.aborted) setStreamState({ kind: "ended" });
          return;
        } catch (err) {
          if (abort.signal.aborted) return;
          const error = ConnectError.from(err);
          if (!follow || !RETRYABLE.has(error.code)) {
            setStreamState({ kind: "ended", error });
            return;
          }
          setStreamState({ kind: "reconnecting", error });
          await new Promise((resolve) => setTimeout(resolve, backoff));
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
          if (abort.signal.aborted) return;
        }
      }
    })();
    return () => {
      abort.abort();
      if (frame !== null) cancelAnimationFrame(frame);
    };
  }, [buffer]);

  // While paused, the view keeps what it showed: its line count is frozen.
  const liveCount = view.update(filter);
  const frozen = useRef<number | null>(null);
  if (paused && frozen.current === null) frozen.current = liveCount;
  if (!paused) frozen.current = null;
  const shown = paused ? Math.min(frozen.current ?? liveCount, liveCount) : liveCount;

  return (
    <>
      <p>
        {found?.projectId ? <a href={`#/projects/${encodeURIComponent(found.projectId)}`}>← {found.projectId}</a> : <a href="#/projects">← Projects</a>}
      </p>
      <div class="title-row">
        <h1 class="page-title">
          Logs: <code>{found?.name ?? container}</code>
        </h1>
        {found ? <Badge info={stateLabel(found.state)} /> : null}
      </div>
      {!status.ready ? <Pending status={status} what="the container" /> : null}
      <Section
        title="Log"
        id="log"
        aside={
          <span class="muted small-text" data-testid="log-counts">
            {shown.toLocaleString()} shown · {buffer.length.toLocaleString()} kept (at most {LOG_BUFFER_LIMIT.toLocaleString()})
            {buffer.dropped ? ` · ${buffer.dropped.toLocaleString()} older dropped` : ""}
          </span>
        }
      >
        <form
          class="log-controls"
          onSubmit={(e) => {
            e.preventDefault();
            const n = Number(tailInput);
            if (Number.isInteger(n) && n >= 0 && n <= MAX_TAIL) setTail(n);
          }}
        >
          <label>
            Filter{" "}
            <input
              id="log-filter"
              type="search"
              value={filter}
              placeholder="substring"
              onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
            />
          </label>
          <label>
            Last{" "}
            <input
              id="log-tail"
              type="number"
              min={0}
              max={MAX_TAIL}
              value={tailInput}
              onInput={(e) => setTailInput((e.target as HTMLInputElement).value)}
            />{" "}
            lines
          </label>
          <button type="submit" class="link-button">
            Reload
          </button>
          <label>
            <input type="checkbox" id="log-follow" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} />{" "}
            Follow
          </label>
          <button type="button" id="log-pause" aria-pressed={paused} onClick={() => setPaused(!paused)}>
            {paused ? "Resume" : "Pause"}
          </button>
          {paused && liveCount > shown ? (
            <span class="muted small-text">{(liveCount - shown).toLocaleString()} new lines while paused</span>
          ) : null}
        </form>
        <p class="muted small-text" aria-live="polite" data-log-stream={streamState.kind}>
          {streamState.kind === "opening"
            ? "Opening the log…"
            : streamState.kind === "reconnecting"
              ? `The log stream broke (${streamState.error?.rawMessage ?? "no reason given"}); reconnecting…`
              : streamState.error
              ? null
              : streamState.kind === "ended"
                ? "The log ended."
                : follow
                  ? "Following the log."
                  : `The last ${tail} lines.`}
        </p>
        {streamState.error && streamState.kind === "ended" ? (
          <p class="error-note" role="alert">
            <span aria-hidden="true">✕ </span>
            {streamState.error.rawMessage} <span class="muted">({Code[streamState.error.code]})</span>
          </p>
        ) : null}
        <LogList view={view} count={shown} stickToBottom={follow && !paused} />
      </Section>
    </>
  );
}

/** The virtualised list: a scroller of the full height, with only the visible rows. */
function LogList({ view, count, stickToBottom }: { view: FilteredView; count: number; stickToBottom: boolean }) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const height = VIEWPORT_ROWS * ROW_HEIGHT;

  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stickToBottom) {
      el.scrollTop = el.scrollHeight;
      setScrollTop(el.scrollTop);
    }
  }, [count, stickToBottom]);

  const { start, end } = visibleRange(scrollTop, height, ROW_HEIGHT, count);
  const rows = [];
  for (let n = start; n < end; n++) {
    const line = view.line(n);
    rows.push(
      <div
        key={line.seq}
        class={`log-row${line.stderr ? " stderr" : ""}`}
        role="listitem"
        style={{ transform: `translateY(${n * ROW_HEIGHT}px)` }}
      >
        <span class="log-time">{formatClock(line.time)}</span> {line.text}
      </div>,
    );
  }
  return (
    <div
      ref={scroller}
      class="log-scroller"
      tabIndex={0}
      aria-label="Log lines"
      style={{ height: `${height}px` }}
      onScroll={(e) => setScrollTop((e.target as HTMLDivElement).scrollTop)}
    >
      <div class="log-spacer" role="list" style={{ height: `${count * ROW_HEIGHT}px` }}>
        {rows}
      </div>
    </div>
  );
}
