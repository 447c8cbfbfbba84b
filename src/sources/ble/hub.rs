//! The host's Bluetooth, shared by every BLE source of the process (edge, btleplug on BlueZ).
//!
//! btleplug talks to BlueZ (`org.bluez`) over the D-Bus **system** bus and nothing else
//! (DEVICES.md §8.2); `DBUS_SYSTEM_BUS_ADDRESS` redirects it, which is how the tests point it at
//! a mocked BlueZ. One [`btleplug::platform::Manager`] and its first adapter are opened lazily
//! and shared; one scan serves every source (BlueZ runs one discovery per client, and merges
//! scan filters across applications anyway, so every source post-filters what it sees).
//!
//! Bluetooth is *unavailable* (a state, never a crash: [`Unavailable`]) when there is no system
//! bus, no BlueZ on it, no adapter, or the adapter is powered off. Each cause is one line for
//! people; sources report it as their streams' `lost` detail and retry, and every other source
//! keeps running. Opening is bounded by [`OPEN_TIMEOUT`], so a bus that accepts the connection
//! and never answers cannot hang a source.

use btleplug::api::{Central, CentralState, Manager as _, ScanFilter, bleuuid::uuid_from_u16};
use btleplug::platform::{Adapter, Manager};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::Mutex;

/// Longest wait for the bus, BlueZ and the adapter list.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

pub use super::Unavailable;

/// Names the cause of a btleplug error from opening the manager or listing adapters.
pub fn explain(e: &btleplug::Error) -> String {
    let s = e.to_string();
    if s.contains("system_bus_socket") || s.contains("FileNotFound") || s.contains("No such file") {
        "no system D-Bus (is this a container without dbus? start dbus, or run bluetoothd on the host)".into()
    } else if s.contains("org.bluez") || s.contains("ServiceUnknown") {
        "BlueZ is not running on the system bus (start bluetoothd: systemctl start bluetooth)"
            .into()
    } else if matches!(e, btleplug::Error::PermissionDenied) || s.contains("AccessDenied") {
        "permission denied by BlueZ (is the user allowed to use Bluetooth?)".into()
    } else {
        format!("BlueZ error: {}", first_line(&s))
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[derive(Default)]
struct State {
    adapter: Option<Adapter>,
    scanning: bool,
    /// Peripherals (by address) a source holds, so two sources never take one strap.
    claimed: BTreeSet<String>,
    /// The targets of the running sources, with a count each (so that a name prefix never
    /// takes a strap another source names exactly or by its address).
    targets: std::collections::BTreeMap<super::Target, usize>,
}

/// The shared Bluetooth of the process.
#[derive(Default)]
pub struct Hub {
    state: Mutex<State>,
}

impl Hub {
    /// The process's hub.
    pub fn global() -> &'static Hub {
        static HUB: std::sync::OnceLock<Hub> = std::sync::OnceLock::new();
        HUB.get_or_init(Hub::default)
    }

    /// The adapter, opened on first use; [`Unavailable`] with the cause otherwise. An adapter
    /// that is powered off is unavailable (and re-checked at every call).
    pub async fn adapter(&self) -> Result<Adapter, Unavailable> {
        let mut st = self.state.lock().await;
        let adapter = match &st.adapter {
            Some(a) => a.clone(),
            None => {
                let a = open().await?;
                st.adapter = Some(a.clone());
                st.scanning = false;
                a
            }
        };
        match tokio::time::timeout(OPEN_TIMEOUT, adapter.adapter_state()).await {
            Ok(Ok(CentralState::PoweredOn)) => Ok(adapter),
            Ok(Ok(CentralState::PoweredOff)) => {
                st.scanning = false;
                Err(Unavailable("the Bluetooth adapter is powered off".into()))
            }
            Ok(Ok(CentralState::Unknown)) => {
                st.scanning = false;
                Err(Unavailable(
                    "the Bluetooth adapter's state is unknown".into(),
                ))
            }
            Ok(Err(e)) => {
                st.adapter = None;
                Err(Unavailable(explain(&e)))
            }
            Err(_) => {
                st.adapter = None;
                Err(Unavailable("BlueZ did not answer within 5 s".into()))
            }
        }
    }

    /// Makes sure the shared scan runs. `services_only`: filter by the Heart Rate service
    /// (for listing straps); sources scan unfiltered (a strap named in the configuration may not
    /// advertise the service) and post-filter.
    pub async fn scan(&self, adapter: &Adapter, services_only: bool) -> Result<(), String> {
        let mut st = self.state.lock().await;
        if st.scanning {
            return Ok(());
        }
        let filter = if services_only {
            ScanFilter {
                services: vec![uuid_from_u16(crate::protocol::hrs::HEART_RATE_SERVICE)],
            }
        } else {
            ScanFilter::default()
        };
        match tokio::time::timeout(OPEN_TIMEOUT, adapter.start_scan(filter)).await {
            Ok(Ok(())) => {
                st.scanning = true;
                Ok(())
            }
            Ok(Err(e)) => Err(format!("scan failed: {}", first_line(&e.to_string()))),
            Err(_) => Err("scan did not start within 5 s".into()),
        }
    }

    /// Forgets the adapter (after an error that may mean BlueZ restarted): the next
    /// [`Hub::adapter`] opens it again.
    pub async fn reset(&self) {
        let mut st = self.state.lock().await;
        st.adapter = None;
        st.scanning = false;
    }

    /// Claims the strap at `address` for one source; false if another source holds it.
    pub async fn claim(&self, address: &str) -> bool {
        self.state.lock().await.claimed.insert(address.to_owned())
    }

    /// Releases a claim.
    pub async fn release(&self, address: &str) {
        self.state.lock().await.claimed.remove(address);
    }

    /// Registers a running source's target (until [`Hub::forget_target`]).
    pub async fn register(&self, target: &super::Target) {
        *self
            .state
            .lock()
            .await
            .targets
            .entry(target.clone())
            .or_insert(0) += 1;
    }

    /// Unregisters a source's target.
    pub async fn forget_target(&self, target: &super::Target) {
        let mut st = self.state.lock().await;
        if let Some(n) = st.targets.get_mut(target) {
            *n -= 1;
            if *n == 0 {
                st.targets.remove(target);
            }
        }
    }

    /// Whether another source names the strap with `address` and `name` more exactly than
    /// `mine` (its address, or its exact name, while `mine` is neither): it is theirs.
    pub async fn reserved_for_another(
        &self,
        mine: &super::Target,
        address: &str,
        name: Option<&str>,
    ) -> bool {
        use super::Target;
        let exact_mine = match mine {
            Target::Address(a) => a.eq_ignore_ascii_case(address),
            Target::Name(n) => name == Some(n.as_str()),
        };
        if exact_mine {
            return false;
        }
        self.state.lock().await.targets.keys().any(|t| match t {
            Target::Address(a) => a.eq_ignore_ascii_case(address),
            Target::Name(n) => name == Some(n.as_str()),
        })
    }

    /// Whether a source holds `address`.
    pub async fn is_claimed(&self, address: &str) -> bool {
        self.state.lock().await.claimed.contains(address)
    }
}

async fn open() -> Result<Adapter, Unavailable> {
    let manager = match tokio::time::timeout(OPEN_TIMEOUT, Manager::new()).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(Unavailable(explain(&e))),
        Err(_) => {
            return Err(Unavailable(
                "the system D-Bus did not answer within 5 s".into(),
            ));
        }
    };
    let adapters = match tokio::time::timeout(OPEN_TIMEOUT, manager.adapters()).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(Unavailable(explain(&e))),
        Err(_) => {
            return Err(Unavailable(
                "BlueZ did not list its adapters within 5 s".into(),
            ));
        }
    };
    adapters.into_iter().next().ok_or_else(|| {
        Unavailable(
            "no Bluetooth adapter (is a dongle plugged in, and not blocked by rfkill?)".into(),
        )
    })
}

/// How long to wait before checking an unavailable Bluetooth again.
pub const UNAVAILABLE_RETRY: Duration = Duration::from_secs(5);
