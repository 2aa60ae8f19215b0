// The one grpc-web transport of the app, the bearer-token interceptor and the clients.
//
// The page is served by pharosd itself (or by Vite's dev server, which proxies the RPC
// paths to pharosd), so every call goes to the page's own origin: no CORS.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ActionService } from "../gen/pharos/v1/actions_pb";
import { CatalogService } from "../gen/pharos/v1/catalog_pb";
import { ContainerService } from "../gen/pharos/v1/containers_pb";
import { HealthService } from "../gen/pharos/v1/health_pb";
import { MetricsService } from "../gen/pharos/v1/metrics_pb";
import { SessionService } from "../gen/pharos/v1/session_pb";
import { WatchService } from "../gen/pharos/v1/watch_pb";
import type { WatchSource } from "../stream";

const TOKEN_KEY = "pharos.token";

type AuthListener = () => void;
const authListeners = new Set<AuthListener>();
let authProblem: { code: Code; message: string } | null = null;

/** The bearer token of this tab's session, if one was entered. */
export function token(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** Stores (or, with null, forgets) the token and tells every listener. */
export function setToken(value: string | null): void {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled: the token lasts until the page is reloaded.
  }
  memoryToken = value;
  authProblem = null;
  for (const listener of [...authListeners]) listener();
}

let memoryToken: string | null = null;

/** The last UNAUTHENTICATED / PERMISSION_DENIED answer, until a token is entered. */
export function currentAuthProblem(): { code: Code; message: string } | null {
  return authProblem;
}

/** Calls `listener` when the token changes or a call is refused. */
export function onAuthChange(listener: AuthListener): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

/** Records that the server refused a call, so the header offers the sign-in form. */
export function reportAuthError(err: unknown): void {
  const error = err instanceof ConnectError ? err : null;
  if (!error) return;
  if (error.code !== Code.Unauthenticated && error.code !== Code.PermissionDenied) return;
  if (authProblem?.code === error.code && authProblem.message === error.rawMessage) return;
  authProblem = { code: error.code, message: error.rawMessage };
  for (const listener of [...authListeners]) listener();
}

const bearer: Interceptor = (next) => async (request) => {
  const value = token() ?? memoryToken;
  if (value) request.header.set("authorization", `Bearer ${value}`);
  try {
    return await next(request);
  } catch (err) {
    reportAuthError(err);
    throw err;
  }
};

export const transport = createGrpcWebTransport({
  baseUrl: window.location.origin,
  interceptors: [bearer],
});

export const catalog = createClient(CatalogService, transport);
export const health = createClient(HealthService, transport);
export const containers = createClient(ContainerService, transport);
export const actions = createClient(ActionService, transport);
export const session = createClient(SessionService, transport);
export const metrics = createClient(MetricsService, transport);

/** Opens a Watch stream on the shared transport; settles once the server answered. */
export const watchSource: WatchSource = async (request, signal) => {
  const response = await transport.stream(
    WatchService.method.watch,
    signal,
    undefined,
    undefined,
    (async function* () {
      yield request;
    })(),
  );
  return response.message;
};
