import { describe, expect, test } from "vitest";
import { parseRoute } from "./route";

describe("routes of the Operations and Logs pages", () => {
  test("#/operations/<project>/<environment>", () => {
    expect(parseRoute("#/operations/shop/prod")).toEqual({ page: "operations", project: "shop", environment: "prod" });
    expect(parseRoute("#/operations/a%20b/e2e")).toEqual({ page: "operations", project: "a b", environment: "e2e" });
    expect(parseRoute("#/operations/shop")).toEqual({ page: "not-found", path: "/operations/shop" });
  });

  test("#/logs/<container>", () => {
    expect(parseRoute("#/logs/abc123")).toEqual({ page: "logs", container: "abc123" });
    expect(parseRoute("#/logs")).toEqual({ page: "not-found", path: "/logs" });
  });
});
