// Operations on one deployment: its containers, the actions (restart, stop, start, scale,
// rolling restart) behind a confirm dialog that requires a reason, the live steps of the
// operation under way (operations topic of the page's Watch stream), and the audit list
// (ListOperations, newest first; fetched on load and again whenever the stream brings a
// change of this deployment's operations).

import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useRef, useState } from "preact/hooks";
import { actions, session, token } from "../api/client";
import { Role } from "../gen/pharos/v1/session_pb";
import {
  OperationKind,
  OperationState,
  StepState,
  type Operation,
} from "../gen/pharos/v1/actions_pb";
import { WatchTopic } from "../gen/pharos/v1/watch_pb";
import type { WatchStore } from "../stream";
import { Badge, Pending, RpcError, Section } from "./common";
import { ContainersSection, streamContainers } from "./Containers";
import { formatDateTime, tsMs, type StatusInfo } from "./format";
import { useAuth, useRpc, type WatchHandle } from "./hooks";
import { deployments } from "./model";

/** The actions, in the order of the buttons. */
const KINDS: { kind: OperationKind; label: string; verb: string }[] = [
  { kind: OperationKind.RESTART, label: "Restart", verb: "Restart every container of" },
  { kind: OperationKind.ROLLOUT_RESTART, label: "Rolling restart", verb: "Restart one replica at a time of" },
  { kind: OperationKind.STOP, label: "Stop", verb: "Stop the running containers of" },
  { kind: OperationKind.START, label: "Start", verb: "Start the stopped containers of" },
  { kind: OperationKind.SCALE, label: "Scale", verb: "Scale" },
];

export function kindLabel(kind: OperationKind): string {
  return KINDS.find((k) => k.kind === kind)?.label ?? "Unknown";
}

export function operationStateInfo(state: OperationState): StatusInfo {
  switch (state) {
    case OperationState.PENDING:
      return { tone: "unknown", icon: "…", label: "pending", rank: 0 };
    case OperationState.RUNNING:
      return { tone: "warn", icon: "↻", label: "running", rank: 0 };
    case OperationState.SUCCEEDED:
      return { tone: "ok", icon: "✓", label: "succeeded", rank: 0 };
    case OperationState.FAILED:
      return { tone: "bad", icon: "✕", label: "failed", rank: 0 };
    case OperationState.INTERRUPTED:
      return { tone: "bad", icon: "!", label: "interrupted", rank: 0 };
    case OperationState.PLANNED:
      return { tone: "unknown", icon: "◇", label: "dry run", rank: 0 };
    default:
      return { tone: "unknown", icon: "?", label: "unknown", rank: 0 };
  }
}

function stepStateInfo(state: StepState): StatusInfo {
  switch (state) {
    case StepState.RUNNING:
      return { tone: "warn", icon: "↻", label: "running", rank: 0 };
    case StepState.SUCCEEDED:
      return { tone: "ok", icon: "✓", label: "done", rank: 0 };
    case StepState.FAILED:
      return { tone: "bad", icon: "✕", label: "failed", rank: 0 };
    case StepState.SKIPPED:
      return { tone: "unknown", icon: "–", label: "skipped", rank: 0 };
    default:
      return { tone: "unknown", icon: "…", label: "pending", rank: 0 };
  }
}

/** This deployment's operations on the stream, and the highest revision among them. */
function streamOperations(store: WatchStore, deploymentId: string): { byId: Map<string, Operation>; revision: bigint } {
  const byId = new Map<string, Operation>();
  let revision = 0n;
  for (const change of store.list(WatchTopic.OPERATIONS, "operation/")) {
    if (change.object.case !== "operation" || change.object.value.deploymentId !== deploymentId) continue;
    byId.set(change.object.value.id, change.object.value);
    if (change.revision > revision) revision = change.revision;
  }
  return { byId, revision };
}

/**
 * Tokens the server refused an action for (PERMISSION_DENIED): their role is below
 * operator, so the buttons go away for them. Anonymous callers are never operators
 * (pharosd lets them in as viewers only), so the buttons need a token.
 */
const refusedTokens = new Set<string>();

function roleName(role: Role): string {
  return Role[role]?.toLowerCase() ?? "unknown";
}

export function OperationsPage({
  watch,
  project,
  environment,
  now,
}: {
  watch: WatchHandle;
  project: string;
  environment: string;
  now: number;
}) {
  const { status, watcher } = watch;
  const store = watcher.store;
  const deploymentId = `${project}/${environment}`;
  const stale = status.state.kind !== "live";
  const auth = useAuth();
  const [dialog, setDialog] = useState<OperationKind | null>(null);
  const [current, setCurrent] = useState<Operation | null>(null);
  const [refusal, setRefusal] = useState<ConnectError | null>(null);
  const [refusedEpoch, bumpRefused] = useState(0);

  const deployment = deployments(store, project).find((d) => d.environment === environment);
  const ops = streamOperations(store, deploymentId);
  const audit = useRpc(
    (signal) => actions.listOperations({ deploymentId, pageSize: 50 }, { signal }),
    [deploymentId, auth.epoch, status.ready ? ops.revision.toString() : "pending"],
  );
  const replicas = streamContainers(store, project, deploymentId).length;

  // The role decides which buttons appear (the server still checks every call). Until
  // WhoAmI answers, or if it fails, a token not yet refused gets the buttons.
  const me = useRpc((signal) => session.whoAmI({}, { signal }), [auth.epoch]);
  const signedIn = token();
  const role = me.data?.role;
  const mayOperate =
    role !== undefined
      ? role >= Role.OPERATOR && !(signedIn !== null && refusedTokens.has(signedIn))
      : signedIn !== null && !refusedTokens.has(signedIn);
  void refusedEpoch;

  // The operation under way: its newest state from the stream, else the RPC's answer.
  const live = current ? (ops.byId.get(current.id) ?? current) : null;

  if (status.ready && !deployment) {
    return (
      <>
        <p>
          <a href={`#/projects/${encodeURIComponent(project)}`}>← {project}</a>
        </p>
        <h1 class="page-title">Operations: {deploymentId}</h1>
        <p class="error-note" role="alert">
          Deployment <code>{deploymentId}</code> is not in the catalog.
        </p>
      </>
    );
  }

  return (
    <>
      <p>
        <a href={`#/projects/${encodeURIComponent(project)}`}>← {project}</a>
      </p>
      <div class="title-row">
        <h1 class="page-title">Operations: {deploymentId}</h1>
      </div>

      <ContainersSection store={store} status={status} projectId={project} deploymentId={deploymentId} now={now} />

      <Section title="Actions" id="actions" stale={stale && status.ready}>
        {!status.ready ? (
          <Pending status={status} what="the deployment" />
        ) : mayOperate ? (
          <div class="action-buttons" role="group" aria-label="Actions on this deployment">
            {KINDS.map((k) => (
              <button
                type="button"
                key={k.kind}
                class={`action-button${k.kind === OperationKind.STOP ? " danger" : ""}`}
                data-action={OperationKind[k.kind]}
                disabled={live !== null && isActive(live)}
                onClick={() => {
                  setRefusal(null);
                  setDialog(k.kind);
                }}
              >
                {k.label}
              </button>
            ))}
          </div>
        ) : (
          <p class="muted" data-testid="role-note">
            {me.data
              ? `Signed in as ${me.data.name} (${roleName(me.data.role)}): acting on deployments needs the operator role.`
              : signedIn
                ? "The signed-in token's role may not act on deployments (the operator role is needed)."
                : "Actions need a token with the operator role: sign in above."}
          </p>
        )}
        {refusal ? (
          <p class="error-note" role="alert" data-testid="action-error">
            <span aria-hidden="true">✕ </span>
            {refusal.rawMessage} <span class="muted">({Code[refusal.code]})</span>
          </p>
        ) : null}
        {live ? <OperationProgress op={live} /> : null}
      </Section>

      <Section title="Audit: operations on this deployment" id="audit" stale={stale && status.ready}>
        <RpcError what="the operations" error={audit.error} />
        {audit.data ? <AuditTable operations={audit.data.operations} /> : audit.loading ? <p class="muted">Loading…</p> : null}
      </Section>

      {dialog !== null ? (
        <ConfirmDialog
          kind={dialog}
          deploymentId={deploymentId}
          replicas={replicas}
          onCancel={() => setDialog(null)}
          onSubmit={async (reason, dryRun, wanted) => {
            const requestId = crypto.randomUUID();
            const base = { deploymentId, reason, dryRun, requestId };
            try {
              const response =
                dialog === OperationKind.RESTART
                  ? await actions.restartDeployment(base)
                  : dialog === OperationKind.ROLLOUT_RESTART
                    ? await actions.rolloutRestart(base)
                    : dialog === OperationKind.STOP
                      ? await actions.stopDeployment(base)
                      : dialog === OperationKind.START
                        ? await actions.startDeployment(base)
                        : await actions.scaleDeployment({ ...base, replicas: wanted });
              setDialog(null);
              if (response.operation) setCurrent(response.operation);
              audit.reload();
            } catch (err) {
              const error = ConnectError.from(err);
              setDialog(null);
              setRefusal(error);
              if (error.code === Code.PermissionDenied && signedIn) {
                refusedTokens.add(signedIn);
                bumpRefused((n) => n + 1);
              }
            }
          }}
        />
      ) : null}
    </>
  );
}

function isActive(op: Operation): boolean {
  return op.state === OperationState.PENDING || op.state === OperationState.RUNNING;
}

function OperationProgress({ op }: { op: Operation }) {
  const done = op.steps.filter((s) => s.state === StepState.SUCCEEDED).length;
  return (
    <div class="op-progress" data-operation={op.id} data-state={OperationState[op.state]} aria-live="polite">
      <h3>
        {kindLabel(op.kind)}
        {op.dryRun ? " (dry run)" : ""} <Badge info={operationStateInfo(op.state)} small />{" "}
        <span class="muted small-text">
          {done} of {op.steps.length} steps · <code>{op.id}</code>
        </span>
      </h3>
      <progress max={Math.max(op.steps.length, 1)} value={done} aria-label="Steps done" />
      <ol class="op-steps">
        {op.steps.map((step, i) => (
          <li key={i} data-step-state={StepState[step.state]}>
            <Badge info={stepStateInfo(step.state)} small /> {step.description}
            {step.message ? <span class="muted"> — {step.message}</span> : null}
          </li>
        ))}
      </ol>
      {op.result ? <p class="op-result">{op.result}</p> : null}
    </div>
  );
}

function AuditTable({ operations }: { operations: Operation[] }) {
  if (operations.length === 0) return <p class="muted">No operation on this deployment yet.</p>;
  return (
    <div class="table-scroll">
      <table class="grid-table audit-table">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Action</th>
            <th scope="col">By</th>
            <th scope="col">Reason</th>
            <th scope="col">State</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {operations.map((op) => (
            <tr key={op.id} data-operation={op.id}>
              <td>{formatDateTime(tsMs(op.createTime))}</td>
              <td>
                {kindLabel(op.kind)}
                {op.kind === OperationKind.SCALE ? ` to ${op.replicas}` : ""}
                {op.dryRun ? <span class="muted"> (dry run)</span> : null}
              </td>
              <td>{op.actor}</td>
              <td>{op.reason}</td>
              <td>
                <Badge info={operationStateInfo(op.state)} small />
              </td>
              <td>{op.result}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/**
 * A modal dialog (native <dialog>: focus stays inside, Escape cancels) asking for the
 * reason, a dry run and, to scale, the replicas.
 */
function ConfirmDialog({
  kind,
  deploymentId,
  replicas,
  onCancel,
  onSubmit,
}: {
  kind: OperationKind;
  deploymentId: string;
  replicas: number;
  onCancel: () => void;
  onSubmit: (reason: string, dryRun: boolean, replicas: number) => Promise<void>;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState("");
  const [dryRun, setDryRun] = useState(false);
  const [wanted, setWanted] = useState(Math.max(replicas, 1));
  const [busy, setBusy] = useState(false);
  const [missing, setMissing] = useState(false);
  const action = KINDS.find((k) => k.kind === kind);

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const opener = document.activeElement as HTMLElement | null;
    if (!el.open) el.showModal();
    return () => {
      if (el.open) el.close();
      opener?.focus();
    };
  }, []);

  return (
    <dialog
      ref={ref}
      class="confirm-dialog"
      aria-labelledby="confirm-title"
      aria-describedby="confirm-what"
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onCancel();
      }}
    >
      <form
        method="dialog"
        onSubmit={async (e) => {
          e.preventDefault();
          const trimmed = reason.trim();
          if (!trimmed) {
            setMissing(true);
            return;
          }
          setBusy(true);
          await onSubmit(trimmed, dryRun, wanted);
        }}
      >
        <h2 id="confirm-title">{action?.label} {deploymentId}?</h2>
        <p id="confirm-what">
          {kind === OperationKind.SCALE
            ? `Create or remove replicas until ${deploymentId} has the number below (now ${replicas}).`
            : `${action?.verb} ${deploymentId}.`}
        </p>
        {kind === OperationKind.SCALE ? (
          <p>
            <label for="confirm-replicas">Replicas</label>{" "}
            <input
              id="confirm-replicas"
              type="number"
              min={0}
              max={100}
              value={wanted}
              onInput={(e) => setWanted(Number((e.target as HTMLInputElement).value))}
            />
          </p>
        ) : null}
        <p>
          <label for="confirm-reason">Reason (required, kept in the audit log)</label>
          <textarea
            id="confirm-reason"
            rows={2}
            aria-required="true"
            autofocus
            aria-invalid={missing ? "true" : undefined}
            aria-describedby={missing ? "confirm-missing" : undefined}
            value={reason}
            onInput={(e) => {
              setReason((e.target as HTMLTextAreaElement).value);
              setMissing(false);
            }}
          />
          {missing ? (
            <span id="confirm-missing" class="error-note" role="alert">
              Give a reason.
            </span>
          ) : null}
        </p>
        <p>
          <label>
            <input type="checkbox" checked={dryRun} onChange={(e) => setDryRun((e.target as HTMLInputElement).checked)} />{" "}
            Dry run: only list the steps
          </label>
        </p>
        <div class="dialog-buttons">
          <button type="submit" disabled={busy}>
            {dryRun ? "Plan" : action?.label}
          </button>
          <button type="button" class="link-button" disabled={busy} onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </dialog>
  );
}
