import { Code } from "@connectrpc/connect";
import { useState } from "preact/hooks";
import { setToken } from "../api/client";
import type { WatchStatus } from "../stream";
import { Badge, connectionInfo } from "./common";
import { formatAge, formatClock } from "./format";
import type { Route } from "./hooks";
import { useAuth } from "./hooks";

export function Header({ route, status, now }: { route: Route; status: WatchStatus; now: number }) {
  const auth = useAuth();
  const [formOpen, setFormOpen] = useState(false);
  const info = connectionInfo(status.state, now);
  const streamRefused = status.state.kind === "unauthorized";
  const refused = streamRefused || auth.problem !== null;
  const refusal =
    status.state.kind === "unauthorized"
      ? { code: status.state.code, message: status.state.reason }
      : auth.problem;
  const showForm = refused || formOpen;
  const current = (page: Route["page"]) => (route.page === page ? "page" : undefined);

  return (
    <header class="top">
      <div class="top-row">
        <a class="brand" href="#/">
          <span class="brand-mark" aria-hidden="true">
            ◭
          </span>
          Pharos
        </a>
        <nav aria-label="Main">
          <a href="#/" aria-current={current("system")}>
            System
          </a>
          <a
            href="#/projects"
            aria-current={route.page === "projects" || route.page === "project" || route.page === "operations" || route.page === "logs" ? "page" : undefined}
          >
            Projects
          </a>
        </nav>
        <div class="conn" aria-live="polite">
          <span title={info.detail}>
            <Badge info={info} />
          </span>
          <span class="sr-only">{info.detail}</span>
        </div>
        <LastUpdate status={status} now={now} />
        <div class="auth">
          {auth.signedIn ? (
            <button type="button" class="link-button" onClick={() => setToken(null)}>
              Forget token
            </button>
          ) : !showForm ? (
            <button type="button" class="link-button" onClick={() => setFormOpen(true)}>
              Sign in
            </button>
          ) : null}
        </div>
      </div>
      {showForm && !auth.signedIn ? (
        <SignIn
          message={
            refusal
              ? refusal.code === Code.PermissionDenied
                ? `pharosd refused: ${refusal.message}. Enter a token with the viewer role.`
                : `pharosd asks for a token: ${refusal.message}`
              : "Enter an API token to send with every request."
          }
          onDone={() => setFormOpen(false)}
          onCancel={refused ? undefined : () => setFormOpen(false)}
        />
      ) : null}
      {refused && auth.signedIn ? (
        <div class="signin" role="alert">
          <p>
            pharosd refused the stored token ({refusal?.message}).{" "}
            <button type="button" class="link-button" onClick={() => setToken(null)}>
              Enter another token
            </button>
          </p>
        </div>
      ) : null}
    </header>
  );
}

function LastUpdate({ status, now }: { status: WatchStatus; now: number }) {
  const live = status.state.kind === "live";
  if (status.lastUpdate === null) {
    return <span class="last-update muted">Last update: none yet</span>;
  }
  return (
    <span class={`last-update${live ? "" : " is-stale"}`} title={`at ${formatClock(status.lastUpdate)}`}>
      Last update {formatAge(status.lastUpdate, now)} ago
      {live ? null : <span class="stale-tag">stale</span>}
    </span>
  );
}

function SignIn({ message, onDone, onCancel }: { message: string; onDone: () => void; onCancel?: () => void }) {
  const [value, setValue] = useState("");
  return (
    <form
      class="signin"
      onSubmit={(e) => {
        e.preventDefault();
        const trimmed = value.trim();
        if (!trimmed) return;
        setToken(trimmed);
        onDone();
      }}
    >
      <p id="signin-help">{message}</p>
      <label for="token-input">API token</label>
      <input
        id="token-input"
        type="password"
        autocomplete="off"
        spellcheck={false}
        aria-describedby="signin-help signin-note"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
      />
      <button type="submit">Sign in</button>
      {onCancel ? (
        <button type="button" class="link-button" onClick={onCancel}>
          Cancel
        </button>
      ) : null}
      <p id="signin-note" class="muted small-text">
        Kept in this tab's session storage and sent as <code>authorization: Bearer …</code>.
      </p>
    </form>
  );
}
