//! The live page on the WebSocket's port (edge): a request that is not a WebSocket handshake
//! gets a small page showing one participant's decisions, features and stream states as they
//! happen, read over this same WebSocket like any other client.
//!
//! The page holds no secret and no data: it is three static files (`live/`) compiled into the
//! binary. The user opens `http://127.0.0.1:8765/#token=…` (`attune token` prints it): the
//! token stays in the URL's fragment, which a browser never sends, and the page's script
//! connects with it. The page's own origin (`http://` + the `Host` it was served at) passes the
//! handshake's Origin check ([`super::guard`]); its `Host` is checked here as for a handshake
//! (DNS rebinding would otherwise let a hostile page read it, although it holds nothing).
//!
//! Every response is `Connection: close`, with a strict Content-Security-Policy (scripts,
//! styles and connections only from the page's own address, no frames, no forms) and
//! `no-store`. Only `GET` and `HEAD` of the three paths are served.

use super::guard::{self, Policy};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest request head read. A browser's is usually under 2 KiB, but cookies ignore the
/// port, so those of other servers on `localhost` come along.
const MAX_HEAD: usize = 32 * 1024;

/// Headers per request, at most (tungstenite's own limit).
const MAX_HEADERS: usize = 124;

const INDEX: &str = include_str!("live/index.html");
const SCRIPT: &str = include_str!("live/live.js");
const STYLE: &str = include_str!("live/live.css");

/// What the router needs of a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The path without its query.
    pub path: String,
    /// The `Host` header.
    pub host: Option<String>,
    /// `Upgrade: websocket` was asked for: the WebSocket handshake goes on.
    pub upgrade: bool,
}

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// Longer than 32 KiB.
    #[error("request head longer than {MAX_HEAD} bytes")]
    TooLarge,
    /// Not HTTP.
    #[error("not an HTTP request: {0}")]
    Malformed(String),
    /// The peer closed before the head was complete.
    #[error("connection closed before a complete request")]
    Closed,
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Parses a complete head from `buf`; `Ok(None)` while it is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .map(str::to_owned)
            };
            let path = req.path.unwrap_or("/");
            Ok(Some(Head {
                method: req.method.unwrap_or("").to_owned(),
                path: path.split(['?', '#']).next().unwrap_or("/").to_owned(),
                host: header("host"),
                upgrade: header("upgrade").is_some_and(|u| {
                    u.split(',')
                        .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
                }),
            }))
        }
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

/// Reads a request head from `s`: the head, and every byte read (the WebSocket handshake
/// reads them again through [`Prefixed`]).
pub async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<(Head, Vec<u8>), HeadError> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 2048];
        let want = chunk.len().min(MAX_HEAD - buf.len());
        let n = s.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        // Parse only once the head may have ended (an empty line among the new bytes or
        // just before them): a client sending a byte at a time costs a few parses, not 32,768.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        let tail = &buf[from..];
        let ended =
            tail.windows(2).any(|w| w == b"\n\n") || tail.windows(4).any(|w| w == b"\r\n\r\n");
        // The first bytes are parsed at once too: garbage (TLS, a port scan) is refused early.
        if (ended || from == 0 || buf.len() >= MAX_HEAD)
            && let Some(head) = parse_head(&buf)?
        {
            return Ok((head, buf));
        }
    }
}

/// One HTTP response, complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The bytes to write: status line, headers and (but for `HEAD`) the body.
    pub bytes: Vec<u8>,
    /// The Host check refused it (counted as `refused.host`).
    pub refusal: Option<guard::Refusal>,
}

/// The answer to a request whose head could not be read: 431 for one too long, 400 for one
/// that is not HTTP; `None` when the peer is gone.
pub fn answer_bad_head(e: &HeadError) -> Option<Vec<u8>> {
    let head = Head {
        method: "GET".into(),
        path: "/".into(),
        host: None,
        upgrade: false,
    };
    let (status, body) = match e {
        HeadError::TooLarge => (431, format!("{e}\n")),
        HeadError::Malformed(_) => (400, format!("{e}\n")),
        HeadError::Closed | HeadError::Io(_) => return None,
    };
    Some(reply(status, "text/plain", &[], body.as_bytes(), &head))
}

/// The answer to a request that is not a WebSocket handshake (pure).
pub fn answer(head: &Head, policy: &Policy, enabled: bool) -> Reply {
    let host = match guard::check_host(policy, head.host.as_deref()) {
        Ok(h) => h,
        Err(r) => {
            let body = format!("{}\n", r.reason);
            return Reply {
                status: 403,
                bytes: reply(403, "text/plain", &[], body.as_bytes(), head),
                refusal: Some(r),
            };
        }
    };
    let text = |status, body: &str| Reply {
        status,
        bytes: reply(status, "text/plain", &[], body.as_bytes(), head),
        refusal: None,
    };
    if !enabled {
        return text(404, "the live page is off ([ws] page = false)\n");
    }
    if head.method != "GET" && head.method != "HEAD" {
        return Reply {
            status: 405,
            bytes: reply(
                405,
                "text/plain",
                &[("Allow", "GET, HEAD")],
                b"only GET and HEAD\n",
                head,
            ),
            refusal: None,
        };
    }
    let (kind, body) = match head.path.as_str() {
        "/" | "/index.html" => ("text/html", INDEX),
        "/live.js" => ("text/javascript", SCRIPT),
        "/live.css" => ("text/css", STYLE),
        _ => return text(404, "not found: the live page is at /\n"),
    };
    // CSP host sources have no IPv6 literal form: `'self'` covers `ws:` to the page's own
    // address in current browsers, and the explicit source is for older ones.
    let ws_source = if host.starts_with('[') {
        String::new()
    } else {
        format!(" ws://{host}")
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'{ws_source}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    Reply {
        status: 200,
        bytes: reply(
            200,
            kind,
            &[("Content-Security-Policy", &csp)],
            body.as_bytes(),
            head,
        ),
        refusal: None,
    }
}

/// A response's bytes, with the headers every response carries.
fn reply(status: u16, kind: &str, extra: &[(&str, &str)], body: &[u8], head: &Head) -> Vec<u8> {
    let phrase = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: {kind}; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n\
         Cross-Origin-Resource-Policy: same-origin\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if head.method != "HEAD" {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// A stream that first yields bytes already read from it (the request head), then reads on.
pub struct Prefixed<S> {
    head: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner`, with `head` to be read again first.
    pub fn new(head: Vec<u8>, inner: S) -> Self {
        Self {
            head,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.head.len() {
            let n = buf.remaining().min(self.head.len() - self.pos);
            let from = self.pos;
            buf.put_slice(&self.head[from..from + n]);
            self.pos += n;
            if self.pos == self.head.len() {
                self.head = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            hosts: Policy::hosts_for("127.0.0.1:8765", &[]),
            origins: Vec::new(),
            token: "f00dfeedf00dfeed".into(),
        }
    }

    fn head(method: &str, path: &str, host: &str) -> Head {
        parse_head(format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .unwrap()
            .unwrap()
    }

    fn text(r: &Reply) -> String {
        String::from_utf8_lossy(&r.bytes).into_owned()
    }

    #[test]
    fn heads_are_parsed_incrementally_and_bounded() {
        let full =
            b"GET /live.js?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nUpgrade: WebSocket\r\n\r\n";
        for cut in 0..full.len() - 1 {
            assert!(parse_head(&full[..cut]).unwrap().is_none(), "{cut}");
        }
        let h = parse_head(full).unwrap().unwrap();
        assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/live.js"));
        assert_eq!(h.host.as_deref(), Some("127.0.0.1:8765"));
        assert!(h.upgrade);
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert!(matches!(parse_head(&long), Err(HeadError::TooLarge)));
        let too_long = answer_bad_head(&HeadError::TooLarge).unwrap();
        assert!(String::from_utf8_lossy(&too_long).starts_with("HTTP/1.1 431 "));
        let junk = answer_bad_head(&HeadError::Malformed("x".into())).unwrap();
        assert!(String::from_utf8_lossy(&junk).starts_with("HTTP/1.1 400 "));
        assert!(answer_bad_head(&HeadError::Closed).is_none());
        // 100 headers (a native client's, or many cookies) are fine.
        let mut many = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(parse_head(&many).unwrap().is_some());
        assert!(matches!(
            parse_head(b"\x16\x03\x01\x02\x00"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn the_page_is_served_with_a_strict_policy_and_no_secret() {
        let r = answer(&head("GET", "/", "localhost:8765"), &policy(), true);
        assert_eq!(r.status, 200);
        let t = text(&r);
        assert!(t.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(t.contains("connect-src 'self' ws://localhost:8765;"), "{t}");
        assert!(t.contains("frame-ancestors 'none'") && t.contains("Cache-Control: no-store"));
        assert!(t.contains("<script src=\"/live.js\"></script>"));
        assert!(!t.contains("f00dfeed"), "the page holds no token");
        let js = answer(&head("GET", "/live.js", "127.0.0.1:8765"), &policy(), true);
        assert!(text(&js).contains("Content-Type: text/javascript"));
        let css = answer(
            &head("HEAD", "/live.css", "127.0.0.1:8765"),
            &policy(),
            true,
        );
        assert!(text(&css).ends_with("\r\n\r\n"), "HEAD has no body");
    }

    #[test]
    fn a_rebound_host_other_paths_and_methods_are_refused() {
        let r = answer(&head("GET", "/", "evil.example:8765"), &policy(), true);
        assert_eq!(r.status, 403);
        assert_eq!(r.refusal.map(|r| r.check), Some("host"));
        assert_eq!(
            answer(
                &head("GET", "/etc/passwd", "127.0.0.1:8765"),
                &policy(),
                true
            )
            .status,
            404
        );
        let post = answer(&head("POST", "/", "127.0.0.1:8765"), &policy(), true);
        assert_eq!(post.status, 405);
        assert!(text(&post).contains("Allow: GET, HEAD"));
        let off = answer(&head("GET", "/", "127.0.0.1:8765"), &policy(), false);
        assert_eq!(off.status, 404);
        assert!(text(&off).contains("page = false"));
    }

    #[tokio::test]
    async fn a_head_sent_a_byte_at_a_time_is_read_whole() {
        let (mut a, mut b) = tokio::io::duplex(1);
        let req = b"GET /live.css HTTP/1.1\r\nHost: 127.0.0.1:8765\r\n\r\n";
        let writer = tokio::spawn(async move {
            for byte in req {
                tokio::io::AsyncWriteExt::write_all(&mut a, &[*byte])
                    .await
                    .unwrap();
            }
            a
        });
        let (head, bytes) = read_head(&mut b).await.unwrap();
        assert_eq!((head.path.as_str(), bytes.len()), ("/live.css", req.len()));
        drop(writer.await.unwrap());
    }

    #[test]
    fn an_ipv6_host_gets_no_explicit_ws_source() {
        let p = Policy {
            hosts: Policy::hosts_for("[::1]:8765", &[]),
            origins: Vec::new(),
            token: "t".into(),
        };
        let t = text(&answer(&head("GET", "/", "[::1]:8765"), &p, true));
        assert!(t.contains("connect-src 'self'; "), "{t}");
    }

    #[tokio::test]
    async fn a_prefixed_stream_replays_the_head_then_reads_on() {
        use tokio::io::AsyncReadExt;
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b" world")
            .await
            .unwrap();
        drop(a);
        let mut p = Prefixed::new(b"hello".to_vec(), b);
        let mut s = String::new();
        p.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }
}
