//! One Watch stream that survives server restarts, for every command that follows the
//! journal (`watch`, `events -f`, `health -w`, `top`): it reconnects with backoff, resumes
//! after the last revision it delivered, and starts over from a snapshot when the server
//! asks for a resync. Callers apply what it yields to their state; [`WatchEvent::Reset`]
//! tells them to drop that state first.

use std::time::Duration;

use pharos_proto::v1 as pb;
use pharos_proto::{RESUME_REVISION_TRAILER, RESYNC_TRAILER};
use tonic::{Code, Status};

use crate::client::Client;
use crate::error::CliError;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum WatchEvent {
    /// A snapshot follows: forget the current state.
    Reset,
    Change(Box<pb::Change>),
    /// The snapshot is complete: everything up to this revision has been delivered.
    Synced(u64),
    /// Still everything up to this revision, said by a quiet stream now and then; unlike
    /// `Synced`, not the end of a snapshot.
    Progress(u64),
    /// New points of the selected series arrived (streams with metric_selectors only).
    Metrics,
}

pub struct ResumingWatch {
    client: Client,
    request: pb::WatchRequest,
    stream: Option<tonic::Streaming<pb::WatchResponse>>,
    last_revision: u64,
    /// What the next failed reconnection waits before trying again.
    backoff: Duration,
    /// Set when the stream broke or an attempt failed: a server going away is not hit
    /// again at once.
    pause: Option<Duration>,
    connected_once: bool,
    /// Between a [`WatchEvent::Reset`] and the snapshot's end; a connection that resumes
    /// after a revision ends it too, as no snapshot follows then.
    in_snapshot: bool,
    /// Print notices on stderr (off for full-screen views, which show `notice`).
    pub print_notices: bool,
    /// The last thing said about the connection ("reconnecting in 400ms", ...).
    pub notice: Option<String>,
}

impl ResumingWatch {
    /// `request.since_revision` is where to start (0 for a snapshot).
    pub fn new(client: Client, request: pb::WatchRequest) -> ResumingWatch {
        ResumingWatch {
            client,
            last_revision: request.since_revision,
            request,
            stream: None,
            backoff: FIRST_BACKOFF,
            pause: None,
            connected_once: false,
            in_snapshot: false,
            print_notices: true,
            notice: None,
        }
    }

    pub fn connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether the changes being delivered are a snapshot's contents rather than news.
    pub fn in_snapshot(&self) -> bool {
        self.in_snapshot
    }

    fn say(&mut self, text: String) {
        if self.print_notices {
            eprintln!("pharos: {text}");
        }
        self.notice = Some(text);
    }

    /// The next event. Errors only for what retrying cannot fix (a wrong token, a bad
    /// filter, an unreachable server on the first attempt).
    pub async fn next(&mut self) -> Result<WatchEvent, CliError> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                if let Some(pause) = self.pause.take() {
                    tokio::time::sleep(pause).await;
                }
                let request = pb::WatchRequest {
                    since_revision: self.last_revision,
                    ..self.request.clone()
                };
                match self.open(request).await {
                    Ok(stream) => {
                        if self.connected_once {
                            let text = format!(
                                "reconnected; resuming after revision {}",
                                self.last_revision
                            );
                            self.say(text);
                        } else {
                            self.notice = None;
                        }
                        self.connected_once = true;
                        self.backoff = FIRST_BACKOFF;
                        self.stream = Some(stream);
                        self.in_snapshot = self.last_revision == 0;
                        if self.in_snapshot {
                            return Ok(WatchEvent::Reset);
                        }
                    }
                    Err(Attempt::Resync(message)) => {
                        self.say(format!("{message}; starting over from a fresh snapshot"));
                        self.last_revision = 0;
                    }
                    Err(Attempt::Retry(err)) if self.connected_once => {
                        let text = format!("{err}; reconnecting in {:?}", self.backoff);
                        self.say(text);
                        self.pause = Some(self.backoff);
                        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    }
                    Err(Attempt::Retry(err) | Attempt::Fatal(err)) => return Err(err),
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(message)) => match message.message {
                    Some(pb::watch_response::Message::Change(change)) => {
                        self.last_revision = self.last_revision.max(change.revision);
                        return Ok(WatchEvent::Change(Box::new(change)));
                    }
                    Some(pb::watch_response::Message::SnapshotComplete(done)) => {
                        self.last_revision = done.revision;
                        self.in_snapshot = false;
                        return Ok(WatchEvent::Synced(done.revision));
                    }
                    Some(pb::watch_response::Message::Progress(progress)) => {
                        self.last_revision = self.last_revision.max(progress.revision);
                        return Ok(WatchEvent::Progress(self.last_revision));
                    }
                    // Metric batches come only to streams that select series.
                    Some(pb::watch_response::Message::Metrics(_)) => {
                        return Ok(WatchEvent::Metrics);
                    }
                    None => {}
                },
                Ok(None) => {
                    self.stream = None;
                    self.pause = Some(self.backoff);
                    self.say("stream closed by the server; reconnecting".to_owned());
                }
                Err(status) => {
                    self.stream = None;
                    self.pause = Some(self.backoff);
                    if status.metadata().get(RESYNC_TRAILER).is_some() {
                        let text =
                            format!("{}; starting over from a fresh snapshot", status.message());
                        self.say(text);
                        self.last_revision = 0;
                        continue;
                    }
                    if let Some(resume) = resume_revision(&status) {
                        self.last_revision = self.last_revision.max(resume);
                    }
                    match status.code() {
                        Code::Unavailable
                        | Code::ResourceExhausted
                        | Code::Unknown
                        | Code::Internal
                        | Code::Cancelled => {
                            let text =
                                format!("stream interrupted ({}); reconnecting", status.message());
                            self.say(text);
                        }
                        _ => return Err(self.client.error(&status)),
                    }
                }
            }
        }
    }

    async fn open(
        &self,
        request: pb::WatchRequest,
    ) -> Result<tonic::Streaming<pb::WatchResponse>, Attempt> {
        // A resync answers a revision the server cannot resume after; asked for a
        // snapshot, it would only repeat itself, so it is reported like any refusal.
        let resumes = request.since_revision != 0;
        let mut watch = self.client.watch().await.map_err(|err| match err {
            CliError::Unreachable(_) => Attempt::Retry(err),
            err => Attempt::Fatal(err),
        })?;
        match watch.watch(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) if resumes && status.metadata().get(RESYNC_TRAILER).is_some() => {
                Err(Attempt::Resync(status.message().to_owned()))
            }
            Err(status) => match self.client.error(&status) {
                err @ CliError::Unreachable(_) => Err(Attempt::Retry(err)),
                err => Err(Attempt::Fatal(err)),
            },
        }
    }
}

/// What a live view's watch task reports after each event.
#[derive(Debug)]
pub struct Update {
    pub event: Result<WatchEvent, CliError>,
    pub connected: bool,
    pub notice: Option<String>,
}

impl ResumingWatch {
    /// Runs the stream in its own task, so a view can redraw on a timer without
    /// cancelling a connection attempt half-way. The task ends after the first error or
    /// when the receiver is dropped.
    pub fn spawn(mut self) -> tokio::sync::mpsc::Receiver<Update> {
        let (sender, receiver) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let event = self.next().await;
                let failed = event.is_err();
                let update = Update {
                    event,
                    connected: self.connected(),
                    notice: self.notice.clone(),
                };
                if sender.send(update).await.is_err() || failed {
                    break;
                }
            }
        });
        receiver
    }
}

enum Attempt {
    Resync(String),
    Retry(CliError),
    Fatal(CliError),
}

fn resume_revision(status: &Status) -> Option<u64> {
    status
        .metadata()
        .get(RESUME_REVISION_TRAILER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}
