//! Integration tests: one binary (STYLE.md §13). `util` holds the harness.
#![allow(clippy::unwrap_used)]

mod util;

mod analyze_cli;
mod attack_findings;
mod beats_agreement;
mod ble;
mod ble_faults;
mod ble_harness;
mod ble_mock;
mod consent_e2e;
mod consent_gate;
mod crash;
mod data_cli;
mod datadir;
mod e2e;
mod ecg_replay;
mod erasure;
mod evaluate_cli;
mod fixtures;
mod fuzz_corpus;
mod hardening;
mod live;
mod live_consent;
mod lsl_transport;
mod mqtt_tls;
mod mqtt_transport;
mod neurokit;
mod neurokit_eda_ppg;
mod osc_transport;
mod profile_cli;
mod profile_live;
mod recorder_live;
mod revoke_handshake;
mod robustness;
mod rr_artefacts;
mod serial;
mod simulated_people;
mod socket_trust;
mod spectral_agreement;
mod spectral_live;
mod streaming_vs_offline;
mod waveform_sim;
mod ws_live_page;
mod ws_transport;
