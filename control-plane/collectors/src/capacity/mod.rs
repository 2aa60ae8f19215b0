//! Capacity: the host's CPU, memory and load, disk usage of configured paths, the
//! database's own size, the PostgreSQL databases the catalog checks (size, connections,
//! largest tables) and container memory per service. A sampler refreshes one snapshot on
//! an interval; `MetricsService.GetCapacity` answers from it, and each figure is also
//! recorded as a gauge in the metric store (`pharos_*` names below), so `QueryRange` and
//! the Watch metrics topic chart them over time.
//!
//! Every part reports its own failure (a path that cannot be read, a database that does
//! not answer) instead of a number.

mod host;
mod postgres;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::catalog::CatalogView;
use crate::containers::{ContainerIndex, ServiceStats};
use crate::metrics::store::{Labels, MetricStore};
use pharos_store::capacity::DatabaseSize;

pub use host::{Cpu, Host, Memory};
pub use postgres::{PostgresCapacity, Table};

/// `capacity:` in the config file.
#[derive(Clone, Debug)]
pub struct CapacityConfig {
    /// How often everything is sampled; zero turns sampling (and GetCapacity) off.
    pub interval: Duration,
    /// Paths whose file systems are reported (the data directory is always added).
    pub disk_paths: Vec<PathBuf>,
    /// Tables listed per PostgreSQL database.
    pub largest_tables: u32,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            interval: Duration::from_secs(10),
            disk_paths: Vec::new(),
            largest_tables: 5,
        }
    }
}

/// One file system, as seen from a configured path.
#[derive(Clone, Debug, PartialEq)]
pub struct Disk {
    pub path: PathBuf,
    /// Sizes, or why they could not be read.
    pub usage: Result<DiskUsage, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskUsage {
    pub total_bytes: u64,
    pub used_bytes: u64,
    /// Free to unprivileged users (less than total minus used when blocks are reserved).
    pub available_bytes: u64,
}

/// pharosd's own database.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnDatabase {
    /// "sqlite" or "postgres".
    pub backend: &'static str,
    pub size: Result<u64, String>,
}

/// Everything one sampling round found.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at_ms: i64,
    pub host: Result<Host, String>,
    pub disks: Vec<Disk>,
    pub database: OwnDatabase,
    pub postgres: Vec<PostgresCapacity>,
    /// Empty when containers are off.
    pub services: Vec<ServiceStats>,
}

/// The latest snapshot, shared with the API.
pub type Latest = watch::Receiver<Option<Arc<Snapshot>>>;

#[derive(Clone)]
pub struct Sampler {
    config: CapacityConfig,
    data_dir: PathBuf,
    own_database: DatabaseSize,
    view: watch::Receiver<Arc<CatalogView>>,
    containers: Arc<ContainerIndex>,
    store: Arc<MetricStore>,
    latest: watch::Sender<Option<Arc<Snapshot>>>,
}

impl Sampler {
    pub fn new(
        config: CapacityConfig,
        data_dir: PathBuf,
        own_database: DatabaseSize,
        view: watch::Receiver<Arc<CatalogView>>,
        containers: Arc<ContainerIndex>,
        store: Arc<MetricStore>,
    ) -> (Sampler, Latest) {
        let (latest, receiver) = watch::channel(None);
        let sampler = Sampler {
            config,
            data_dir,
            own_database,
            view,
            containers,
            store,
            latest,
        };
        (sampler, receiver)
    }

    pub async fn run(self, stop: CancellationToken) {
        let mut cpu = host::CpuMeter::default();
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let snapshot = self.sample(&mut cpu).await;
            self.record(&snapshot);
            self.latest.send_replace(Some(Arc::new(snapshot)));
        }
    }

    async fn sample(&self, cpu: &mut host::CpuMeter) -> Snapshot {
        let mut paths = vec![self.data_dir.clone()];
        for path in &self.config.disk_paths {
            if !paths.contains(path) {
                paths.push(path.clone());
            }
        }
        let disks = tokio::task::spawn_blocking(move || {
            paths
                .into_iter()
                .map(|path| Disk {
                    usage: disk_usage(&path),
                    path,
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let targets = postgres::targets(&self.view.borrow());
        Snapshot {
            at_ms: crate::metrics::store::now_ms(),
            host: host::sample(cpu).await,
            disks,
            database: OwnDatabase {
                backend: self.own_database.backend(),
                size: self
                    .own_database
                    .bytes()
                    .await
                    .map_err(|err| err.to_string()),
            },
            postgres: postgres::sample(targets, self.config.largest_tables).await,
            services: self.containers.service_stats(),
        }
    }

    /// The snapshot's figures as gauges, at the sampling time.
    fn record(&self, s: &Snapshot) {
        let mut gauges: Vec<(&str, Labels, f64)> = Vec::new();
        let none = Labels::new;
        if let Ok(host) = &s.host {
            if let Some(busy) = host.cpu.busy_ratio {
                gauges.push(("pharos_host_cpu_busy_ratio", none(), busy));
            }
            gauges.push(("pharos_host_load1", none(), host.cpu.load1));
            gauges.push((
                "pharos_host_memory_total_bytes",
                none(),
                host.memory.total_bytes as f64,
            ));
            gauges.push((
                "pharos_host_memory_available_bytes",
                none(),
                host.memory.available_bytes as f64,
            ));
        }
        for disk in &s.disks {
            if let Ok(usage) = &disk.usage {
                let labels: Labels = [("path".to_owned(), disk.path.display().to_string())].into();
                gauges.push((
                    "pharos_disk_used_bytes",
                    labels.clone(),
                    usage.used_bytes as f64,
                ));
                gauges.push(("pharos_disk_total_bytes", labels, usage.total_bytes as f64));
            }
        }
        if let Ok(size) = &s.database.size {
            gauges.push(("pharos_database_size_bytes", none(), *size as f64));
        }
        for pg in &s.postgres {
            let labels: Labels = [("check".to_owned(), pg.check_id.clone())].into();
            if let Ok(figures) = &pg.figures {
                gauges.push((
                    "pharos_postgres_size_bytes",
                    labels.clone(),
                    figures.size_bytes as f64,
                ));
                gauges.push((
                    "pharos_postgres_connections_used",
                    labels,
                    f64::from(figures.connections_used),
                ));
            }
        }
        for service in &s.services {
            let labels: Labels = [
                ("deployment".to_owned(), service.deployment_id.clone()),
                ("service".to_owned(), service.service.clone()),
            ]
            .into();
            gauges.push((
                "pharos_service_memory_used_bytes",
                labels,
                service.memory_used_bytes as f64,
            ));
        }
        self.store.record(
            gauges
                .iter()
                .map(|(name, labels, value)| (*name, labels, s.at_ms, *value)),
        );
    }
}

/// statvfs of `path`'s file system.
pub fn disk_usage(path: &std::path::Path) -> Result<DiskUsage, String> {
    let stat =
        nix::sys::statvfs::statvfs(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let block = stat.fragment_size();
    let total = stat.blocks() * block;
    let free = stat.blocks_free() * block;
    Ok(DiskUsage {
        total_bytes: total,
        used_bytes: total.saturating_sub(free),
        available_bytes: stat.blocks_available() * block,
    })
}
