//! URL → [`ApiRequest`]: paths, methods, query strings and bodies, checked
//! in the order a client can fix them (404, then 405, then 400). Pure, so
//! every error path is tested without a socket.

use secgroup_api::paths;
use secgroup_api::{EventFilter, EventVerdict, TraceRequest, paths::decode};

use crate::event::{ApiError, ApiRequest};
use crate::metrics::Format;

/// Where the metrics are, on the API socket and on `--metrics-listen`.
pub const METRICS: &str = "/metrics";

/// A known path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Status,
    SecurityGroups,
    SecurityGroup(String),
    Instances,
    Instance(String),
    Conntrack,
    ConntrackFlush,
    Trace,
    Reload,
}

/// The most a request body may hold: traces are a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

impl Endpoint {
    /// `None` for a path the API does not have.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let item = |prefix: &str| -> Option<String> {
            let rest = path.strip_prefix(prefix)?.strip_prefix('/')?;
            (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
        };
        Some(match path {
            paths::STATUS => Endpoint::Status,
            paths::SECURITY_GROUPS => Endpoint::SecurityGroups,
            paths::INSTANCES => Endpoint::Instances,
            paths::CONNTRACK => Endpoint::Conntrack,
            paths::CONNTRACK_FLUSH => Endpoint::ConntrackFlush,
            paths::TRACE => Endpoint::Trace,
            paths::RELOAD => Endpoint::Reload,
            _ => {
                if let Some(id) = item(paths::SECURITY_GROUPS) {
                    Endpoint::SecurityGroup(id)
                } else if let Some(id) = item(paths::INSTANCES) {
                    Endpoint::Instance(id)
                } else {
                    return None;
                }
            }
        })
    }

    /// The one method the endpoint answers.
    pub fn method(&self) -> &'static str {
        if self.mutating() { "POST" } else { "GET" }
    }

    /// Whether it changes something: only the admin group may call these.
    pub fn mutating(&self) -> bool {
        matches!(
            self,
            Endpoint::ConntrackFlush | Endpoint::Trace | Endpoint::Reload
        )
    }

    /// The request, from the query string and body.
    pub fn request(self, query: Option<&str>, body: &[u8]) -> Result<ApiRequest, ApiError> {
        let query = Query::parse(query.unwrap_or_default())?;
        let decode_id = |id: String| {
            decode(&id).ok_or_else(|| ApiError::bad_request(format!("malformed id {id:?}")))
        };
        let accepts = |keys: &[&str]| query.only(keys);
        let empty_body = || {
            if body.iter().all(u8::is_ascii_whitespace) {
                Ok(())
            } else {
                Err(ApiError::bad_request("this endpoint takes no request body"))
            }
        };
        match self {
            Endpoint::Status => accepts(&[]).map(|()| ApiRequest::Status),
            Endpoint::SecurityGroups => accepts(&[]).map(|()| ApiRequest::SecurityGroups),
            Endpoint::SecurityGroup(id) => {
                accepts(&[])?;
                Ok(ApiRequest::SecurityGroup(decode_id(id)?))
            }
            Endpoint::Instances => accepts(&[]).map(|()| ApiRequest::Instances),
            Endpoint::Instance(id) => {
                accepts(&[])?;
                Ok(ApiRequest::Instance(decode_id(id)?))
            }
            Endpoint::Conntrack => {
                accepts(&["instance", "limit"])?;
                let limit = match query.get("limit") {
                    None => paths::DEFAULT_CONNTRACK_LIMIT,
                    Some(text) => match text.parse::<usize>() {
                        Ok(n) if (1..=paths::MAX_CONNTRACK_LIMIT).contains(&n) => n,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "limit must be a number from 1 to {}, not {text:?}",
                                paths::MAX_CONNTRACK_LIMIT
                            )));
                        }
                    },
                };
                Ok(ApiRequest::Conntrack {
                    instance: query.get("instance").map(str::to_owned),
                    limit,
                })
            }
            Endpoint::ConntrackFlush => {
                accepts(&["instance", "all"])?;
                empty_body()?;
                match (query.get("instance"), query.get("all")) {
                    (Some(instance), None) => Ok(ApiRequest::FlushConntrack {
                        instance: Some(instance.to_owned()),
                    }),
                    (None, Some("true")) => Ok(ApiRequest::FlushConntrack { instance: None }),
                    _ => Err(ApiError::bad_request(
                        "name the instance whose flows to flush (?instance=ID), or flush every interface with ?all=true",
                    )),
                }
            }
            Endpoint::Trace => {
                accepts(&[])?;
                let request: TraceRequest = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid trace request: {e}")))?;
                Ok(ApiRequest::Trace(request))
            }
            Endpoint::Reload => {
                accepts(&[])?;
                empty_body()?;
                Ok(ApiRequest::Reload)
            }
        }
    }
}

/// A decoded query string; a key given twice is an error.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(text: &str) -> Result<Query, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in text.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let malformed = || ApiError::bad_request(format!("malformed query parameter {part:?}"));
            let key = decode(key).ok_or_else(malformed)?;
            let value = decode(value).ok_or_else(malformed)?;
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(ApiError::bad_request(format!(
                    "query parameter {key:?} given twice"
                )));
            }
            pairs.push((key, value));
        }
        Ok(Query(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses parameters outside `keys`: a misspelt filter must not
    /// silently widen a query (or a flush).
    fn only(&self, keys: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, _)| !keys.contains(&k.as_str())) {
            None => Ok(()),
            Some((key, _)) if keys.is_empty() => Err(ApiError::bad_request(format!(
                "unknown query parameter {key:?}; this endpoint takes none"
            ))),
            Some((key, _)) => Err(ApiError::bad_request(format!(
                "unknown query parameter {key:?}; expected {}",
                keys.join(", ")
            ))),
        }
    }
}

/// `GET /metrics`, in the format `accept` (the `Accept` header) asks for;
/// `None` for any other path. Read-only: anyone may scrape.
pub fn metrics(
    method: &str,
    path: &str,
    query: Option<&str>,
    accept: Option<&str>,
) -> Option<Result<Format, ApiError>> {
    if path != METRICS {
        return None;
    }
    let format = || {
        if method != "GET" {
            return Err(ApiError::method_not_allowed(method, path, "GET"));
        }
        Query::parse(query.unwrap_or_default())?.only(&[])?;
        Ok(Format::from_accept(accept))
    };
    Some(format())
}

/// `GET /v1/events`: the filter its query asks for; `None` for any other
/// path. Read-only: anyone may watch. Whether the instance and group
/// exist is the server's to check against the snapshot.
pub fn events(
    method: &str,
    path: &str,
    query: Option<&str>,
) -> Option<Result<EventFilter, ApiError>> {
    if path != paths::EVENTS {
        return None;
    }
    let filter = || {
        if method != "GET" {
            return Err(ApiError::method_not_allowed(method, path, "GET"));
        }
        let query = Query::parse(query.unwrap_or_default())?;
        query.only(&["instance", "direction", "verdict", "group"])?;
        let word = |key: &str, value: &str, expected: &str| {
            ApiError::bad_request(format!("unknown {key} {value:?}; expected {expected}"))
        };
        let non_empty = |key: &str| match query.get(key) {
            Some("") => Err(ApiError::bad_request(format!(
                "empty {key}; leave the parameter out to see every {key}"
            ))),
            other => Ok(other.map(str::to_owned)),
        };
        Ok(EventFilter {
            instance: non_empty("instance")?,
            group: non_empty("group")?,
            direction: query
                .get("direction")
                .map(|d| {
                    secgroup_api::Direction::parse(d)
                        .ok_or_else(|| word("direction", d, "ingress or egress"))
                })
                .transpose()?,
            verdict: query
                .get("verdict")
                .map(|v| {
                    EventVerdict::parse(v)
                        .ok_or_else(|| word("verdict", v, "accept, drop or would-drop"))
                })
                .transpose()?,
        })
    };
    Some(filter())
}

/// Resolves a request line as far as path and method; the caller checks
/// authorisation between this and [`Endpoint::request`].
pub fn endpoint(method: &str, path: &str) -> Result<Endpoint, ApiError> {
    let endpoint = Endpoint::from_path(path).ok_or_else(|| ApiError::no_such_path(path))?;
    if method != endpoint.method() {
        return Err(ApiError::method_not_allowed(
            method,
            path,
            endpoint.method(),
        ));
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, target: &str, body: &str, expected: Result<ApiRequest, (u16, &str)>) {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let got = endpoint(method, path).and_then(|e| e.request(query, body.as_bytes()));
        match (got, expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{method} {target}"),
            (Err(e), Err((status, message))) => {
                assert_eq!(
                    (e.status, e.body.error.as_str()),
                    (status, message),
                    "{method} {target}"
                );
            }
            (got, expected) => panic!("{method} {target}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn requests() {
        use ApiRequest::*;
        check("GET", "/v1/status", "", Ok(Status));
        check("GET", "/v1/security-groups", "", Ok(SecurityGroups));
        check(
            "GET",
            "/v1/security-groups/sg-web",
            "",
            Ok(SecurityGroup("sg-web".into())),
        );
        check("GET", "/v1/instances", "", Ok(Instances));
        check(
            "GET",
            "/v1/instances/ins%2D1",
            "",
            Ok(Instance("ins-1".into())),
        );
        check(
            "GET",
            "/v1/conntrack",
            "",
            Ok(Conntrack {
                instance: None,
                limit: 100,
            }),
        );
        check(
            "GET",
            "/v1/conntrack?instance=ins-1&limit=5",
            "",
            Ok(Conntrack {
                instance: Some("ins-1".into()),
                limit: 5,
            }),
        );
        check(
            "POST",
            "/v1/conntrack/flush?instance=ins-1",
            "",
            Ok(FlushConntrack {
                instance: Some("ins-1".into()),
            }),
        );
        check(
            "POST",
            "/v1/conntrack/flush?all=true",
            "",
            Ok(FlushConntrack { instance: None }),
        );
        check("POST", "/v1/reload", "", Ok(Reload));
        check(
            "POST",
            "/v1/trace",
            r#"{"instance":"ins-1","direction":"egress","protocol":"udp","remote":"203.0.113.9","port":53}"#,
            Ok(Trace(TraceRequest {
                port: Some(53),
                ..TraceRequest::new(
                    "ins-1",
                    secgroup_api::Direction::Egress,
                    "udp",
                    "203.0.113.9".parse().unwrap_or_else(|e| panic!("{e}")),
                )
            })),
        );
    }

    #[test]
    fn metrics_path() {
        let check =
            |method, target: &str, accept, expected: Option<Result<Format, (u16, &str)>>| {
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (target, None),
                };
                let got = metrics(method, path, query, accept)
                    .map(|r| r.map_err(|e| (e.status, e.body.error)));
                let expected = expected.map(|r| r.map_err(|(s, m)| (s, m.to_owned())));
                assert_eq!(got, expected, "{method} {target}");
            };
        check("GET", "/metrics", None, Some(Ok(Format::Prometheus)));
        check(
            "GET",
            "/metrics",
            Some("application/openmetrics-text; version=1.0.0"),
            Some(Ok(Format::OpenMetrics)),
        );
        check("GET", "/v1/status", None, None);
        check("GET", "/metrics/x", None, None);
        check(
            "POST",
            "/metrics",
            None,
            Some(Err((405, "POST is not allowed on /metrics; use GET"))),
        );
        check(
            "GET",
            "/metrics?name=x",
            None,
            Some(Err((
                400,
                "unknown query parameter \"name\"; this endpoint takes none",
            ))),
        );
    }

    #[test]
    fn events_path() {
        let check = |method, target: &str, expected: Option<Result<EventFilter, (u16, &str)>>| {
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            let got = events(method, path, query).map(|r| r.map_err(|e| (e.status, e.body.error)));
            let expected = expected.map(|r| r.map_err(|(s, m)| (s, m.to_owned())));
            assert_eq!(got, expected, "{method} {target}");
        };
        check("GET", "/v1/events", Some(Ok(EventFilter::default())));
        check(
            "GET",
            "/v1/events?instance=ins-db-1&direction=ingress&verdict=would-drop&group=sg-db",
            Some(Ok(EventFilter {
                instance: Some("ins-db-1".into()),
                direction: Some(secgroup_api::Direction::Ingress),
                verdict: Some(EventVerdict::WouldDrop),
                group: Some("sg-db".into()),
            })),
        );
        check("GET", "/v1/status", None);
        check(
            "POST",
            "/v1/events",
            Some(Err((405, "POST is not allowed on /v1/events; use GET"))),
        );
        check(
            "GET",
            "/v1/events?verdict=dropped",
            Some(Err((
                400,
                "unknown verdict \"dropped\"; expected accept, drop or would-drop",
            ))),
        );
        check(
            "GET",
            "/v1/events?direction=in",
            Some(Err((
                400,
                "unknown direction \"in\"; expected ingress or egress",
            ))),
        );
        check(
            "GET",
            "/v1/events?instance=",
            Some(Err((
                400,
                "empty instance; leave the parameter out to see every instance",
            ))),
        );
        check(
            "GET",
            "/v1/events?sg=sg-db",
            Some(Err((
                400,
                "unknown query parameter \"sg\"; expected instance, direction, verdict, group",
            ))),
        );
    }

    #[test]
    fn errors() {
        check(
            "GET",
            "/v2/status",
            "",
            Err((
                404,
                "no endpoint \"/v2/status\"; see /v1/status, /v1/security-groups, /v1/instances, /v1/conntrack, /v1/trace, /v1/reload, /v1/events",
            )),
        );
        check(
            "GET",
            "/v1/instances/a/b",
            "",
            Err((
                404,
                "no endpoint \"/v1/instances/a/b\"; see /v1/status, /v1/security-groups, /v1/instances, /v1/conntrack, /v1/trace, /v1/reload, /v1/events",
            )),
        );
        check(
            "POST",
            "/v1/status",
            "",
            Err((405, "POST is not allowed on /v1/status; use GET")),
        );
        check(
            "GET",
            "/v1/reload",
            "",
            Err((405, "GET is not allowed on /v1/reload; use POST")),
        );
        check(
            "DELETE",
            "/v1/instances/x",
            "",
            Err((405, "DELETE is not allowed on /v1/instances/x; use GET")),
        );
        check(
            "GET",
            "/v1/conntrack?limit=0",
            "",
            Err((400, "limit must be a number from 1 to 100000, not \"0\"")),
        );
        check(
            "GET",
            "/v1/conntrack?limit=lots",
            "",
            Err((400, "limit must be a number from 1 to 100000, not \"lots\"")),
        );
        check(
            "GET",
            "/v1/conntrack?instanse=x",
            "",
            Err((
                400,
                "unknown query parameter \"instanse\"; expected instance, limit",
            )),
        );
        check(
            "GET",
            "/v1/conntrack?limit=1&limit=2",
            "",
            Err((400, "query parameter \"limit\" given twice")),
        );
        check(
            "GET",
            "/v1/status?x=%zz",
            "",
            Err((400, "malformed query parameter \"x=%zz\"")),
        );
        check(
            "GET",
            "/v1/status?verbose",
            "",
            Err((
                400,
                "unknown query parameter \"verbose\"; this endpoint takes none",
            )),
        );
        check(
            "POST",
            "/v1/conntrack/flush",
            "",
            Err((
                400,
                "name the instance whose flows to flush (?instance=ID), or flush every interface with ?all=true",
            )),
        );
        check(
            "POST",
            "/v1/conntrack/flush?all=yes",
            "",
            Err((
                400,
                "name the instance whose flows to flush (?instance=ID), or flush every interface with ?all=true",
            )),
        );
        check(
            "POST",
            "/v1/reload",
            "{}",
            Err((400, "this endpoint takes no request body")),
        );
        check(
            "POST",
            "/v1/trace",
            "{",
            Err((
                400,
                "invalid trace request: EOF while parsing an object at line 1 column 1",
            )),
        );
        check(
            "POST",
            "/v1/trace",
            r#"{"instance":"ins-1","direction":"up","protocol":"tcp","remote":"203.0.113.9"}"#,
            Err((
                400,
                "invalid trace request: unknown variant `up`, expected `ingress` or `egress` at line 1 column 36",
            )),
        );
    }
}
