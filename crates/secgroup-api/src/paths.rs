//! The endpoints, and the few helpers that build their URLs.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/v1/status` | [`Status`](crate::Status) |
//! | GET | `/v1/security-groups` | `Vec<`[`SecurityGroupSummary`](crate::SecurityGroupSummary)`>` |
//! | GET | `/v1/security-groups/{id}` | [`SecurityGroupDetail`](crate::SecurityGroupDetail) |
//! | GET | `/v1/instances` | `Vec<`[`InstanceSummary`](crate::InstanceSummary)`>` |
//! | GET | `/v1/instances/{id}` | [`InstanceDetail`](crate::InstanceDetail) |
//! | GET | `/v1/conntrack?instance=ID&limit=N` | [`ConntrackList`](crate::ConntrackList) |
//! | POST | `/v1/conntrack/flush?instance=ID` (or `?all=true`) | [`FlushResult`](crate::FlushResult) |
//! | POST | `/v1/trace` with [`TraceRequest`](crate::TraceRequest) | [`TraceResponse`](crate::TraceResponse) |
//! | POST | `/v1/reload` | [`ReloadReport`](crate::ReloadReport) |
//! | GET | `/v1/events?instance=ID&direction=D&verdict=V&group=SG` | a stream of [`StreamLine`](crate::StreamLine)s, one JSON object per line |

pub const STATUS: &str = "/v1/status";
pub const SECURITY_GROUPS: &str = "/v1/security-groups";
pub const INSTANCES: &str = "/v1/instances";
pub const CONNTRACK: &str = "/v1/conntrack";
pub const CONNTRACK_FLUSH: &str = "/v1/conntrack/flush";
pub const TRACE: &str = "/v1/trace";
pub const RELOAD: &str = "/v1/reload";
pub const EVENTS: &str = "/v1/events";

/// Conntrack entries returned when the query names no limit.
pub const DEFAULT_CONNTRACK_LIMIT: usize = 100;
/// The largest limit a conntrack query may ask for.
pub const MAX_CONNTRACK_LIMIT: usize = 100_000;

pub fn security_group(id: &str) -> String {
    format!("{SECURITY_GROUPS}/{}", encode(id))
}

pub fn instance(id: &str) -> String {
    format!("{INSTANCES}/{}", encode(id))
}

pub fn conntrack(instance: Option<&str>, limit: Option<usize>) -> String {
    let mut query = Vec::new();
    if let Some(instance) = instance {
        query.push(format!("instance={}", encode(instance)));
    }
    if let Some(limit) = limit {
        query.push(format!("limit={limit}"));
    }
    with_query(CONNTRACK, &query)
}

/// `None` flushes every interface's entries.
pub fn conntrack_flush(instance: Option<&str>) -> String {
    match instance {
        Some(instance) => with_query(CONNTRACK_FLUSH, &[format!("instance={}", encode(instance))]),
        None => with_query(CONNTRACK_FLUSH, &["all=true".to_owned()]),
    }
}

/// The event stream with `filter`'s query parameters.
pub fn events(filter: &crate::EventFilter) -> String {
    let query: Vec<String> = filter
        .query()
        .into_iter()
        .map(|(key, value)| format!("{key}={}", encode(&value)))
        .collect();
    with_query(EVENTS, &query)
}

fn with_query(path: &str, query: &[String]) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters. Ids
/// are made of those already; this keeps a typo from becoming a different
/// path.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes [`encode`] (and `+` for space, as forms send it). `None` for a
/// malformed escape or bytes that are not UTF-8.
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases = [
            (security_group("sg-web"), "/v1/security-groups/sg-web"),
            (instance("ins a/b"), "/v1/instances/ins%20a%2Fb"),
            (conntrack(None, None), "/v1/conntrack"),
            (
                conntrack(Some("ins-1"), Some(5)),
                "/v1/conntrack?instance=ins-1&limit=5",
            ),
            (
                conntrack_flush(Some("ins-1")),
                "/v1/conntrack/flush?instance=ins-1",
            ),
            (conntrack_flush(None), "/v1/conntrack/flush?all=true"),
            (events(&crate::EventFilter::default()), "/v1/events"),
            (
                events(&crate::EventFilter {
                    instance: Some("ins-1".into()),
                    direction: Some(crate::Direction::Egress),
                    verdict: Some(crate::EventVerdict::WouldDrop),
                    group: Some("sg-web".into()),
                }),
                "/v1/events?instance=ins-1&direction=egress&verdict=would-drop&group=sg-web",
            ),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn decoding() {
        let cases = [
            ("ins-1", Some("ins-1")),
            ("ins%20a%2Fb", Some("ins a/b")),
            ("a+b", Some("a b")),
            ("%zz", None),
            ("%4", None),
            ("%ff", None),
        ];
        for (input, expected) in cases {
            assert_eq!(decode(input).as_deref(), expected, "decode({input:?})");
        }
    }
}
