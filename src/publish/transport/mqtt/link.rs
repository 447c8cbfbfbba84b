//! The MQTT connection's two tasks (edge): the driver, which owns rumqttc's event loop, and the
//! writer, which takes messages from the queue (the module docs of [`super`] say why two).

use super::{Msg, level, qos};
use crate::publish::egress::Registration;
use crate::publish::transport::{Context, Counters};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, Request};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How long the writer waits for rumqttc to write a message before it gives the connection up.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// How long shutdown waits to publish `offline` and disconnect.
const GOODBYE: Duration = Duration::from_secs(1);

/// rumqttc's request channel (the writer hands it one message at a time).
const REQUESTS: usize = 16;

/// What the driver tells the writer and `status`.
#[derive(Debug, Clone, Default)]
pub struct LinkState {
    /// A connection is up (its CONNACK came).
    pub connected: bool,
    /// Connections made so far (each CONNACK adds one).
    pub epoch: u64,
    /// Publishes rumqttc has written to the connection.
    pub written: u64,
    /// The last connection error, as one line.
    pub last_error: Option<String>,
}

/// The writer's settings.
pub struct Setup {
    /// The broker, for logs.
    pub addr: String,
    /// `prefix/daemon-id`.
    pub base: String,
    /// The transport's counters.
    pub counters: Arc<Counters>,
    /// The consent in force.
    pub consent: watch::Receiver<Arc<crate::consent::ConsentSnapshot>>,
    /// The writer's egress point.
    pub registration: Registration,
}

/// The wait before reconnection attempt `failures + 1`: 0.5 s doubling to 30 s, times a draw
/// `r` in 0..1 mapped onto 50–100 % (jitter, so that daemons restarted together spread out).
pub fn backoff(failures: u32, r: f64) -> Duration {
    let step = (0.5 * 2f64.powi(failures.min(6) as i32)).min(30.0);
    let r = if r.is_finite() {
        r.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Duration::from_secs_f64(step * (0.5 + 0.5 * r))
}

/// Spawns the driver and the writer on the daemon's transport tasks.
pub fn spawn(
    opts: MqttOptions,
    setup: Setup,
    rx: mpsc::Receiver<Msg>,
    ctx: &Context,
) -> watch::Receiver<LinkState> {
    let (client, mut eventloop) = AsyncClient::new(opts, REQUESTS);
    // Decisions are small and latency matters more than packing: no Nagle delay.
    let mut net = eventloop.network_options();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let (link_tx, link_rx) = watch::channel(LinkState::default());
    let done = CancellationToken::new();
    let reset = Arc::new(Notify::new());
    let driver = Driver {
        eventloop,
        link: link_tx,
        addr: setup.addr.clone(),
        counters: setup.counters.clone(),
    };
    ctx.tasks.spawn(driver.run(done.clone(), reset.clone()));
    let writer = Writer {
        client,
        link: link_rx.clone(),
        setup,
        epoch_seen: 0,
        failed_reported: 0,
        reset,
    };
    ctx.tasks.spawn(writer.run(rx, ctx.closing.clone(), done));
    link_rx
}

struct Driver {
    eventloop: EventLoop,
    link: watch::Sender<LinkState>,
    addr: String,
    counters: Arc<Counters>,
}

impl Driver {
    /// Discards what rumqttc still holds (unwritten requests, unacknowledged publishes: the
    /// session is clean, they would never be re-sent) and counts the publishes among them.
    fn discard(&mut self) {
        self.eventloop.clean();
        let lost = self
            .eventloop
            .pending
            .drain(..)
            .filter(|r| matches!(r, Request::Publish(_)))
            .count() as u64;
        self.counters
            .failed
            .fetch_add(lost, std::sync::atomic::Ordering::Relaxed);
    }

    async fn run(mut self, done: CancellationToken, reset: Arc<Notify>) {
        let seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut failures: u32 = 0;
        let mut outage: Option<tokio::time::Instant> = None;
        loop {
            // The poll is cancelled only to end (done) or to give up a stuck connection (reset):
            // rumqttc's poll is not safe to cancel and re-enter otherwise.
            let r = tokio::select! {
                biased;
                _ = done.cancelled() => break,
                _ = reset.notified() => Err("the broker stopped taking messages".to_owned()),
                r = self.eventloop.poll() => r.map_err(|e| e.to_string()),
            };
            match r {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failures = 0;
                    self.link.send_modify(|l| {
                        l.connected = true;
                        l.epoch += 1;
                        l.last_error = None;
                    });
                    match outage.take() {
                        Some(since) => info!(
                            broker = %self.addr,
                            after_s = format!("{:.1}", since.elapsed().as_secs_f64()),
                            "MQTT: connected again."
                        ),
                        None => info!(broker = %self.addr, "MQTT: connected."),
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(_))) => {
                    self.link.send_modify(|l| l.written += 1)
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    self.link.send_modify(|l| l.connected = false);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    self.link.send_modify(|l| {
                        l.connected = false;
                        l.last_error = Some(e.clone());
                    });
                    self.discard();
                    if outage.is_none() {
                        outage = Some(tokio::time::Instant::now());
                        warn!(broker = %self.addr, error = %e, "MQTT: no connection to the broker; retrying with backoff, messages meanwhile are counted as failed.");
                    } else {
                        debug!(broker = %self.addr, error = %e, "MQTT: reconnection failed.");
                    }
                    let r = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    let wait = backoff(failures, r);
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        _ = done.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    // A message the writer handed over just as the connection failed must not
                    // go out on the next one (its consent was checked for this one).
                    self.discard();
                }
            }
        }
    }
}

struct Writer {
    client: AsyncClient,
    link: watch::Receiver<LinkState>,
    setup: Setup,
    /// The connection the status was last announced on.
    epoch_seen: u64,
    /// `failed` when the last gap was announced.
    failed_reported: u64,
    reset: Arc<Notify>,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Msg>,
        closing: CancellationToken,
        done: CancellationToken,
    ) {
        let cancel = self.setup.registration.egress.cancel.clone();
        loop {
            tokio::select! {
                biased;
                _ = closing.cancelled() => break,
                _ = cancel.cancelled() => break,
                m = rx.recv() => match m {
                    Some(m) => self.take(m).await,
                    None => break,
                },
                changed = self.link.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.announce_if_new().await;
                }
            }
        }
        // The engine's last events are queued before `closing`: send what is there, briefly.
        let end = tokio::time::Instant::now() + GOODBYE;
        while let Ok(m) = rx.try_recv() {
            if tokio::time::Instant::now() > end || cancel.is_cancelled() {
                break;
            }
            self.take(m).await;
        }
        if self.link.borrow().connected {
            let status = format!("{}/status", self.setup.base);
            let _ = tokio::time::timeout(
                GOODBYE,
                self.publish(status, QoS::AtLeastOnce, true, b"offline".to_vec()),
            )
            .await;
            if self.client.try_disconnect().is_ok() {
                let _ = tokio::time::timeout(GOODBYE, self.link.wait_for(|l| !l.connected)).await;
            }
        }
        done.cancel();
    }

    async fn take(&mut self, m: Msg) {
        if !self.link.borrow().connected {
            Counters::add(&self.setup.counters.failed);
            return;
        }
        self.announce_if_new().await;
        let egress = self.setup.registration.egress.clone();
        let _gate = egress.gate.lock().await;
        if egress.cancel.is_cancelled() {
            return;
        }
        if !super::super::met(&m.needs, &m.participant, &self.setup.consent) {
            Counters::add(&self.setup.counters.withdrawn);
            return;
        }
        let topic = format!("{}/{}/{}", self.setup.base, m.participant, level(m.topic));
        if self
            .publish(topic, qos(m.topic), false, m.line.into_bytes())
            .await
        {
            Counters::add(&self.setup.counters.sent);
        }
    }

    /// On a new connection: `online` (retained), and the gap since the last one if any.
    async fn announce_if_new(&mut self) {
        let (connected, epoch) = {
            let l = self.link.borrow();
            (l.connected, l.epoch)
        };
        if !connected || epoch == self.epoch_seen {
            return;
        }
        self.epoch_seen = epoch;
        let status = format!("{}/status", self.setup.base);
        self.publish(status, QoS::AtLeastOnce, true, b"online".to_vec())
            .await;
        let failed = self
            .setup
            .counters
            .failed
            .load(std::sync::atomic::Ordering::Relaxed);
        let gap = failed - self.failed_reported.min(failed);
        if gap > 0 {
            self.failed_reported = failed;
            let topic = format!("{}/lagged", self.setup.base);
            let line = crate::publish::messages::lagged(gap);
            self.publish(topic, QoS::AtLeastOnce, false, line.into_bytes())
                .await;
            info!(broker = %self.setup.addr, lost = gap, "MQTT: messages lost while the broker was away (announced on …/lagged).");
        }
    }

    /// Hands one publish to rumqttc and waits until it is written to this connection. False
    /// when it was not: the request channel was full (counted here), or the connection failed
    /// or stalled first (the driver discards and counts it).
    async fn publish(&mut self, topic: String, qos: QoS, retain: bool, payload: Vec<u8>) -> bool {
        let (w0, epoch) = {
            let l = self.link.borrow();
            (l.written, l.epoch)
        };
        if self
            .client
            .try_publish(topic, qos, retain, payload)
            .is_err()
        {
            Counters::add(&self.setup.counters.failed);
            return false;
        }
        let waited = tokio::time::timeout(
            FLUSH_WAIT,
            self.link
                .wait_for(|l| l.written > w0 || !l.connected || l.epoch != epoch),
        )
        .await;
        match waited {
            Ok(Ok(l)) => l.written > w0 && l.epoch == epoch,
            Ok(Err(_)) => false,
            Err(_) => {
                warn!(broker = %self.setup.addr, "MQTT: the broker took no message for 5 s; dropping the connection.");
                self.reset.notify_one();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_30_s_with_jitter_in_the_upper_half() {
        assert_eq!(backoff(0, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(0, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(6, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(60, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(60, 0.0), Duration::from_secs(15));
        assert_eq!(backoff(3, f64::NAN), backoff(3, 0.0));
    }
}
