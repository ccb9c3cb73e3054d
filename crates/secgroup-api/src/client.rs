//! A blocking client: one HTTP/1.1 request per connection over the Unix
//! socket. Small on purpose: a CLI that asks one question needs no async
//! runtime, and the daemon's answers are small JSON documents.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::ErrorBody;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens on the socket, or we may not connect to it.
    #[error("cannot connect to secgroupd at {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    /// The connection broke or timed out.
    #[error("talking to secgroupd: {0}")]
    Io(#[from] io::Error),
    /// The answer is not the HTTP we expect.
    #[error("malformed answer from secgroupd: {0}")]
    Malformed(String),
    /// The daemon answered with an error status.
    #[error("secgroupd answered {status}: {}", body.error)]
    Api { status: u16, body: ErrorBody },
    /// A body is not the JSON we expect.
    #[error("unexpected JSON from secgroupd: {0}")]
    Json(#[from] serde_json::Error),
}

/// An answer as it came: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded as `T` for a 2xx status, as [`ClientError::Api`]
    /// otherwise.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        if (200..300).contains(&self.status) {
            return Ok(serde_json::from_slice(&self.body)?);
        }
        let body = serde_json::from_slice(&self.body).unwrap_or_else(|_| ErrorBody {
            error: String::from_utf8_lossy(&self.body).trim().to_owned(),
            known: None,
        });
        Err(ClientError::Api {
            status: self.status,
            body,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    /// A client of the daemon listening at `socket`; calls time out after
    /// 30 seconds.
    pub fn new(socket: impl AsRef<Path>) -> Client {
        Client {
            socket: socket.as_ref().to_owned(),
            timeout: Duration::from_secs(30),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request("GET", path, None)?.json()
    }

    /// POSTs `body` as JSON (or nothing).
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let bytes = body.map(serde_json::to_vec).transpose()?;
        self.request("POST", path, bytes.as_deref())?.json()
    }

    /// Opens the event stream (`GET /v1/events`) with `filter`; the first
    /// line is [`crate::StreamLine::Subscribed`].
    pub fn events(&self, filter: &crate::EventFilter) -> Result<crate::EventLines, ClientError> {
        let stream = UnixStream::connect(&self.socket).map_err(|source| ClientError::Connect {
            path: self.socket.clone(),
            source,
        })?;
        crate::EventLines::open(stream, self.timeout, &crate::paths::events(filter))
    }

    /// Sends one request on a fresh connection and reads the whole answer.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<RawResponse, ClientError> {
        let stream = UnixStream::connect(&self.socket).map_err(|source| ClientError::Connect {
            path: self.socket.clone(),
            source,
        })?;
        exchange(stream, self.timeout, method, path, body)
    }
}

/// Writes one request on `stream` and reads the answer to EOF. Public to
/// the crate's users through [`Client::request`]; separate so a caller
/// with a specially made connection (tests connecting under another uid)
/// can use it too.
pub fn exchange(
    mut stream: UnixStream,
    timeout: Duration,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<RawResponse, ClientError> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = body.unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: secgroup-api\r\nConnection: close\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str("\r\n");
    let sent = stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(body));
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    // A server may answer (and close) before reading all we send, e.g. to
    // refuse it: its answer is what matters then, not our broken pipe.
    match (sent, read) {
        (_, Ok(_)) if !answer.is_empty() => parse_response(&answer),
        (Err(e), _) | (Ok(()), Err(e)) => Err(ClientError::Io(e)),
        (Ok(()), Ok(_)) => parse_response(&answer),
    }
}

pub(crate) fn parse_response(bytes: &[u8]) -> Result<RawResponse, ClientError> {
    let malformed = |what: &str| ClientError::Malformed(what.to_owned());
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| malformed("no end of headers"))?;
    let rest = &bytes[split + 4..];
    let mut response = parse_head(&bytes[..split])?;
    response.body = if response
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().map_err(|_| malformed("content-length"))?;
        rest.get(..length)
            .ok_or_else(|| malformed("body shorter than content-length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

/// The status line and headers (without the blank line); the body empty.
pub(crate) fn parse_head(head: &[u8]) -> Result<RawResponse, ClientError> {
    let malformed = |what: &str| ClientError::Malformed(what.to_owned());
    let head = std::str::from_utf8(head).map_err(|_| malformed("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.") {
        return Err(ClientError::Malformed(format!(
            "status line {status_line:?}"
        )));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| ClientError::Malformed(format!("status line {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ClientError::Malformed(format!("header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(RawResponse {
        status,
        headers,
        body: Vec::new(),
    })
}

/// Decodes a chunked body (chunk extensions and trailers ignored).
fn dechunk(mut bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
    let malformed = |what: &str| ClientError::Malformed(format!("chunked body: {what}"));
    let mut out = Vec::new();
    loop {
        let line_end = bytes
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| malformed("no chunk size"))?;
        let line =
            std::str::from_utf8(&bytes[..line_end]).map_err(|_| malformed("size is not text"))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| malformed("bad size"))?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = bytes
            .get(..size)
            .ok_or_else(|| malformed("truncated chunk"))?;
        out.extend_from_slice(chunk);
        bytes = bytes
            .get(size + 2..)
            .ok_or_else(|| malformed("truncated chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(answer: &str, expected: Result<(u16, &str), &str>) {
        let got = parse_response(answer.as_bytes());
        match (got, expected) {
            (Ok(response), Ok((status, body))) => {
                assert_eq!(response.status, status, "status of {answer:?}");
                assert_eq!(
                    String::from_utf8_lossy(&response.body),
                    body,
                    "body of {answer:?}"
                );
            }
            (Err(e), Err(message)) => assert_eq!(e.to_string(), message, "error for {answer:?}"),
            (got, expected) => panic!("parsing {answer:?}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn responses() {
        check(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            Ok((200, "{}")),
        );
        check(
            "HTTP/1.1 404 Not Found\r\n\r\n{\"error\":\"x\"}",
            Ok((404, "{\"error\":\"x\"}")),
        );
        check(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            Ok((200, "abcde")),
        );
        check(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab",
            Err("malformed answer from secgroupd: body shorter than content-length"),
        );
        check(
            "SSH-2.0-OpenSSH\r\n\r\n",
            Err("malformed answer from secgroupd: status line \"SSH-2.0-OpenSSH\""),
        );
        check(
            "HTTP/1.1 200 OK",
            Err("malformed answer from secgroupd: no end of headers"),
        );
    }

    #[test]
    fn error_bodies() {
        let response = RawResponse {
            status: 404,
            headers: Vec::new(),
            body: br#"{"error":"no such instance ins-x","known":["ins-1"]}"#.to_vec(),
        };
        match response.json::<serde_json::Value>() {
            Err(ClientError::Api { status: 404, body }) => {
                assert_eq!(body.known, Some(vec!["ins-1".to_owned()]));
                assert_eq!(body.error, "no such instance ins-x");
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    }
}
