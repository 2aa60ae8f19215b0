// Hash routes: "#/" (system), "#/projects?env=<id>", "#/projects/<id>".

/** The route from location.hash: "#/", "#/projects?env=x", "#/projects/<id>". */
export type Route =
  | { page: "system" }
  | { page: "projects"; environment: string }
  | { page: "project"; id: string }
  | { page: "operations"; project: string; environment: string }
  | { page: "logs"; container: string }
  | { page: "not-found"; path: string };

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "") || "/";
  const [path = "/", query = ""] = raw.split("?", 2);
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0) return { page: "system" };
  if (parts[0] === "projects" && parts.length === 1) {
    return { page: "projects", environment: params.get("env") ?? "" };
  }
  if (parts[0] === "projects" && parts.length === 2) {
    return { page: "project", id: decodeURIComponent(parts[1] ?? "") };
  }
  // "#/operations/<project>/<environment>": actions on one deployment and its audit list.
  if (parts[0] === "operations" && parts.length === 3) {
    return {
      page: "operations",
      project: decodeURIComponent(parts[1] ?? ""),
      environment: decodeURIComponent(parts[2] ?? ""),
    };
  }
  // "#/logs/<container id or name>": a container's log.
  if (parts[0] === "logs" && parts.length === 2) {
    return { page: "logs", container: decodeURIComponent(parts[1] ?? "") };
  }
  return { page: "not-found", path };
}
