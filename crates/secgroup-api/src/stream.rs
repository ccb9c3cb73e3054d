//! The client side of `GET /v1/events`: a chunked HTTP body read as it
//! arrives, one [`StreamLine`] per line. Blocking, like the rest of the
//! client: `secgroupctl monitor` does nothing else while it waits.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::client::{ClientError, parse_head, parse_response};
use crate::events::StreamLine;

/// The lines of an event stream, until the daemon closes it.
pub struct EventLines {
    reader: BufReader<Chunked>,
    socket: UnixStream,
}

impl EventLines {
    /// Sends the request on `stream` and reads the answer's head; a status
    /// other than 200 is the daemon's error. `timeout` bounds the request
    /// and the head; reading lines waits as long as
    /// [`EventLines::set_read_timeout`] says (forever by default).
    pub(crate) fn open(
        mut stream: UnixStream,
        timeout: Duration,
        path: &str,
    ) -> Result<EventLines, ClientError> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: secgroup-api\r\nConnection: close\r\n\
             Accept: application/x-ndjson\r\n\r\n"
        );
        stream.write_all(request.as_bytes())?;
        let socket = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let n = reader.read_until(b'\n', &mut head)?;
            if n == 0 {
                return Err(ClientError::Malformed("no end of headers".to_owned()));
            }
        }
        let response = parse_head(head.strip_suffix(b"\r\n\r\n").unwrap_or(&head))?;
        if response.status != 200 {
            // The error is a small JSON document: read it whole.
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest)?;
            head.extend_from_slice(&rest);
            return parse_response(&head)?
                .json::<()>()
                .and(Err(ClientError::Malformed(
                    "an error status with a success body".to_owned(),
                )));
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
        if !chunked {
            return Err(ClientError::Malformed(
                "the event stream is not chunked".to_owned(),
            ));
        }
        socket.set_read_timeout(None)?;
        Ok(EventLines {
            reader: BufReader::new(Chunked {
                inner: reader,
                left: 0,
                done: false,
            }),
            socket,
        })
    }

    /// How long reading the next line may wait; `None`: forever.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        Ok(self.socket.set_read_timeout(timeout)?)
    }
}

impl Iterator for EventLines {
    type Item = Result<StreamLine, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(serde_json::from_str(line.trim_end()).map_err(ClientError::from)),
            Err(e) => Some(Err(ClientError::Io(e))),
        }
    }
}

/// A chunked body as a plain byte stream (extensions and trailers
/// ignored).
struct Chunked {
    inner: BufReader<UnixStream>,
    /// Bytes left in the current chunk.
    left: usize,
    done: bool,
}

impl Chunked {
    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.inner.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the stream mid-chunk",
            ));
        }
        Ok(line)
    }
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.left == 0 {
            if self.done {
                return Ok(0);
            }
            let line = self.line()?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            if size_text.is_empty() {
                // The CRLF that ends the previous chunk.
                continue;
            }
            let size = usize::from_str_radix(size_text, 16).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "bad chunk size in the stream")
            })?;
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let n = self.left.min(buf.len());
        let n = self.inner.read(&mut buf[..n])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the stream mid-chunk",
            ));
        }
        self.left -= n;
        Ok(n)
    }
}
