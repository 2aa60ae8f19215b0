//! `postgres` checks: connect with the DSN, `SELECT 1`, read a few gauges, disconnect.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{self, ConnectOptions, Connection, Executor};

use super::{Probe, ProbeError, ProbeOutcome, Run};
use pharos_core::domain::PostgresCheck;
use pharos_core::redact::redact;

/// Client connections, the connection limit and the database's size.
///
/// pg_stat_activity also lists the server's own processes, told apart by `backend_type`;
/// but a role without pg_read_all_stats sees NULL there for other roles' sessions, which
/// then count when they have a database and a user (server processes lack one or both).
const GAUGES: &str = "SELECT \
    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
        OR (backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL))::float8, \
    current_setting('max_connections')::float8, \
    pg_database_size(current_database())::float8";

pub(super) struct PostgresProbe {
    options: PgConnectOptions,
}

impl PostgresProbe {
    pub(super) fn build(settings: &PostgresCheck) -> Result<Self, ProbeError> {
        let bad = |reason: String| ProbeError::BadDsn {
            dsn: redact(&settings.dsn),
            reason: format!(
                "{reason}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=..]"
            ),
        };
        let scheme = settings.dsn.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            return Err(bad("not a postgres:// URL".to_owned()));
        }
        let options = PgConnectOptions::from_str(&settings.dsn)
            .map_err(|e| bad(e.to_string()))?
            .application_name("pharos-probe")
            .disable_statement_logging();
        Ok(PostgresProbe { options })
    }
}

#[async_trait::async_trait]
impl Probe for PostgresProbe {
    async fn run(&self) -> ProbeOutcome {
        let mut run = Run::start();
        let mut conn = match PgConnection::connect_with(&self.options).await {
            Ok(conn) => conn,
            Err(e) => return run.unhealthy(format!("connect: {}", describe(&e))),
        };
        run.connected();
        // The simple query protocol: no statement to prepare.
        if let Err(e) = conn.execute("SELECT 1").await {
            return run.unhealthy(format!("SELECT 1: {}", describe(&e)));
        }
        run.first_byte();
        // The gauges are best effort: a role may lack the rights to read them.
        match sqlx::query_as::<_, (f64, f64, f64)>(GAUGES)
            .fetch_one(&mut conn)
            .await
        {
            Ok((used, max, bytes)) => {
                run.measure("connections_used", used);
                run.measure("connections_max", max);
                run.measure("database_bytes", bytes);
            }
            Err(e) => tracing::debug!("postgres probe gauges: {e}"),
        }
        // Terminate politely; dropping the connection would close the socket too.
        let _ = conn.close().await;
        run.healthy()
    }
}

/// The server's own message for database errors (`password authentication failed for
/// user "x"`), sqlx's description otherwise.
fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        other => super::error_chain(other),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::Verdict;
    use super::super::tests::{build_error, probe};
    use super::*;
    use pharos_e2e::TestPostgres;
    use serde_json::json;

    #[tokio::test]
    async fn healthy_with_gauges_and_disconnects() {
        let pg = TestPostgres::shared();
        let url = pg.unique_database("probe").unwrap();
        let check = probe("postgres", json!({ "dsn": url }));
        let outcome = check.run().await;
        assert_eq!(outcome.verdict, Verdict::Healthy, "{outcome:?}");
        assert_eq!(outcome.message, "ok");
        let timings = &outcome.timings;
        assert!(timings.connect.unwrap() <= timings.first_byte.unwrap());
        assert!(timings.first_byte.unwrap() <= timings.total);

        let used = outcome.measurement("connections_used").unwrap();
        let max = outcome.measurement("connections_max").unwrap();
        let bytes = outcome.measurement("database_bytes").unwrap();
        let configured: f64 = pg
            .psql("postgres", "SHOW max_connections")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(max, configured);
        assert!(used >= 1.0 && used <= max, "connections_used {used}");
        // A fresh database is a copy of template1: several megabytes.
        let size: f64 = pg
            .psql(
                "postgres",
                &format!(
                    "SELECT pg_database_size('{}')",
                    url.rsplit('/').next().unwrap()
                ),
            )
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            bytes > 1e6 && (bytes - size).abs() / size < 0.1,
            "{bytes} vs {size}"
        );

        // The probe closed its connection.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = pg
                .psql(
                    "postgres",
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pharos-probe'",
                )
                .unwrap();
            if left == "0" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{left} probe connections left open"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn wrong_password_port_or_database_is_unhealthy() {
        let pg = TestPostgres::shared();
        let role = format!("probe_{}", std::process::id());
        pg.create_password_role(&role, "s3cret").unwrap();
        let port = pg.port();

        // A superuser's session, which this unprivileged role sees without its type.
        let mut other = PgConnection::connect(&pg.url()).await.unwrap();
        let right = format!("postgres://{role}:s3cret@127.0.0.1:{port}/postgres");
        let outcome = probe("postgres", json!({ "dsn": right })).run().await;
        assert_eq!(outcome.verdict, Verdict::Healthy, "{outcome:?}");
        // The probe's own session and the other one, at least.
        let used = outcome.measurement("connections_used").unwrap();
        assert!(used >= 2.0, "connections_used {used}");
        other.execute("SELECT 1").await.unwrap();
        other.close().await.unwrap();

        let wrong = format!("postgres://{role}:guess@127.0.0.1:{port}/postgres");
        let outcome = probe("postgres", json!({ "dsn": wrong })).run().await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert_eq!(
            outcome.message,
            format!("connect: password authentication failed for user \"{role}\" (SQLSTATE 28P01)")
        );
        assert!(outcome.measurements.is_empty());

        let closed = pharos_e2e::free_port();
        let outcome = probe(
            "postgres",
            json!({ "dsn": format!("postgres://postgres@127.0.0.1:{closed}/postgres") }),
        )
        .run()
        .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert!(outcome.message.contains("refused"), "{}", outcome.message);
        assert_eq!(outcome.timings.connect, None);

        let outcome = probe("postgres", json!({ "dsn": pg.url_for("no_such_db") }))
            .run()
            .await;
        assert_eq!(outcome.verdict, Verdict::Unhealthy, "{outcome:?}");
        assert_eq!(
            outcome.message,
            "connect: database \"no_such_db\" does not exist (SQLSTATE 3D000)"
        );
    }

    #[test]
    fn dsn_errors_hide_the_password() {
        let err = build_error("postgres", json!({ "dsn": "mysql://u:pw@h/db" }));
        assert!(
            err.starts_with("invalid PostgreSQL DSN \"mysql://u:***@h/db\": "),
            "{err}"
        );
        assert!(!err.contains("pw@"), "{err}");
    }
}
