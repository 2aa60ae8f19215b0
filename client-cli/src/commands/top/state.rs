//! What one frame of `pharos top` shows, built up from the stream's events and the
//! panels' answers; rendering reads it and never changes it.

use std::collections::VecDeque;

use pharos_proto::v1 as pb;

use crate::board::HealthBoard;
use crate::output;
use crate::resume::WatchEvent;

const FEED_LENGTH: usize = 200;

/// Whether a panel has data behind it on this server.
#[derive(Clone, Debug, PartialEq)]
pub enum Panel {
    /// The server does not offer it (absent from reflection, or UNIMPLEMENTED).
    NotOnServer,
    /// The server offers it: the latest answers (or why they failed).
    Live {
        system: Option<Result<Box<pb::GetSystemMetricsResponse>, String>>,
        capacity: Option<Result<Box<pb::GetCapacityResponse>, String>>,
    },
}

impl Panel {
    pub(super) fn live() -> Panel {
        Panel::Live {
            system: None,
            capacity: None,
        }
    }
}

/// One line of the error feed.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEntry {
    pub time: String,
    pub severity: Severity,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

/// Everything one frame shows.
#[derive(Debug)]
pub struct TopState {
    pub server: String,
    pub board: HealthBoard,
    pub feed: VecDeque<FeedEntry>,
    pub metrics: Panel,
    pub connected: bool,
    pub notice: Option<String>,
}

impl TopState {
    pub fn new(server: String, metrics: Panel) -> TopState {
        TopState {
            server,
            board: HealthBoard::default(),
            feed: VecDeque::new(),
            metrics,
            connected: false,
            notice: None,
        }
    }

    /// Applies one stream event: health to the grid, warnings and errors to the feed.
    pub fn apply(&mut self, event: WatchEvent) {
        if let WatchEvent::Change(change) = &event
            && let Some(entry) = feed_entry(change)
        {
            self.feed.push_front(entry);
            self.feed.truncate(FEED_LENGTH);
        }
        self.board.apply(event);
    }
}

/// Events of severity warning and above, and checks that turn degraded or unhealthy.
/// Snapshot entries are current state, not news, so they stay out of the feed.
fn feed_entry(change: &pb::Change) -> Option<FeedEntry> {
    use pb::change::Object;
    if change.kind == pb::ChangeKind::Snapshot as i32 {
        return None;
    }
    let time = output::time(change.commit_time.as_ref());
    match change.object.as_ref()? {
        Object::Event(event) => {
            let severity = match pb::EventSeverity::try_from(event.severity) {
                Ok(pb::EventSeverity::Warning) => Severity::Warning,
                Ok(pb::EventSeverity::Error | pb::EventSeverity::Critical) => Severity::Error,
                _ => return None,
            };
            let concerns = if event.project_id.is_empty() {
                String::new()
            } else {
                format!(" [{}]", event.project_id)
            };
            Some(FeedEntry {
                time,
                severity,
                text: format!(
                    "{}{concerns}: {}",
                    event.kind,
                    event.message.lines().next().unwrap_or_default()
                ),
            })
        }
        Object::CheckHealth(check) => {
            let severity = match pb::HealthStatus::try_from(check.status) {
                Ok(pb::HealthStatus::Degraded) => Severity::Warning,
                Ok(pb::HealthStatus::Unhealthy) => Severity::Error,
                _ => return None,
            };
            let message = check
                .last_result
                .as_ref()
                .map(|r| r.message.as_str())
                .unwrap_or_default();
            Some(FeedEntry {
                time,
                severity,
                text: format!(
                    "{} {}: {}",
                    check.check_id,
                    output::status_name(check.status),
                    message.lines().next().unwrap_or_default()
                ),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_events_enter_the_feed_and_info_events_do_not() {
        let event = |severity: pb::EventSeverity, kind: &str| {
            WatchEvent::Change(Box::new(pb::Change {
                revision: 1,
                topic: pb::WatchTopic::Events as i32,
                kind: pb::ChangeKind::Append as i32,
                key: "event/1".to_owned(),
                commit_time: None,
                object: Some(pb::change::Object::Event(pb::Event {
                    kind: kind.to_owned(),
                    severity: severity as i32,
                    message: "first line\nsecond".to_owned(),
                    ..Default::default()
                })),
            }))
        };
        let mut state = TopState::new(String::new(), Panel::NotOnServer);
        state.apply(event(pb::EventSeverity::Info, "catalog.applied"));
        state.apply(event(pb::EventSeverity::Warning, "catalog.invalid"));
        assert_eq!(state.feed.len(), 1);
        assert_eq!(state.feed[0].text, "catalog.invalid: first line");
        assert_eq!(state.feed[0].severity, Severity::Warning);
    }
}
