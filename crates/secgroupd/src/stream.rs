//! `GET /v1/events`: newline-delimited JSON, one [`StreamLine`] per line,
//! for as long as the client stays. Each subscriber gets a task that reads
//! the broadcast of verdict events, filters, and hands lines to the
//! response body through a small queue. A client that reads slowly fills
//! its queue, its task falls behind on the broadcast, and the events it
//! missed are counted in a `lost` line: the daemon never waits for it.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Bytes, Frame};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use secgroup_api::{EventFilter, StreamLine, VerdictEvent};
use tokio::sync::{broadcast, mpsc};
use tracing::debug;

use crate::event::ApiError;
use crate::server::Body;
use crate::state::InForce;

/// Lines a response may hold that its client has not read yet.
const QUEUE: usize = 64;

/// Refuses a filter naming an instance or a group the policy in force
/// does not have: a typo would otherwise show nothing, silently.
pub fn check(now: &InForce, filter: EventFilter) -> Result<EventFilter, ApiError> {
    let Some(loaded) = &now.loaded else {
        return Ok(filter);
    };
    if let Some(instance) = &filter.instance {
        let known = loaded
            .policy
            .instances
            .keys()
            .any(|id| id.as_str() == instance);
        if !known {
            let ids = loaded.policy.instances.keys().map(ToString::to_string);
            return Err(unknown("instance", instance, ids.collect()));
        }
    }
    if let Some(group) = &filter.group {
        let known = loaded
            .policy
            .security_groups
            .keys()
            .any(|id| id.as_str() == group);
        if !known {
            let ids = loaded
                .policy
                .security_groups
                .keys()
                .map(ToString::to_string);
            return Err(unknown("security group", group, ids.collect()));
        }
    }
    Ok(filter)
}

/// A 400 (a bad filter), listing what exists.
fn unknown(kind: &str, id: &str, known: Vec<String>) -> ApiError {
    let mut e = ApiError::unknown(kind, id, known);
    e.status = 400;
    e.body.error = format!("filter names no {kind} {id:?} in the policy in force");
    e
}

/// The streaming answer; its task ends when the client goes away.
pub fn respond(
    filter: EventFilter,
    verdicts: broadcast::Receiver<Arc<VerdictEvent>>,
) -> Response<Body> {
    let (lines, queue) = mpsc::channel(QUEUE);
    tokio::spawn(feed(filter, verdicts, lines));
    let mut response = Response::new(http_body_util::BodyExt::boxed(Lines(queue)));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn line(item: &StreamLine) -> Bytes {
    // Serialising these plain types cannot fail; an empty line if it did.
    let mut bytes = serde_json::to_vec(item).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

async fn feed(
    filter: EventFilter,
    mut verdicts: broadcast::Receiver<Arc<VerdictEvent>>,
    lines: mpsc::Sender<Bytes>,
) {
    let subscribed = line(&StreamLine::Subscribed {
        filter: filter.clone(),
    });
    if lines.send(subscribed).await.is_err() {
        return;
    }
    // Lost for this client: behind on the broadcast, or its queue full.
    let mut lost: u64 = 0;
    loop {
        let received = tokio::select! {
            received = verdicts.recv() => received,
            () = lines.closed() => return,
        };
        let event = match received {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Which of those matched is unknown: all are counted.
                lost += n;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !filter.matches(&event) {
            continue;
        }
        if lost > 0 {
            match lines.try_send(line(&StreamLine::Lost { count: lost })) {
                Ok(()) => lost = 0,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    lost += 1;
                    continue;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        match lines.try_send(line(&StreamLine::Event(Box::new((*event).clone())))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => lost += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                debug!("event subscriber gone");
                return;
            }
        }
    }
}

/// The response body: the lines of the queue, as they come.
struct Lines(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Lines {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use secgroup_api::{Direction, EventVerdict, Timestamp};

    fn event(n: u64) -> Arc<VerdictEvent> {
        Arc::new(VerdictEvent {
            time: Timestamp::from_unix_ms(n),
            instance: Some("ins-a".into()),
            interface: None,
            ifindex: 7,
            direction: Direction::Ingress,
            verdict: EventVerdict::Drop,
            reason: "drop-default".into(),
            flow: None,
            rule: None,
            suppressed: 0,
        })
    }

    async fn next_line(body: &mut Body) -> StreamLine {
        let frame = body
            .frame()
            .await
            .unwrap_or_else(|| panic!("the stream ended"))
            .unwrap_or_else(|e| match e {});
        let bytes = frame
            .into_data()
            .unwrap_or_else(|_| panic!("not a data frame"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A client that does not read loses what does not fit its queue,
    /// is told how many, and the publisher never waits for it.
    #[tokio::test]
    async fn a_slow_client_loses_events_and_is_told() {
        let publisher = crate::verdicts::channel();
        let filter = EventFilter {
            instance: Some("ins-a".into()),
            ..EventFilter::default()
        };
        let mut body = respond(filter, publisher.subscribe()).into_body();
        assert!(matches!(
            next_line(&mut body).await,
            StreamLine::Subscribed { .. }
        ));
        const SENT: u64 = 200;
        for n in 0..SENT {
            // Never blocks: a broadcast send only stores.
            publisher
                .send(event(n))
                .unwrap_or_else(|_| panic!("no subscriber"));
            // Let the feeding task move what fits into the queue.
            tokio::task::yield_now().await;
        }
        let mut queued = 0u64;
        let mut lost = 0u64;
        // One more event makes the feed report what it lost so far, once
        // the queue has room again.
        let mut sent_last = false;
        while queued + lost < SENT + 1 {
            match next_line(&mut body).await {
                StreamLine::Event(_) => queued += 1,
                StreamLine::Lost { count } => lost += count,
                StreamLine::Subscribed { .. } => panic!("subscribed twice"),
            }
            if !sent_last && queued >= QUEUE as u64 {
                publisher
                    .send(event(SENT))
                    .unwrap_or_else(|_| panic!("no subscriber"));
                sent_last = true;
            }
        }
        assert!(lost > 0, "nothing was lost for a client that did not read");
        assert_eq!(queued + lost, SENT + 1, "every event is shown or counted");
    }
}
