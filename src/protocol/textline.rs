//! PLACEHOLDER: replaced by the real protocol module (same public surface).

use super::{ChannelInfo, DeviceModel, Host, HostOut, Phase, Physical, Stats};
use crate::model::StreamKind;

/// Settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Rate, Hz.
    pub rate_hz: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { rate_hz: 100.0 }
    }
}

impl Settings {
    /// Sets the rate.
    pub fn set_rate(&mut self, hz: f64) -> Result<(), String> {
        self.rate_hz = hz;
        Ok(())
    }
    /// The rate.
    pub fn rate_hz(&self) -> f64 {
        self.rate_hz
    }
    /// Checks.
    pub fn check(&self) -> Result<(), String> {
        Ok(())
    }
    /// Kinds.
    pub fn kinds(&self) -> Vec<StreamKind> {
        vec![StreamKind::Eda]
    }
    /// Host.
    pub fn host(&self) -> StubHost {
        StubHost(Phase::Failed("not implemented".into()))
    }
    /// Device.
    pub fn device(&self) -> StubDevice {
        StubDevice
    }
}

/// Host.
pub struct StubHost(Phase);
impl Host for StubHost {
    fn start(&mut self, _: f64, _: &mut HostOut) {}
    fn on_bytes(&mut self, _: f64, _: &[u8], _: &mut HostOut) {}
    fn on_tick(&mut self, _: f64, _: &mut HostOut) {}
    fn stop(&mut self, _: &mut HostOut) {}
    fn phase(&self) -> &Phase {
        &self.0
    }
    fn channels(&self) -> &[ChannelInfo] {
        &[]
    }
    fn stats(&self) -> Stats {
        Stats::default()
    }
    fn device(&self) -> Option<&str> {
        None
    }
}
/// Device.
pub struct StubDevice;
impl DeviceModel for StubDevice {
    fn on_host_bytes(&mut self, _: &[u8], _: &mut Vec<u8>) {}
    fn streaming_rate(&self) -> Option<f64> {
        None
    }
    fn encode(&mut self, _: &Physical, _: &mut Vec<u8>) {}
    fn power_cycle(&mut self) {}
}
