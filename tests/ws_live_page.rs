//! The WebSocket's live page in a real browser: headless Chromium (Debian's package) driven over
//! the DevTools protocol (with tungstenite, no Node), against a live daemon with `--ws`. The
//! page connects with the token from its URL fragment, shows the chosen participant's decision,
//! scoring, features and stream states as they arrive, follows `attune override`, switches
//! participants, and says so when the token is wrong; screenshots are checked for the decision's
//! colour inside the decision badge. Plain HTTP checks (headers, Host, methods, `page = false`)
//! need no browser. The browser tests skip (saying why) without Chromium, and fail instead when
//! ATTUNE_REQUIRE_TRANSPORTS=1.
#![cfg(feature = "ws")]

use crate::util::{LiveDaemon, free_port, json};
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

/// A live daemon with `--ws` on a free port (plus `extra`), its address, its token and the live
/// page's address as `attune token` prints it (with the token).
fn daemon(extra: &[&str]) -> (LiveDaemon, String, String, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--speed", "10", "--ws", addr.as_str()];
    args.extend(extra);
    let d = LiveDaemon::start(&args);
    d.wait_for_publisher("websocket");
    let (code, out, err) = d.cli(&["token", "--json", "--show", "--ws", &addr]);
    assert_eq!(code, Some(0), "{err}");
    let v = json(out.trim());
    let tok = v["token"].as_str().unwrap().to_owned();
    let page = v["page"].as_str().unwrap().replace("<token>", &tok);
    assert_eq!(page, format!("http://{addr}/#token={tok}"));
    (d, addr, tok, page)
}

/// One raw HTTP request; the whole response as text.
fn http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_page_is_plain_http_with_a_strict_policy_and_the_host_checked() {
    let (d, addr, tok, _) = daemon(&["--simulate", "p01"]);
    let get = |path: &str, host: &str| {
        http(
            &addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: test\r\n\r\n"),
        )
    };
    let page = get("/", &addr);
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(
        page.contains(&format!("connect-src 'self' ws://{addr};")),
        "{page}"
    );
    assert!(page.contains("frame-ancestors 'none'") && page.contains("X-Frame-Options: DENY"));
    assert!(!page.contains(&tok), "the page must not hold the token");
    assert!(get("/live.js", "localhost:1").starts_with("HTTP/1.1 403"));
    let port = addr.rsplit_once(':').unwrap().1;
    assert!(get("/live.js", &format!("localhost:{port}")).contains("text/javascript"));
    let rebound = get("/", &format!("evil.example:{port}"));
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(rebound.contains("allowed_hosts"), "{rebound}");
    assert!(get("/../../etc/passwd", &addr).starts_with("HTTP/1.1 404"));
    let post = http(
        &addr,
        &format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"),
    );
    assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"));
    let tls = http(&addr, "\x16\x03\x01\x00\x05hello");
    assert!(tls.starts_with("HTTP/1.1 400 "), "TLS bytes: {tls:?}");
    // The counters: two Host refusals and one broken request; the other four were page requests.
    let deadline = Instant::now() + Duration::from_secs(10);
    let ws = loop {
        let ws = d.publisher("websocket");
        if ws["page"]["requests"] == 4 || Instant::now() > deadline {
            break ws;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ws["page"]["requests"], 4, "{ws}");
    assert_eq!(ws["refused"]["host"], 2, "{ws}");
    assert_eq!(ws["refused"]["handshake"], 1, "{ws}");
    drop(d);

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("attune.toml");
    let addr = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        &cfg,
        format!(
            "[ws]\naddr = \"{addr}\"\npage = false\n\n[[participant]]\nid = \"p01\"\n\
             [[participant.source]]\ntype = \"simulate\"\n"
        ),
    )
    .unwrap();
    let d = LiveDaemon::start(&["--config", cfg.to_str().unwrap()]);
    let off = get_until_up(&addr);
    assert!(
        off.starts_with("HTTP/1.1 404") && off.contains("page = false"),
        "{off}"
    );
    drop(d);
}

/// `GET /` once the daemon listens on `addr`.
fn get_until_up(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    http(addr, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n"))
}

/// Headless Chromium with one page, driven over the DevTools protocol.
struct Browser {
    child: Child,
    cdp: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    id: u64,
    shots: u32,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium, or `None` (skipped, saying why) when it is not installed.
    fn launch() -> Option<Browser> {
        let exe = std::env::var("ATTUNE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let profile = tempfile::tempdir().unwrap();
        let spawned = Command::new(&exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--window-size=1000,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("ATTUNE_REQUIRE_TRANSPORTS").as_deref() == Ok("1") {
                    panic!("Chromium required (ATTUNE_REQUIRE_TRANSPORTS=1): {exe}: {e}");
                }
                eprintln!("SKIPPED: no Chromium ({exe}: {e}; apt-get install chromium)");
                return None;
            }
        };
        // Chromium prints the DevTools address on stderr; the rest of stderr is drained.
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("Chromium did not print its DevTools address within 30 s");
        let (cdp, _) = tungstenite::connect(url.as_str()).expect("DevTools connection");
        let mut b = Browser {
            child,
            cdp,
            session: String::new(),
            id: 0,
            shots: 0,
            _profile: profile,
        };
        let target = b.call(
            "Target.createTarget",
            serde_json::json!({"url": "about:blank"}),
        );
        let attached = b.call(
            "Target.attachToTarget",
            serde_json::json!({"targetId": target["targetId"], "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        b.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": 1000, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        Some(b)
    }

    /// One DevTools command (on the page's session once attached); its result.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.id += 1;
        let mut msg = serde_json::json!({"id": self.id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = self.session.clone().into();
        }
        self.cdp.send(Message::text(msg.to_string())).unwrap();
        loop {
            let Message::Text(t) = self.cdp.read().unwrap() else {
                continue;
            };
            let v = json(t.as_str());
            if v["id"] == self.id {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    fn open(&mut self, url: &str) {
        self.call("Page.navigate", serde_json::json!({"url": url}));
    }

    /// A JavaScript expression's value in the page.
    fn eval(&mut self, expr: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is true, for at most `secs`; the page's text when it never is.
    fn wait_for(&mut self, expr: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.eval(expr) != serde_json::Value::Bool(true) {
            if Instant::now() > deadline {
                let text = self.eval("document.body.innerText");
                panic!("not true within {secs} s: {expr}\npage:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A screenshot, decoded: (width, height, RGBA bytes).
    fn screenshot(&mut self) -> (u32, u32, Vec<u8>) {
        let shot = self.call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png"}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        // ATTUNE_SCREENSHOTS=DIR keeps them, to look at.
        if let Ok(dir) = std::env::var("ATTUNE_SCREENSHOTS") {
            self.shots += 1;
            let path = std::path::Path::new(&dir).join(format!("live-page-{}.png", self.shots));
            std::fs::write(path, &png).unwrap();
        }
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        let rgba = match info.color_type {
            png::ColorType::Rgba => buf,
            png::ColorType::Rgb => buf
                .chunks(3)
                .flat_map(|c| [c[0], c[1], c[2], 255])
                .collect(),
            other => panic!("screenshot colour type {other:?}"),
        };
        (info.width, info.height, rgba)
    }

    /// The share of the pixels inside element `id` that are exactly `rgb`, in a screenshot.
    fn colour_share(&mut self, id: &str, rgb: [u8; 3]) -> f64 {
        let r = self.eval(&format!(
            "(() => {{ const r = document.getElementById('{id}').getBoundingClientRect(); \
             return [r.left, r.top, r.width, r.height]; }})()"
        ));
        let [x, y, w, h] = [0, 1, 2, 3].map(|i| r[i].as_f64().unwrap().round() as u32);
        assert!(w > 20 && h > 10, "#{id} is {w}x{h}");
        let (width, height, px) = self.screenshot();
        let (mut hit, mut all) = (0u64, 0u64);
        for row in y..(y + h).min(height) {
            for col in x..(x + w).min(width) {
                let i = ((row * width + col) * 4) as usize;
                all += 1;
                hit += u64::from(px[i..i + 3] == rgb);
            }
        }
        hit as f64 / all.max(1) as f64
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const EASE_OFF: [u8; 3] = [0xd9, 0x82, 0x2b];
const ESCALATE: [u8; 3] = [0x0a, 0x66, 0x40];
const CONNECTED: [u8; 3] = [0x0f, 0x99, 0x60];

#[test]
fn the_live_page_in_chromium_follows_a_participant_live() {
    let Some(mut b) = Browser::launch() else {
        return;
    };
    let (d, _, _, page) = daemon(&["--simulate", "p01", "--simulate", "p02"]);
    b.open(&format!("{page}&participant=p02"));
    b.wait_for(
        "document.getElementById('conn').dataset.state === 'connected'",
        20,
    );
    // The token left the address bar (history, bookmarks); the participant stayed.
    assert_eq!(
        b.eval("[location.href.includes('token'), location.hash]"),
        serde_json::json!([false, "#participant=p02"])
    );
    // Decisions, their scoring, features and stream states arrive and are shown.
    b.wait_for(
        "['hold','ease_off','escalate'].includes(document.getElementById('action').dataset.action) \
         && document.querySelectorAll('#scoring tbody tr').length >= 4 \
         && document.getElementById('features').innerText.includes('hr_bpm') \
         && document.getElementById('streams').innerText.includes('streaming') \
         && document.getElementById('participant').value === 'p02'",
        30,
    );
    let t0: f64 = b
        .eval("Number(document.getElementById('t').textContent)")
        .as_f64()
        .unwrap();
    b.wait_for(
        &format!("Number(document.getElementById('t').textContent) > {t0}"),
        10,
    );
    let text = b
        .eval("document.body.innerText")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("attune 0.1.0, protocol 1"), "{text}");
    assert!(
        text.contains("rmssd_ms") && text.contains("scl_us"),
        "{text}"
    );
    assert!(
        b.colour_share("conn", CONNECTED) > 0.5,
        "connection badge not green"
    );

    // A researcher's override shows on the page, on the participant it was for only.
    let (code, _, err) = d.cli(&["override", "--participant", "p01", "ease_off"]);
    assert_eq!(code, Some(0), "{err}");
    b.eval(
        "(() => { const s = document.getElementById('participant'); s.value = 'p01'; \
         s.dispatchEvent(new Event('change')); return true; })()",
    );
    b.wait_for(
        "document.getElementById('action').dataset.action === 'ease_off' \
         && document.getElementById('rule').textContent === 'override'",
        20,
    );
    let share = b.colour_share("action", EASE_OFF);
    assert!(
        share > 0.6,
        "ease_off badge: {share:.2} of it is the ease_off colour"
    );
    let (code, _, err) = d.cli(&["override", "--participant", "p01", "escalate"]);
    assert_eq!(code, Some(0), "{err}");
    b.wait_for(
        "document.getElementById('action').dataset.action === 'escalate'",
        20,
    );
    let (esc, ease) = (
        b.colour_share("action", ESCALATE),
        b.colour_share("action", EASE_OFF),
    );
    assert!(
        esc > 0.6 && ease < 0.01,
        "escalate badge: {esc:.2} escalate, {ease:.2} ease_off"
    );
    b.eval(
        "(() => { const s = document.getElementById('participant'); s.value = 'p02'; \
         s.dispatchEvent(new Event('change')); return true; })()",
    );
    b.wait_for(
        "document.getElementById('rule').textContent !== 'override' \
         && document.getElementById('rule').textContent !== '–'",
        10,
    );
    drop(d);
    b.wait_for(
        "document.getElementById('conn').dataset.state !== 'connected'",
        20,
    );
}

#[test]
fn the_live_page_with_a_wrong_token_says_so_and_takes_the_right_one() {
    let Some(mut b) = Browser::launch() else {
        return;
    };
    let (d, addr, tok, _) = daemon(&["--simulate", "p01"]);
    b.open(&format!("http://{addr}/#token=0000"));
    b.wait_for(
        "document.getElementById('conn').dataset.state === 'refused'",
        20,
    );
    // After three refusals the page asks for the token; the right one connects.
    b.wait_for("!document.getElementById('need-token').hidden", 30);
    b.eval(&format!(
        "(() => {{ document.getElementById('token').value = '{tok}'; \
         document.getElementById('token-form').requestSubmit(); return true; }})()"
    ));
    b.wait_for(
        "document.getElementById('conn').dataset.state === 'connected'",
        30,
    );
    b.wait_for("document.getElementById('need-token').hidden", 5);
    // The status is refreshed about once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let ws = loop {
        let ws = d.publisher("websocket");
        let done = ws["refused"]["token"].as_u64() >= Some(3) && ws["connections"] == 1;
        if done || Instant::now() > deadline {
            break ws;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(ws["refused"]["token"].as_u64() >= Some(3), "{ws}");
    assert_eq!(ws["connections"], 1, "{ws}");
    assert_eq!(
        ws["refused"]["origin"], 0,
        "the page's own origin is allowed: {ws}"
    );
}
