// A private Podman serving the Docker Engine API on a unix socket, started the way the
// Rust TestPodman (tests/src/podman.rs) does it: its own root, runroot and tmpdir in a
// temporary directory, runc with cgroupfs, the file events logger, lowered ulimits, and a
// `localhost/busybox:latest` image imported from a tarball of Debian's static busybox.
// Containers run with `--network host`. `cleanup()` (harness.mjs) removes every
// container, stops the service and resets the store.

import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, symlinkSync, copyFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { onCleanup, tempDir, waitFor } from "./harness.mjs";

const run = promisify(execFile);

export const BUSYBOX_IMAGE = "localhost/busybox:latest";

const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`;

/** Whether `GET /_ping` on the socket answers 200. */
function ping(socket) {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: "/_ping", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
  });
}

export class TestPodman {
  constructor(dir) {
    this.dir = dir;
    this.socket = path.join(dir, "podman.sock");
    this.env = { ...process.env, CONTAINERS_CONF: path.join(dir, "containers.conf") };
    this.service = null;
  }

  /** Imports busybox and starts `podman system service`; stopped by cleanup(). */
  static async start() {
    const podman = new TestPodman(tempDir("pharos-e2e-podman-"));
    writeFileSync(path.join(podman.dir, "containers.conf"), CONTAINERS_CONF);
    // Registered after tempDir's removal, so it runs before it.
    onCleanup(() => podman.stop());
    await podman.importBusybox();
    await podman.startService();
    return podman;
  }

  get dockerHost() {
    return `unix://${this.socket}`;
  }

  args(extra) {
    return ["--root", path.join(this.dir, "root"), "--runroot", path.join(this.dir, "run"), "--tmpdir", path.join(this.dir, "tmp"), ...extra];
  }

  /** `podman ARGS` to completion; its trimmed stdout. */
  async podman(...extra) {
    try {
      const { stdout } = await run("podman", this.args(extra), { env: this.env, maxBuffer: 16 << 20 });
      return stdout.trim();
    } catch (err) {
      throw new Error(`podman ${extra.join(" ")} failed: ${err.stderr?.trim() || err.message}`);
    }
  }

  /** `podman run -d --network host --label K=V... [options] busybox CMD...`; the id. */
  async run(labels, cmd, options = []) {
    const args = ["run", "-d", "--network", "host"];
    for (const [key, value] of Object.entries(labels)) args.push("--label", `${key}=${value}`);
    return this.podman(...args, ...options, BUSYBOX_IMAGE, ...cmd);
  }

  /** The container's `State.StartedAt` as the engine reports it. */
  async startedAt(id) {
    return this.podman("inspect", "--format", "{{.State.StartedAt}}", id);
  }

  async importBusybox() {
    const rootfs = path.join(this.dir, "rootfs");
    const bin = path.join(rootfs, "bin");
    mkdirSync(bin, { recursive: true });
    const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
    if (!busybox) throw new Error("busybox not installed (apt-get install busybox-static)");
    copyFileSync(busybox, path.join(bin, "busybox"));
    for (const applet of ["sh", "sleep", "httpd", "echo", "cat", "yes", "kill", "mkdir", "rm", "seq"]) {
      symlinkSync("busybox", path.join(bin, applet));
    }
    const tar = path.join(this.dir, "busybox.tar");
    await run("tar", ["-C", rootfs, "-cf", tar, "."]);
    await this.podman("import", "-q", tar, BUSYBOX_IMAGE);
  }

  async startService() {
    const log = openSync(path.join(this.dir, "service.log"), "a");
    this.service = spawn("podman", this.args(["system", "service", "--time=0", this.dockerHost]), {
      env: this.env,
      stdio: ["ignore", log, log],
    });
    const child = this.service;
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`podman system service exited:\n${this.log()}`);
      return ping(this.socket);
    }, { timeoutMs: 20_000, intervalMs: 50, what: "podman system service" });
  }

  log() {
    try {
      return readFileSync(path.join(this.dir, "service.log"), "utf8");
    } catch {
      return "";
    }
  }

  async stop() {
    try {
      await this.podman("rm", "-af", "-t", "0");
    } catch (err) {
      console.error(err.message);
    }
    const child = this.service;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    // Unmounts and deletes the store, so the temporary directory can go.
    try {
      await this.podman("system", "reset", "-f");
    } catch (err) {
      console.error(err.message);
    }
  }
}
