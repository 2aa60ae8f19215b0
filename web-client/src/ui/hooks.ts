// Preact hooks binding the framework-free stream module and the RPC clients to views.

import { ConnectError } from "@connectrpc/connect";
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "preact/hooks";
import { currentAuthProblem, onAuthChange, token } from "../api/client";
import { Watcher, type WatchSource, type WatchSpec, type WatchStatus } from "../stream";
import { parseRoute, type Route } from "./route";

export type { Route } from "./route";

/** The current time, refreshed every `intervalMs`. */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export interface WatchHandle {
  watcher: Watcher;
  status: WatchStatus;
  /** The store's version: changes whenever the store did. */
  version: number;
}

/**
 * One Watch stream for the page: opened when the spec (by value) changes, closed when
 * the page goes away. Re-renders at most once per animation frame, however many
 * changes arrive.
 */
/** A stream opened before the first render (see openEarly), waiting for its page. */
let early: { source: WatchSource; key: string; watcher: Watcher } | null = null;

/**
 * Opens the stream of the page the app starts on while the app's first render is still
 * ahead; useWatch takes it over when its spec is the same.
 */
export function openEarly(source: WatchSource, spec: WatchSpec): void {
  const watcher = new Watcher(source, spec);
  early = { source, key: JSON.stringify(spec), watcher };
  watcher.start();
}

export function useWatch(source: WatchSource, spec: WatchSpec): WatchHandle {
  const key = JSON.stringify(spec);
  const watcher = useMemo(() => {
    const opened = early;
    early = null;
    if (opened && opened.source === source && opened.key === key) return opened.watcher;
    opened?.watcher.stop();
    return new Watcher(source, spec);
  }, [source, key]);
  const [, bump] = useReducer((n: number) => n + 1, 0);
  // A layout effect runs right after the first render is committed: the stream opens
  // without waiting for the first paint (a plain effect waits a frame or more).
  useLayoutEffect(() => {
    let frame: number | null = null;
    const unsubscribe = watcher.subscribe(() => {
      if (watcher.status.ready && performance.getEntriesByName(SNAPSHOT_MARK).length === 0) {
        performance.mark(SNAPSHOT_MARK);
        // The first snapshot is drawn at once, not a frame later.
        if (frame !== null) cancelAnimationFrame(frame);
        frame = null;
        bump(undefined);
        return;
      }
      if (frame !== null) return;
      frame = requestAnimationFrame(() => {
        frame = null;
        bump(undefined);
      });
    });
    watcher.start();
    // An early stream may have moved on before this page subscribed.
    bump(undefined);
    // A token entered in the sign-in form: try again at once.
    const offAuth = onAuthChange(() => watcher.retryNow());
    return () => {
      unsubscribe();
      offAuth();
      if (frame !== null) cancelAnimationFrame(frame);
      watcher.stop();
    };
  }, [watcher]);
  return { watcher, status: watcher.status, version: watcher.store.version };
}

/** Re-renders when the token changes or a call is refused; returns a counter for deps. */
export function useAuth(): { epoch: number; problem: ReturnType<typeof currentAuthProblem>; signedIn: boolean } {
  const [epoch, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => onAuthChange(() => bump(undefined)), []);
  return { epoch, problem: currentAuthProblem(), signedIn: token() !== null };
}

export interface RpcState<T> {
  data: T | undefined;
  error: ConnectError | undefined;
  loading: boolean;
  /** When data last arrived (ms since the epoch). */
  at: number | null;
  reload: () => void;
}

/**
 * Runs `call` when `deps` change (and on reload()). Keeps the previous data while a new
 * call is under way and after it fails, so a failure marks the data stale rather than
 * blanking the page.
 */
export function useRpc<T>(call: (signal: AbortSignal) => Promise<T>, deps: unknown[]): RpcState<T> {
  const [state, setState] = useState<Omit<RpcState<T>, "reload">>({
    data: undefined,
    error: undefined,
    loading: true,
    at: null,
  });
  const [tick, reload] = useReducer((n: number) => n + 1, 0);
  const callRef = useRef(call);
  callRef.current = call;
  useEffect(() => {
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    callRef.current(abort.signal).then(
      (data) => {
        if (!abort.signal.aborted) setState({ data, error: undefined, loading: false, at: Date.now() });
      },
      (err: unknown) => {
        if (!abort.signal.aborted) {
          setState((s) => ({ ...s, error: ConnectError.from(err), loading: false }));
        }
      },
    );
    return () => abort.abort();
  }, [...deps, tick]);
  return { ...state, reload: () => reload(undefined) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

/** The mark the budgets bench reads: the first paint with the stream's data on screen. */
export const FIRST_LIVE_MARK = "pharos:first-live-data";
/** When the first snapshot was complete in the store (before it was rendered). */
export const SNAPSHOT_MARK = "pharos:snapshot-complete";

/**
 * Sets FIRST_LIVE_MARK (Performance API) once per page load, at the start of the frame after
 * the one that painted the stream's snapshot.
 */
export function useFirstLiveMark(ready: boolean): void {
  useLayoutEffect(() => {
    if (!ready || performance.getEntriesByName(FIRST_LIVE_MARK).length > 0) return;
    // The render with the data was just committed to the DOM. The next animation frame
    // callback runs before that frame is painted; the one after it, once it was.
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (performance.getEntriesByName(FIRST_LIVE_MARK).length === 0) performance.mark(FIRST_LIVE_MARK);
    }));
  }, [ready]);
}
