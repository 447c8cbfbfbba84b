//! The WebSocket handshake's checks (pure): the `Host` header, the `Origin` header and the
//! token, in that order.
//!
//! Why each (a local WebSocket is reachable from every web page the user opens; browsers apply
//! no same-origin rule to `ws://`):
//!
//! - **Host** (DNS rebinding): a hostile page on a name it re-points to 127.0.0.1 connects with
//!   its own name in `Host`. Only the loopback names with attune's port, the listening address
//!   itself and the configured `allowed_hosts` are accepted.
//! - **Origin**: a browser always sends the page's origin; only origins on the allowlist
//!   (`allowed_origins`, empty by default) and the daemon's own live page (`http://` + the
//!   accepted `Host`: only attune serves that origin) are accepted. A request without `Origin` comes from
//!   a native client (browsers cannot omit it) and is allowed to go on to the token check.
//! - **Token**: every client shows the random token of the daemon's data directory
//!   (`attune token`), as `?token=…` in the URL or `Authorization: Bearer …`. It is compared in
//!   constant time.

/// Why a handshake was refused: the HTTP status and one line for the client and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 403 (host, origin) or 401 (token).
    pub status: u16,
    /// Which check: `host`, `origin` or `token` (the `status` counters).
    pub check: &'static str,
    /// One line.
    pub reason: String,
}

/// What a handshake must satisfy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Accepted `Host` values, lower case.
    pub hosts: Vec<String>,
    /// Accepted `Origin` values, lower case.
    pub origins: Vec<String>,
    /// The token.
    pub token: String,
}

impl Policy {
    /// The hosts accepted for a server listening on `addr` (`HOST:PORT`), plus `extra`.
    pub fn hosts_for(addr: &str, extra: &[String]) -> Vec<String> {
        let port = addr.rsplit_once(':').map_or("", |(_, p)| p);
        let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|h| format!("{h}:{port}"))
            .collect();
        hosts.push(addr.to_ascii_lowercase());
        hosts.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
        hosts.dedup();
        hosts
    }
}

/// The token in a request: `token=` in the query, else an `Authorization: Bearer` header.
fn token_of<'a>(query: Option<&'a str>, authorization: Option<&'a str>) -> Option<&'a str> {
    let from_query = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .filter(|t| !t.is_empty())
    });
    from_query.or_else(|| {
        authorization
            .and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
            })
            .map(str::trim)
    })
}

/// Equal bytes, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Checks a request's `Host` alone (the live page's requests); the accepted host, lower case.
pub fn check_host(policy: &Policy, host: Option<&str>) -> Result<String, Refusal> {
    let refuse = |reason: String| {
        Err(Refusal {
            status: 403,
            check: "host",
            reason,
        })
    };
    match host.map(str::to_ascii_lowercase) {
        Some(h) if policy.hosts.contains(&h) => Ok(h),
        Some(h) => refuse(format!(
            "Host {h:?} is not this daemon's address (add it to [ws] allowed_hosts if it is)"
        )),
        None => refuse("no Host header".into()),
    }
}

/// Checks one handshake request's `Host`, `Origin`, query and `Authorization`. The origin of
/// the daemon's own page (`http://` and the accepted `Host`) is always allowed.
pub fn check(
    policy: &Policy,
    host: Option<&str>,
    origin: Option<&str>,
    query: Option<&str>,
    authorization: Option<&str>,
) -> Result<(), Refusal> {
    let refuse = |status, check, reason: String| {
        Err(Refusal {
            status,
            check,
            reason,
        })
    };
    let host = check_host(policy, host)?;
    if let Some(o) = origin {
        let o = o.to_ascii_lowercase();
        // The daemon's own live page (`page`) is served at `http://<Host>`: its origin is the
        // address it was fetched from, which the Host check above has just vouched for.
        if !policy.origins.contains(&o) && o != format!("http://{host}") {
            return refuse(
                403,
                "origin",
                format!("Origin {o:?} is not in [ws] allowed_origins"),
            );
        }
    }
    match token_of(query, authorization) {
        Some(t) if same(t.as_bytes(), policy.token.as_bytes()) => Ok(()),
        Some(_) => refuse(
            401,
            "token",
            "wrong token (`attune token` shows the right one)".into(),
        ),
        None => refuse(
            401,
            "token",
            "no token: connect to ws://HOST:PORT/?token=… (`attune token` shows it)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            hosts: Policy::hosts_for("127.0.0.1:8765", &["lab-pc:8765".into()]),
            origins: vec!["http://localhost:5173".into()],
            token: "a1b2c3".into(),
        }
    }

    #[test]
    fn a_native_client_with_the_token_is_let_in() {
        let p = policy();
        assert_eq!(
            check(&p, Some("127.0.0.1:8765"), None, Some("token=a1b2c3"), None),
            Ok(())
        );
        assert_eq!(
            check(
                &p,
                Some("LOCALHOST:8765"),
                None,
                None,
                Some("Bearer a1b2c3")
            ),
            Ok(())
        );
        assert_eq!(
            check(&p, Some("[::1]:8765"), None, Some("x=1&token=a1b2c3"), None),
            Ok(())
        );
        assert_eq!(
            check(&p, Some("lab-pc:8765"), None, Some("token=a1b2c3"), None),
            Ok(())
        );
    }

    #[test]
    fn a_rebound_host_is_refused_before_anything_else() {
        let p = policy();
        let r = check(
            &p,
            Some("evil.example:8765"),
            Some("http://evil.example"),
            Some("token=a1b2c3"),
            None,
        );
        assert_eq!(r.unwrap_err().check, "host");
        assert_eq!(
            check(&p, Some("127.0.0.1:9999"), None, Some("token=a1b2c3"), None)
                .unwrap_err()
                .check,
            "host"
        );
        assert_eq!(
            check(&p, None, None, Some("token=a1b2c3"), None)
                .unwrap_err()
                .check,
            "host"
        );
    }

    #[test]
    fn a_foreign_origin_is_refused_even_with_the_token() {
        let p = policy();
        let r = check(
            &p,
            Some("127.0.0.1:8765"),
            Some("https://evil.example"),
            Some("token=a1b2c3"),
            None,
        )
        .unwrap_err();
        assert_eq!((r.status, r.check), (403, "origin"));
        assert!(r.reason.contains("allowed_origins"));
        assert_eq!(
            check(
                &p,
                Some("127.0.0.1:8765"),
                Some("http://LOCALHOST:5173"),
                Some("token=a1b2c3"),
                None
            ),
            Ok(())
        );
        // `null` (a file:// page, a sandboxed frame) is a foreign origin too.
        assert_eq!(
            check(
                &p,
                Some("127.0.0.1:8765"),
                Some("null"),
                Some("token=a1b2c3"),
                None
            )
            .unwrap_err()
            .check,
            "origin"
        );
    }

    #[test]
    fn the_daemons_own_page_may_connect_from_the_address_it_was_served_at() {
        let p = policy();
        let own = |host, origin| check(&p, Some(host), Some(origin), Some("token=a1b2c3"), None);
        assert_eq!(own("127.0.0.1:8765", "http://127.0.0.1:8765"), Ok(()));
        assert_eq!(own("localhost:8765", "http://localhost:8765"), Ok(()));
        // A page from another port, scheme or address is not the daemon's page.
        for (host, origin) in [
            ("127.0.0.1:8765", "http://127.0.0.1:8766"),
            ("127.0.0.1:8765", "https://127.0.0.1:8765"),
            ("127.0.0.1:8765", "http://localhost:8765"),
            ("localhost:8765", "http://127.0.0.1"),
        ] {
            assert_eq!(own(host, origin).unwrap_err().check, "origin", "{origin}");
        }
        // The page without the token is still refused.
        let r = check(
            &p,
            Some("127.0.0.1:8765"),
            Some("http://127.0.0.1:8765"),
            None,
            None,
        );
        assert_eq!(r.unwrap_err().check, "token");
        assert_eq!(
            check_host(&p, Some("LocalHost:8765")),
            Ok("localhost:8765".into())
        );
        assert_eq!(check_host(&p, Some("evil:8765")).unwrap_err().status, 403);
    }

    #[test]
    fn a_missing_or_wrong_token_is_401() {
        let p = policy();
        for (q, a) in [
            (None, None),
            (Some("token="), None),
            (Some("token=a1b2c4"), None),
            (None, Some("Bearer a1b2")),
            (Some("token=a1b2c3x"), None),
        ] {
            let r = check(&p, Some("127.0.0.1:8765"), None, q, a).unwrap_err();
            assert_eq!((r.status, r.check), (401, "token"), "{q:?} {a:?}");
        }
    }

    #[test]
    fn token_comparison_needs_every_byte() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab") && !same(b"", b"a"));
    }
}
