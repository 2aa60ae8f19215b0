import { watchSource } from "../api/client";
import { WatchTopic } from "../gen/pharos/v1/watch_pb";
import type { WatchSpec } from "../stream";
import { StreamNotice, StreamState } from "./common";
import { Header } from "./Header";
import { useFirstLiveMark, useNow, useRoute, useWatch, type Route } from "./hooks";
import { LogsPage } from "./LogsPage";
import { OperationsPage } from "./OperationsPage";
import { ProjectPage } from "./ProjectPage";
import { ProjectsPage } from "./ProjectsPage";
import { CAPACITY_SERIES, THROUGHPUT_SERIES } from "./SystemMetrics";
import { SystemPage } from "./SystemPage";

/**
 * What each page watches: one stream per page, with every topic the page shows. A new
 * page adds its route in route.ts, its topics here and its component below.
 */
export function specFor(route: Route): WatchSpec {
  switch (route.page) {
    case "system":
      return {
        topics: [WatchTopic.CATALOG, WatchTopic.EVENTS, WatchTopic.HEALTH, WatchTopic.METRICS],
        metricSelectors: [THROUGHPUT_SERIES, CAPACITY_SERIES],
      };
    case "projects":
      return { topics: [WatchTopic.CATALOG, WatchTopic.HEALTH] };
    case "project":
      return { topics: [WatchTopic.CATALOG, WatchTopic.HEALTH, WatchTopic.CONTAINERS], projects: [route.id] };
    case "operations":
      return {
        topics: [WatchTopic.CATALOG, WatchTopic.CONTAINERS, WatchTopic.OPERATIONS],
        projects: [route.project],
      };
    case "logs":
      return { topics: [WatchTopic.CONTAINERS] };
    case "not-found":
      return { topics: [WatchTopic.CATALOG] };
  }
}

export function App() {
  const route = useRoute();
  const watch = useWatch(watchSource, specFor(route));
  const now = useNow(1000);
  const status = watch.status;
  useFirstLiveMark(status.ready);
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => {
        e.preventDefault();
        document.getElementById("main")?.focus();
      }}>
        Skip to content
      </a>
      <Header route={route} status={status} now={now} />
      <main id="main" tabIndex={-1}>
        <StreamState watch={watch} />
        <StreamNotice status={status} now={now} onRetry={() => watch.watcher.retryNow()} />
        {route.page === "system" ? (
          <SystemPage watch={watch} now={now} />
        ) : route.page === "projects" ? (
          <ProjectsPage watch={watch} environment={route.environment} />
        ) : route.page === "project" ? (
          <ProjectPage watch={watch} id={route.id} now={now} />
        ) : route.page === "operations" ? (
          <OperationsPage watch={watch} project={route.project} environment={route.environment} now={now} />
        ) : route.page === "logs" ? (
          <LogsPage watch={watch} container={route.container} />
        ) : (
          <section class="panel">
            <h1>Not found</h1>
            <p>
              There is no page at <code>{route.path}</code>. Go to the <a href="#/">system overview</a> or the{" "}
              <a href="#/projects">projects</a>.
            </p>
          </section>
        )}
      </main>
    </>
  );
}
