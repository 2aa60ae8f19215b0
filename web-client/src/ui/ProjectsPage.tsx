import { HealthStatus } from "../gen/pharos/v1/catalog_pb";
import { Pending, Section, StatusBadge } from "./common";
import { worstStatus } from "./format";
import type { WatchHandle } from "./hooks";
import { deploymentStatus, deployments, environments, projects } from "./model";

export function ProjectsPage({ watch, environment }: { watch: WatchHandle; environment: string }) {
  const { status, watcher } = watch;
  const store = watcher.store;
  const stale = status.state.kind !== "live";
  const envs = environments(store);
  const all = projects(store);
  const shown = environment ? all.filter((p) => p.environments.includes(environment)) : all;
  const unknownEnv = status.ready && environment !== "" && !envs.some((e) => e.id === environment);
  const byProject = new Map<string, HealthStatus[]>();
  for (const d of deployments(store)) {
    if (environment && d.environment !== environment) continue;
    const list = byProject.get(d.projectId) ?? [];
    list.push(deploymentStatus(store, d));
    byProject.set(d.projectId, list);
  }

  return (
    <>
      <h1 class="page-title">Projects</h1>
      <Section
        title={environment ? `Projects deployed in ${environment}` : "All projects"}
        id="projects"
        stale={stale && status.ready}
        aside={
          <label class="inline-field">
            Environment{" "}
            <select
              value={environment}
              onChange={(e) => {
                const value = (e.target as HTMLSelectElement).value;
                window.location.hash = value ? `#/projects?env=${encodeURIComponent(value)}` : "#/projects";
              }}
            >
              <option value="">All environments</option>
              {envs.map((env) => (
                <option key={env.id} value={env.id}>
                  {env.name ? `${env.name} (${env.id})` : env.id}
                </option>
              ))}
              {unknownEnv ? <option value={environment}>{environment} (not in the catalog)</option> : null}
            </select>
          </label>
        }
      >
        {!status.ready ? (
          <Pending status={status} what="the catalog snapshot" />
        ) : unknownEnv ? (
          <p class="error-note" role="alert">
            The catalog has no environment <code>{environment}</code>. <a href="#/projects">Show all projects</a>.
          </p>
        ) : shown.length === 0 ? (
          <p class="muted">No projects{environment ? ` are deployed in ${environment}` : " in the catalog"}.</p>
        ) : (
          <>
            <p class="muted small-text" aria-live="polite">
              {shown.length} of {all.length} projects
            </p>
            <table class="grid-table">
              <caption class="sr-only">Projects</caption>
              <thead>
                <tr>
                  <th scope="col">Project</th>
                  <th scope="col">Health{environment ? ` in ${environment}` : ""}</th>
                  <th scope="col">Type</th>
                  <th scope="col">Environments</th>
                  <th scope="col">Subdomain</th>
                  <th scope="col">Description</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((p) => {
                  const statuses = byProject.get(p.id) ?? [];
                  return (
                    <tr key={p.id} data-project={p.id}>
                      <th scope="row">
                        <a href={`#/projects/${encodeURIComponent(p.id)}`}>{p.name || p.id}</a>
                        <div class="muted small-text">{p.id}</div>
                      </th>
                      <td>
                        {statuses.length ? (
                          <StatusBadge status={worstStatus(statuses)} small />
                        ) : (
                          <span class="muted">no deployments</span>
                        )}
                      </td>
                      <td>{p.type || <span class="muted">—</span>}</td>
                      <td>
                        {p.environments.map((env) => (
                          <span key={env} class="env-tag">
                            {env}
                          </span>
                        ))}
                      </td>
                      <td>{p.subdomain || <span class="muted">—</span>}</td>
                      <td class="message">{p.description}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </>
        )}
      </Section>
    </>
  );
}
