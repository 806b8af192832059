//! The real hardware: a Raspberry Pi GPIO pin read through rppal (the `rpi-pal` fork).
//!
//! Edges come from the kernel's GPIO character device (`/dev/gpiochipN`, which is how
//! the Pi 5's RP1 chip works too) with its debounce period applied; both edges are
//! requested so the filter sees pulse widths. rppal's interrupt thread only forwards
//! events into a channel, so nothing here ever blocks the interrupt thread.
//!
//! This file does not filter or count: see `filter.rs`. rppal refuses to start on
//! non-Pi hardware; that error becomes [`GpioError::NotAPi`] with its fix.

use std::sync::mpsc;
use std::time::Duration;

use rppal::gpio::{Event, Gpio, InputPin, Trigger};

use super::{EdgeEvent, EdgeSource, GpioError, Level, Next};
use crate::config::{GpioConfig, Pull};

/// Open the configured pin with its pull resistor and kernel debounce, both edges.
pub fn open_rppal(cfg: &GpioConfig) -> Result<Box<dyn EdgeSource>, GpioError> {
    Ok(Box::new(RppalSource::open(cfg)?))
}

/// A GPIO pin delivering its edges through rppal's asynchronous interrupt.
pub struct RppalSource {
    pin: InputPin,
    edges: mpsc::Receiver<EdgeEvent>,
}

impl RppalSource {
    pub fn open(cfg: &GpioConfig) -> Result<Self, GpioError> {
        let to_gpio_error = |e| map_error(cfg.pin, e);
        let pin = Gpio::new()
            .map_err(to_gpio_error)?
            .get(cfg.pin)
            .map_err(to_gpio_error)?;
        let mut pin = match cfg.pull {
            Pull::Up => pin.into_input_pullup(),
            Pull::Down => pin.into_input_pulldown(),
            Pull::Off => pin.into_input(),
        };
        let debounce = (cfg.debounce_ms > 0).then(|| Duration::from_millis(cfg.debounce_ms.into()));
        let (tx, edges) = mpsc::channel();
        pin.set_async_interrupt(Trigger::Both, debounce, move |event: Event| {
            // The receiver is gone only while shutting down; nothing to do then.
            let _ = tx.send(edge_event(event));
        })
        .map_err(to_gpio_error)?;
        Ok(Self { pin, edges })
    }
}

impl EdgeSource for RppalSource {
    fn next_edge(&mut self, timeout: Duration) -> Result<Next, GpioError> {
        match self.edges.recv_timeout(timeout) {
            Ok(edge) => Ok(Next::Edge(edge)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(Next::Timeout),
            // rppal's interrupt thread ended: its result says why.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let pin = self.pin.pin();
                Err(match self.pin.clear_async_interrupt() {
                    Err(e) => map_error(pin, e),
                    Ok(()) => GpioError::InterruptStopped {
                        pin,
                        detail: "rppal's interrupt thread ended without an error".into(),
                    },
                })
            }
        }
    }

    fn mono_now(&self) -> Duration {
        monotonic_now()
    }

    fn level_now(&self) -> Option<Level> {
        Some(match self.pin.read() {
            rppal::gpio::Level::High => Level::High,
            rppal::gpio::Level::Low => Level::Low,
        })
    }
}

fn edge_event(event: Event) -> EdgeEvent {
    let level = match event.trigger {
        Trigger::RisingEdge => Level::High,
        _ => Level::Low,
    };
    EdgeEvent {
        level,
        mono: event.timestamp,
    }
}

/// CLOCK_MONOTONIC now: the clock the kernel stamps GPIO v2 line events with (rppal
/// does not request the realtime or HTE event clock), so it matches `Event::timestamp`.
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// rppal's error → a [`GpioError`] that names the fix.
pub(crate) fn map_error(pin: u8, err: rppal::gpio::Error) -> GpioError {
    use rppal::gpio::Error as E;
    match err {
        E::UnknownModel => GpioError::NotAPi,
        E::PermissionDenied(path) => GpioError::PermissionDenied { pin, path },
        E::PinUsed(pin) => GpioError::PinBusy {
            pin,
            detail: "this watermeter process already uses it, for another meter".into(),
        },
        E::PinNotAvailable(pin) => GpioError::InvalidPin { pin },
        E::Io(e) if e.raw_os_error() == Some(libc::EBUSY) => GpioError::PinBusy {
            pin,
            detail: "the kernel answered: device or resource busy".into(),
        },
        E::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            GpioError::PermissionDenied {
                pin,
                path: "/dev/gpiochip*".into(),
            }
        }
        E::Io(e) => GpioError::Io {
            pin,
            detail: e.to_string(),
        },
        E::ThreadPanic => GpioError::InterruptStopped {
            pin,
            detail: "rppal's interrupt thread panicked".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: rppal::gpio::Error, expected: &str) {
        assert_eq!(map_error(17, err).to_string(), expected);
    }

    #[test]
    fn unknown_model_says_this_is_not_a_pi_and_names_the_udp_input() {
        check(
            rppal::gpio::Error::UnknownModel,
            "GPIO input needs a Raspberry Pi; this machine is not one (rppal: unknown model). \
             Use the UDP input or run on the Pi.",
        );
    }

    #[test]
    fn permission_denied_names_the_device_and_the_gpio_group() {
        check(
            rppal::gpio::Error::PermissionDenied("/dev/gpiomem".into()),
            "permission denied opening /dev/gpiomem for GPIO pin 17: add the watermeter user \
             to the gpio group (`sudo usermod -aG gpio watermeter`) and restart watermeter",
        );
    }

    #[test]
    fn permission_denied_io_error_on_the_chip_names_the_gpio_group() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let msg = map_error(17, rppal::gpio::Error::Io(io)).to_string();
        assert!(msg.contains("/dev/gpiochip*"), "{msg}");
        assert!(
            msg.contains("add the watermeter user to the gpio group"),
            "{msg}"
        );
    }

    #[test]
    fn kernel_busy_line_says_the_pin_is_used_by_another_program_or_driver() {
        let io = std::io::Error::from_raw_os_error(libc::EBUSY);
        let msg = map_error(17, rppal::gpio::Error::Io(io)).to_string();
        assert!(
            msg.starts_with(
                "GPIO pin 17 is already in use by another program or driver (the kernel \
                 answered: device or resource busy)"
            ),
            "{msg}"
        );
    }

    #[test]
    fn pin_taken_in_this_process_says_already_in_use() {
        let msg = map_error(17, rppal::gpio::Error::PinUsed(17)).to_string();
        assert!(
            msg.starts_with("GPIO pin 17 is already in use by another program or driver ("),
            "{msg}"
        );
    }

    #[test]
    fn unavailable_pin_names_the_pin_and_the_valid_range() {
        let msg = map_error(40, rppal::gpio::Error::PinNotAvailable(40)).to_string();
        assert!(
            msg.starts_with("GPIO pin 40 does not exist on this Raspberry Pi"),
            "{msg}"
        );
        assert!(msg.contains("from 0 to 27"), "{msg}");
    }

    #[test]
    fn other_io_errors_keep_the_pin_and_the_cause() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let msg = map_error(22, rppal::gpio::Error::Io(io)).to_string();
        assert!(msg.starts_with("GPIO pin 22: "), "{msg}");
        assert!(msg.contains("No such file or directory"), "{msg}");
    }

    #[test]
    fn opening_a_pin_off_a_pi_gives_the_not_a_pi_error() {
        let on_a_pi = std::fs::read_to_string("/proc/device-tree/model")
            .is_ok_and(|model| model.contains("Raspberry Pi"));
        if on_a_pi {
            return; // On real hardware this opens the pin instead.
        }
        let cfg = GpioConfig {
            pin: 17,
            pull: Pull::Up,
            edge: crate::config::Edge::Falling,
            debounce_ms: 30,
            min_pulse_ms: 20,
            min_gap_ms: 20,
        };
        let err = open_rppal(&cfg).err();
        assert_eq!(err, Some(GpioError::NotAPi));
    }

    #[test]
    fn the_monotonic_clock_never_goes_back() {
        let a = monotonic_now();
        let b = monotonic_now();
        assert!(a > Duration::ZERO && b >= a);
    }
}
