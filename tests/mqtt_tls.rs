//! MQTT over TLS against a real Mosquitto with a TLS listener, with certificates made here by
//! the `openssl` command (a throwaway CA, a server certificate for 127.0.0.1 and localhost, a
//! client certificate): the daemon verifies the broker against `ca_file` and publishes the same
//! lines as over plain TCP; a broker whose certificate another CA signed, or one that `mqtts://`
//! checks against the system's roots, is refused in one line and never connected; a broker that
//! requires a client certificate takes the daemon's and refuses a daemon without one. The
//! subscriber reads the broker's plain loopback listener. They skip (saying why) without
//! Mosquitto or openssl, and fail instead when ATTUNE_REQUIRE_TRANSPORTS=1.
#![cfg(feature = "mqtt")]

use crate::mqtt_transport::{Broker, Sub, mqtt_status_until};
use crate::util::{LiveDaemon, free_port, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>-ca.pem`) and, signed by it, a certificate for `ext` (`<name>.pem`, key
/// `<name>.key`).
fn signed(dir: &Path, ca: &str, name: &str, ext: &str) {
    let ext_file = format!("{name}.ext");
    std::fs::write(dir.join(&ext_file), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &ext_file,
        ],
    );
}

fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// The certificates: `ca` signs `server` and `client`; `other-ca` signs nothing here.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn make_or_skip() -> Option<Pki> {
        let have = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !have {
            if std::env::var("ATTUNE_REQUIRE_TRANSPORTS").as_deref() == Ok("1") {
                panic!("openssl required (ATTUNE_REQUIRE_TRANSPORTS=1): Debian package openssl");
            }
            eprintln!("SKIPPED: no openssl command (Debian package openssl)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ca(d, "ca");
        ca(d, "other-ca");
        signed(
            d,
            "ca",
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        signed(d, "ca", "client", "extendedKeyUsage=clientAuth\n");
        Some(Pki { dir })
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// Mosquitto configuration lines for a TLS listener on `port`.
    fn listener(&self, port: u16, client_certs: bool) -> String {
        format!(
            "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {client_certs}\n",
            self.path("ca.pem").display(),
            self.path("server.pem").display(),
            self.path("server.key").display(),
        )
    }
}

/// Certificates, a broker with a TLS listener (asking for client certificates or not) and a
/// subscriber on its plain listener, and the TLS port; `None` when skipped.
fn broker(client_certs: bool) -> Option<(Pki, Broker, Sub, u16)> {
    let pki = Pki::make_or_skip()?;
    let tls_port = free_port();
    let b = Broker::start_with_or_skip(true, &pki.listener(tls_port, client_certs))?;
    let sub = Sub::start(&b, "attune/#");
    Some((pki, b, sub, tls_port))
}

/// A daemon for p01 publishing to `127.0.0.1:port` with the `[mqtt]` keys in `tls`.
fn daemon(port: u16, tls: &str) -> (LiveDaemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("attune.toml");
    std::fs::write(
        &cfg,
        format!(
            "[mqtt]\naddr = \"127.0.0.1:{port}\"\n{tls}\n\n[[participant]]\nid = \"p01\"\n\
             [[participant.source]]\ntype = \"simulate\"\n"
        ),
    )
    .unwrap();
    let d = LiveDaemon::start(&["--config", cfg.to_str().unwrap(), "--speed", "10"]);
    (d, dir)
}

#[test]
fn mqtt_over_tls_verifies_the_broker_and_publishes_the_same_lines() {
    let Some((pki, _b, sub, tls_port)) = broker(false) else {
        return;
    };
    let ca = pki.path("ca.pem");
    let (d, _cfg) = daemon(
        tls_port,
        &format!("tls = true\nca_file = {:?}", ca.to_str().unwrap()),
    );
    let st = mqtt_status_until(&d, 20, "connected over TLS", |s| s["connected"] == true);
    assert_eq!(st["tls"], true, "{st}");
    let mut sock = d.subscribe_for("p01", &["adaptation"]);
    let line = loop {
        let l = sock.line().unwrap();
        if json(&l)["type"] == "adaptation" {
            break l;
        }
    };
    let got = sub.wait_for(10, "the socket's decision over TLS", |g| g.payload == line);
    assert!(got.topic.ends_with("/p01/decision"), "{}", got.topic);
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn mqtt_over_tls_refuses_a_broker_it_cannot_verify_in_one_line() {
    let Some((pki, _b, sub, tls_port)) = broker(false) else {
        return;
    };
    // Another CA, then the system's roots (mqtts://): neither vouches for this broker.
    let other = pki.path("other-ca.pem");
    let (d, _cfg) = daemon(
        tls_port,
        &format!("tls = true\nca_file = {:?}", other.to_str().unwrap()),
    );
    let st = mqtt_status_until(&d, 20, "a certificate error", |s| {
        !s["last_error"].is_null()
    });
    assert_eq!(st["connected"], false, "{st}");
    let e = st["last_error"].as_str().unwrap();
    assert!(e.contains("certificate"), "{e}");
    eprintln!("an unverified broker: last_error {e:?}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("certificate")).collect();
    assert_eq!(lines.len(), 1, "one line per outage: {lines:#?}");

    // A CA file that is not there stops the start with one line.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[mqtt]\naddr = \"127.0.0.1:{tls_port}\"\ntls = true\nca_file = \"/nonexistent/ca.pem\"\n\n\
             [[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"simulate\"\n"
        ),
    )
    .unwrap();
    let (code, _, err) = crate::util::run_attune_within(
        &[
            "run",
            "--config",
            bad.to_str().unwrap(),
            "--data-dir",
            dir.path().join("d").to_str().unwrap(),
            "--socket",
            dir.path().join("run/attune.sock").to_str().unwrap(),
        ],
        20,
    );
    assert_ne!(code, Some(0), "{err}");
    let said: Vec<&str> = err.lines().filter(|l| l.contains("ca_file")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(
        said[0].contains("cannot read the ca_file /nonexistent/ca.pem"),
        "{err}"
    );
    let cfg = dir.path().join("attune.toml");
    std::fs::write(
        &cfg,
        "[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"simulate\"\n",
    )
    .unwrap();
    let flag = format!("mqtts://127.0.0.1:{tls_port}");
    let d = LiveDaemon::start(&["--config", cfg.to_str().unwrap(), "--mqtt", &flag]);
    let st = mqtt_status_until(&d, 20, "a certificate error", |s| {
        !s["last_error"].is_null()
    });
    assert_eq!(
        (st["connected"].clone(), st["tls"].clone()),
        (false.into(), true.into()),
        "{st}"
    );
    assert!(
        st["last_error"].as_str().unwrap().contains("certificate"),
        "{st}"
    );
    drop(d);
    assert!(
        sub.all().iter().all(|g| !g.topic.contains("/p01/")),
        "nothing may reach an unverified broker"
    );
}

#[test]
fn mqtt_over_tls_gives_a_client_certificate_to_a_broker_that_requires_one() {
    let Some((pki, _b, sub, tls_port)) = broker(true) else {
        return;
    };
    let ca = pki.path("ca.pem");
    let keys = format!(
        "tls = true\nca_file = {:?}\nclient_cert_file = {:?}\nclient_key_file = {:?}",
        ca.to_str().unwrap(),
        pki.path("client.pem").to_str().unwrap(),
        pki.path("client.key").to_str().unwrap()
    );
    let (d, _cfg) = daemon(tls_port, &keys);
    mqtt_status_until(&d, 20, "connected with a client certificate", |s| {
        s["connected"] == true
    });
    sub.wait_for(10, "a decision", |g| g.topic.ends_with("/p01/decision"));
    drop(d);
    let (d, _cfg) = daemon(
        tls_port,
        &format!("tls = true\nca_file = {:?}", ca.to_str().unwrap()),
    );
    let st = mqtt_status_until(&d, 20, "a refusal", |s| !s["last_error"].is_null());
    assert_eq!(st["connected"], false, "without a client certificate: {st}");
    drop(d);
}
