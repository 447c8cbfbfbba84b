//! Sources: the I/O edges that feed the pipeline. Only `replay` exists so far; BLE, serial and
//! the simulated serial device arrive with later issues.

pub mod replay;
