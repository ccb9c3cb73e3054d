//! The HTTP side of the API: accepts connections on the Unix socket, reads
//! each request, checks it ([`routes`]) and the caller ([`auth`]),
//! answers reads from the snapshot in force, hands mutations to the engine
//! and writes back what it answers. `GET /metrics` is a read like the
//! others, also served over TCP with `--metrics-listen` ([`serve_metrics`]:
//! nothing else there). `GET /v1/events` streams ([`crate::stream`]). No
//! daemon state lives here.

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener, UnixStream};

use secgroup_dataplane::Observer;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use crate::auth::{self, Peer};
use crate::event::{ApiError, ApiReply, ApiRequest, Event, Mutation};
use crate::metrics::Format;
use crate::state::InForce;
use crate::trace::TracePorts;
use crate::views::StatusCache;
use crate::{metrics, routes, views};

/// How long a request may wait for the main loop (a reload of a huge rules
/// directory is the slowest thing ahead of it).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the API until the process exits.
/// What reads need: the snapshot in force, a read handle on the kernel's
/// counters, and the trace ports.
pub struct Reads {
    pub snapshots: watch::Receiver<Arc<InForce>>,
    pub observer: Observer,
    pub ports: TracePorts,
    /// Verdict events as they are read from the kernel.
    pub verdicts: crate::verdicts::Publisher,
}

/// Every answer's body: a whole document, or the event stream.
pub type Body = BoxBody<Bytes, Infallible>;

pub async fn serve(
    listener: UnixListener,
    events: mpsc::Sender<Event>,
    admin_gid: Option<u32>,
    reads: Arc<Reads>,
) {
    let status = Arc::new(StatusCache::default());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off rather than spin.
                warn!(error = %e, "accepting an API connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = peer_of(&stream);
        let may_mutate = peer
            .as_ref()
            .is_some_and(|p| auth::may_mutate(p, admin_gid));
        debug!(?peer, may_mutate, "API connection");
        let events = events.clone();
        let reads = reads.clone();
        let status = status.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let reads = Served {
                    reads: reads.clone(),
                    status: status.clone(),
                };
                handle(request, events.clone(), reads, may_mutate)
            });
            // A client that connects and says nothing (or idles between
            // requests) does not hold a connection forever.
            if let Err(e) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "API connection ended with an error");
            }
        });
    }
}

/// SO_PEERCRED plus the supplementary groups; `None` if the kernel would
/// not say (then only read-only calls are allowed).
fn peer_of(stream: &UnixStream) -> Option<Peer> {
    let cred = stream.peer_cred().ok()?;
    Some(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        groups: cred
            .pid()
            .map(auth::supplementary_groups)
            .unwrap_or_default(),
    })
}

/// What one connection's requests are answered from.
struct Served {
    reads: Arc<Reads>,
    /// Shared by every connection of the listener.
    status: Arc<StatusCache>,
}

async fn handle(
    request: Request<Incoming>,
    events: mpsc::Sender<Event>,
    served: Served,
    may_mutate: bool,
) -> Result<Response<Body>, Infallible> {
    let Served { reads, status } = served;
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    if let Some(format) = metrics_format(&request) {
        return Ok(scrape(format, reads).await.map(BodyExt::boxed));
    }
    if let Some(filter) = routes::events(&method, &path, request.uri().query()) {
        let now = reads.snapshots.borrow().clone();
        return Ok(
            match filter.and_then(|filter| crate::stream::check(&now, filter)) {
                Ok(filter) => crate::stream::respond(filter, reads.verdicts.subscribe()),
                Err(e) => {
                    debug!(%method, %path, status = e.status, error = %e.body.error, "API error");
                    respond(Err(e)).map(BodyExt::boxed)
                }
            },
        );
    }
    let reply = answer(request, events, reads, &status, may_mutate).await;
    if let Err(e) = &reply {
        debug!(%method, %path, status = e.status, error = %e.body.error, "API error");
    }
    Ok(respond(reply).map(BodyExt::boxed))
}

async fn answer(
    request: Request<Incoming>,
    events: mpsc::Sender<Event>,
    reads: Arc<Reads>,
    status: &Arc<StatusCache>,
    may_mutate: bool,
) -> ApiReply {
    let endpoint = routes::endpoint(request.method().as_str(), request.uri().path())?;
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    // The body is read before any refusal: a client still sending it when
    // the connection closes would see a broken pipe instead of our answer.
    let body = Limited::new(request.into_body(), routes::MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::too_large(routes::MAX_BODY)
            } else {
                ApiError::bad_request(format!("reading the request body: {e}"))
            }
        })?
        .to_bytes();
    if endpoint.mutating() && !may_mutate {
        return Err(ApiError::forbidden(format!(
            "only root and members of group {} may call {} {path}",
            auth::ADMIN_GROUP,
            endpoint.method(),
        )));
    }
    let mutation = match endpoint.request(query.as_deref(), &body)? {
        ApiRequest::Reload => Mutation::Reload,
        ApiRequest::FlushConntrack { instance } => Mutation::FlushConntrack { instance },
        // From the snapshot alone, encoded once per snapshot (off the
        // async workers too: the first encoding of a big one takes
        // milliseconds).
        ApiRequest::Status => {
            let now = reads.snapshots.borrow().clone();
            let status = Arc::clone(status);
            return tokio::task::spawn_blocking(move || status.answer(&now))
                .await
                .unwrap_or_else(|e| Err(ApiError::internal(format!("answering failed: {e}"))));
        }
        read => {
            // The snapshot in force now; the map reads block, so off the
            // async workers. Never waits for the engine.
            let now = reads.snapshots.borrow().clone();
            return tokio::task::spawn_blocking(move || {
                views::answer(&now, &reads.observer, &reads.ports, read)
            })
            .await
            .unwrap_or_else(|e| Err(ApiError::internal(format!("answering failed: {e}"))));
        }
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    events
        .send(Event::Mutate(mutation, reply_tx))
        .await
        .map_err(|_| ApiError::unavailable("secgroupd is shutting down"))?;
    match tokio::time::timeout(REPLY_TIMEOUT, reply_rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => Err(ApiError::unavailable("secgroupd is shutting down")),
        Err(_) => Err(ApiError::unavailable("secgroupd did not answer in time")),
    }
}

/// `Some` for a request to `/metrics`: the format, or why not.
fn metrics_format(request: &Request<Incoming>) -> Option<Result<Format, ApiError>> {
    let accept = request
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    routes::metrics(
        request.method().as_str(),
        request.uri().path(),
        request.uri().query(),
        accept,
    )
}

/// Answers `/metrics` from the snapshot in force and the counters; never
/// waits for the engine.
async fn scrape(format: Result<Format, ApiError>, reads: Arc<Reads>) -> Response<Full<Bytes>> {
    let scraped = match format {
        Err(e) => Err(e),
        Ok(format) => {
            let now = reads.snapshots.borrow().clone();
            tokio::task::spawn_blocking(move || {
                metrics::scrape(&now, &reads.observer, format).map(|text| (format, text))
            })
            .await
            .unwrap_or_else(|e| Err(ApiError::internal(format!("answering failed: {e}"))))
        }
    };
    match scraped {
        Ok((format, text)) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            response
        }
        Err(e) => {
            debug!(status = e.status, error = %e.body.error, "metrics error");
            respond(Err(e))
        }
    }
}

/// Serves `GET /metrics` on `listener` (`--metrics-listen`) until the
/// process exits: read-only, so no authentication; every other path is a
/// 404.
pub async fn serve_metrics(listener: TcpListener, reads: Arc<Reads>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!(error = %e, "accepting a metrics connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let reads = reads.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let reads = reads.clone();
                async move {
                    let format = metrics_format(&request).unwrap_or_else(|| {
                        Err(ApiError {
                            status: 404,
                            body: secgroup_api::ErrorBody {
                                error: format!(
                                    "no endpoint {:?}; this listener serves only GET {}",
                                    request.uri().path(),
                                    routes::METRICS
                                ),
                                known: None,
                            },
                            allow: None,
                        })
                    });
                    Ok::<_, Infallible>(scrape(format, reads).await)
                }
            });
            if let Err(e) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

fn respond(reply: ApiReply) -> Response<Full<Bytes>> {
    let (status, body, allow) = match reply {
        Ok(body) => (200, body, None),
        Err(e) => {
            let mut body = serde_json::to_vec_pretty(&e.body)
                // Cannot fail for this type; answer rather than drop the
                // connection if it ever does.
                .unwrap_or_else(|_| br#"{"error":"encoding the error failed"}"#.to_vec());
            body.push(b'\n');
            (e.status, body, e.allow)
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    response
}
