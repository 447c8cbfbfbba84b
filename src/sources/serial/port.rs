//! Opening a serial port, with errors a person can act on (edge).
//!
//! serialport 4 (built without libudev) opens the port exclusively (`TIOCEXCL` plus an
//! exclusive `flock`), 8N1, no flow control, with a read timeout. Its errors are mapped to one
//! line each: the port does not exist (unplugged, wrong path, a Bluetooth device not bound with
//! `rfcomm bind`), permission denied (the `dialout` group), busy (another program, or another
//! attune, holds the lock: serialport reports that as `NoDevice`, which is *not* "unplugged").

use std::io;
use std::path::Path;
use std::time::Duration;

/// Read timeout: how long a read waits for a byte before the loop checks its timers, s.
pub const READ_TIMEOUT: Duration = Duration::from_millis(20);

/// Why a port could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// No such device.
    #[error("no such port (is the device plugged in, and the path right?)")]
    NotFound,
    /// Permission denied.
    #[error(
        "permission denied: add your user to the dialout group (sudo usermod -aG dialout $USER, then log in again)"
    )]
    Permission,
    /// Another handle holds the port.
    #[error("the port is busy: another program (or another attune) has it open")]
    Busy,
    /// Anything else, as serialport says it.
    #[error("cannot open the port: {0}")]
    Other(String),
}

/// Opens `path` at `baud` (module doc).
pub fn open(path: &Path, baud: u32) -> Result<serialport::TTYPort, OpenError> {
    let Some(p) = path.to_str() else {
        return Err(OpenError::Other("the path is not UTF-8".into()));
    };
    if !path.exists() {
        return Err(OpenError::NotFound);
    }
    serialport::new(p, baud)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(READ_TIMEOUT)
        .open_native()
        .map_err(|e| classify(&e))
        .and_then(|p| {
            // Bytes the device sent before anyone listened are not this session's: a line
            // printed minutes ago would become a sample dated before the port was opened.
            use serialport::SerialPort;
            p.clear(serialport::ClearBuffer::Input)
                .map_err(|e| OpenError::Other(format!("cannot clear the input buffer: {e}")))?;
            Ok(p)
        })
}

fn classify(e: &serialport::Error) -> OpenError {
    match e.kind() {
        serialport::ErrorKind::NoDevice if e.description.contains("lock") => OpenError::Busy,
        serialport::ErrorKind::NoDevice => OpenError::NotFound,
        serialport::ErrorKind::Io(io::ErrorKind::NotFound) => OpenError::NotFound,
        serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => OpenError::Permission,
        _ if e.description.contains("Permission denied") => OpenError::Permission,
        _ if e.description.contains("busy") || e.description.contains("Busy") => OpenError::Busy,
        _ => OpenError::Other(e.description.clone()),
    }
}

/// One line for an I/O error on an open port (`BrokenPipe` is how serialport reports an
/// unplugged device or a closed pseudo-terminal).
pub fn describe_io(what: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::BrokenPipe => format!("{what}: the device was unplugged or closed the link"),
        _ => format!("{what}: {e}"),
    }
}
