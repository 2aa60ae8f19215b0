// The client side of the Pharos watch contract: a store of current objects and a
// resuming, resyncing Watch subscriber. Framework-free.
export * from "./backoff";
export * from "./store";
export * from "./watcher";
