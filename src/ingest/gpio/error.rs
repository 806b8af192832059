//! The GPIO input's error type: every message says what went wrong and how to fix it.
//!
//! This file only defines the messages; `rpi.rs` maps rppal's errors onto them.

/// Why the GPIO input could not start or stopped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GpioError {
    #[error(
        "GPIO input needs a Raspberry Pi; this machine is not one (rppal: unknown model). \
         Use the UDP input or run on the Pi."
    )]
    NotAPi,

    #[error(
        "permission denied opening {path} for GPIO pin {pin}: add the watermeter user to \
         the gpio group (`sudo usermod -aG gpio watermeter`) and restart watermeter"
    )]
    PermissionDenied { pin: u8, path: String },

    #[error(
        "GPIO pin {pin} is already in use by another program or driver ({detail}); stop the \
         other program, remove the device-tree overlay that claims the pin, or choose another pin"
    )]
    PinBusy { pin: u8, detail: String },

    #[error(
        "GPIO pin {pin} does not exist on this Raspberry Pi; use a BCM pin number from 0 to 27 \
         (17, 27, 22, 23, 24 and 25 are good choices, see docs/wiring.md)"
    )]
    InvalidPin { pin: u8 },

    #[error("GPIO pin {pin}: {detail}")]
    Io { pin: u8, detail: String },

    #[error("GPIO pin {pin}: the interrupt thread stopped unexpectedly ({detail})")]
    InterruptStopped { pin: u8, detail: String },

    #[error("GPIO input for meter {meter}: cannot start its thread ({detail})")]
    Thread { meter: String, detail: String },
}
