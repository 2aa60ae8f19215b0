//! `pharos events`: the event history (ListEvents), `-f` to follow the events topic, and
//! `--counts` for the error counts per kind (GetErrorCounts).

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output::{self, Cell, Output, Table, Tone};
use crate::resume::{ResumingWatch, WatchEvent};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these kinds; a prefix ending in "." matches a family ("catalog.")
    #[arg(long)]
    kind: Vec<String>,
    /// Only events in this last duration
    #[arg(long, default_value = "24h", value_parser = super::parse_since)]
    since: std::time::Duration,
    /// Only events of this project
    #[arg(long)]
    project: Option<String>,
    /// At most this many events
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// After the history, keep printing new events as they happen
    #[arg(short, long, conflicts_with = "counts")]
    follow: bool,
    /// Counts of warnings and errors per kind over the last hour and day
    #[arg(long)]
    counts: bool,
}

pub async fn run(client: &Client, args: Args, out: Output) -> Result<(), CliError> {
    let mut events = client.events().await?;
    if args.counts {
        let response = events
            .get_error_counts(pb::GetErrorCountsRequest {
                min_severity: 0,
                project_id: args.project.unwrap_or_default(),
                environment: String::new(),
            })
            .await
            .map_err(|status| client.error(&status))?
            .into_inner();
        let value = json!({
            "truncated": response.truncated,
            "counts": response.counts.iter().map(|c| json!({
                "kind": c.kind,
                "last_hour": c.last_hour,
                "last_day": c.last_day,
                "worst_severity": severity_name(c.worst_severity),
                "last_time": output::time(c.last_time.as_ref()),
            })).collect::<Vec<_>>(),
        });
        out.emit(&value, |out| {
            if response.counts.is_empty() {
                return "no warnings or errors in the last 24 hours\n".to_owned();
            }
            let mut table = Table::new(&["KIND", ">LAST HOUR", ">LAST DAY", "WORST", "LAST"]);
            for c in &response.counts {
                table.row(vec![
                    c.kind.clone().into(),
                    c.last_hour.to_string().into(),
                    c.last_day.to_string().into(),
                    severity_cell(c.worst_severity),
                    output::time(c.last_time.as_ref()).into(),
                ]);
            }
            table.render(out)
        });
        return Ok(());
    }
    // Following: the journal's revision before the listing, so an event journaled
    // between the listing and the watch is replayed rather than lost.
    let before_listing = if args.follow {
        client
            .catalog()
            .await?
            .get_overview(pb::GetOverviewRequest {})
            .await
            .map_err(|status| client.error(&status))?
            .into_inner()
            .revision
    } else {
        0
    };
    let response = events
        .list_events(pb::ListEventsRequest {
            kinds: args.kind.clone(),
            min_severity: 0,
            project_id: args.project.clone().unwrap_or_default(),
            environment: String::new(),
            since: Some(super::timestamp_ago(args.since)),
            page_size: args.limit.clamp(1, 1000),
            page_token: String::new(),
        })
        .await
        .map_err(|status| client.error(&status))?
        .into_inner();
    // Oldest first, like a log.
    let mut listed = response.events;
    listed.reverse();
    let last_revision = listed.iter().map(|e| e.revision).max().unwrap_or(0);
    if !args.follow {
        let value = json!({
            "events": listed.iter().map(journaled_json).collect::<Vec<_>>(),
        });
        out.emit(&value, |out| {
            if listed.is_empty() {
                return "no events\n".to_owned();
            }
            let mut table = Table::new(&["TIME", "SEVERITY", "KIND", "MESSAGE"]).wide(&[
                "SOURCE",
                "PROJECT",
                "ENV",
                ">REVISION",
            ]);
            for e in &listed {
                let event = e.event.clone().unwrap_or_default();
                table.row(vec![
                    output::time(event.time.as_ref()).into(),
                    severity_cell(event.severity),
                    event.kind.clone().into(),
                    event.message.clone().into(),
                    event.source.clone().into(),
                    event.project_id.clone().into(),
                    event.environment.clone().into(),
                    e.revision.to_string().into(),
                ]);
            }
            table.render(out)
        });
        return Ok(());
    }
    // Follow: one line (or JSON line) per event, history first, then the events topic
    // resumed after the newest listed revision.
    for e in &listed {
        print_line(e.revision, &e.event.clone().unwrap_or_default(), out);
    }
    let since = last_revision.max(before_listing);
    let mut watch = ResumingWatch::new(
        client.clone(),
        pb::WatchRequest {
            since_revision: since,
            topics: vec![pb::WatchTopic::Events as i32],
            projects: args.project.into_iter().collect(),
            ..Default::default()
        },
    );
    loop {
        let event = tokio::select! {
            event = watch.next() => event?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        if let WatchEvent::Change(change) = event
            && let Some(pb::change::Object::Event(event)) = &change.object
            && kind_matches(&args.kind, &event.kind)
        {
            print_line(change.revision, event, out);
        }
    }
}

fn kind_matches(kinds: &[String], kind: &str) -> bool {
    kinds.is_empty()
        || kinds.iter().any(|k| {
            if k.ends_with('.') {
                kind.starts_with(k.as_str())
            } else {
                k == kind
            }
        })
}

fn print_line(revision: u64, event: &pb::Event, out: Output) {
    if out.structured() {
        println!("{}", event_json(revision, event));
    } else {
        println!(
            "{}  {}  {}  {}",
            output::time(event.time.as_ref()),
            out.paint(severity_name(event.severity), severity_tone(event.severity)),
            event.kind,
            event.message
        );
    }
}

fn journaled_json(e: &pb::JournaledEvent) -> serde_json::Value {
    event_json(e.revision, &e.event.clone().unwrap_or_default())
}

fn event_json(revision: u64, event: &pb::Event) -> serde_json::Value {
    json!({
        "revision": revision,
        "id": event.id,
        "time": output::time(event.time.as_ref()),
        "kind": event.kind,
        "severity": severity_name(event.severity),
        "message": event.message,
        "source": event.source,
        "project_id": event.project_id,
        "environment": event.environment,
        "attributes": event.attributes,
    })
}

fn severity_name(severity: i32) -> &'static str {
    match pb::EventSeverity::try_from(severity) {
        Ok(pb::EventSeverity::Info) => "info",
        Ok(pb::EventSeverity::Warning) => "warning",
        Ok(pb::EventSeverity::Error) => "error",
        Ok(pb::EventSeverity::Critical) => "critical",
        _ => "unspecified",
    }
}

fn severity_tone(severity: i32) -> Tone {
    match pb::EventSeverity::try_from(severity) {
        Ok(pb::EventSeverity::Warning) => Tone::Warn,
        Ok(pb::EventSeverity::Error | pb::EventSeverity::Critical) => Tone::Bad,
        _ => Tone::Plain,
    }
}

fn severity_cell(severity: i32) -> Cell {
    Cell::toned(severity_name(severity), severity_tone(severity))
}
