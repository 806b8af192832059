//! Recorded edge timelines for the tests: `(time, contact closed?)` lists.

use std::time::Duration;

use super::Level;
use crate::config::{Edge, GpioConfig, Pull};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// The default config (pull-up, falling edge = closed is low, 30/20/20 ms).
pub fn config() -> GpioConfig {
    GpioConfig {
        pin: 17,
        pull: Pull::Up,
        edge: Edge::Falling,
        debounce_ms: 30,
        min_pulse_ms: 20,
        min_gap_ms: 20,
    }
}

/// A contact timeline being recorded.
#[derive(Default, Clone)]
pub struct Timeline(pub Vec<(Duration, bool)>);

impl Timeline {
    pub fn close(mut self, at: Duration) -> Self {
        self.0.push((at, true));
        self
    }

    pub fn open(mut self, at: Duration) -> Self {
        self.0.push((at, false));
        self
    }

    /// A clean closure of `width` starting at `at`.
    pub fn pulse(self, at: Duration, width: Duration) -> Self {
        self.close(at).open(at + width)
    }

    /// A closure of `width` with `n` bounces spread over 3 ms on each edge.
    pub fn bouncy_pulse(mut self, at: Duration, width: Duration, n: u32) -> Self {
        let step = us(3_000) / (2 * n);
        for (edge_at, closing) in [(at, true), (at + width, false)] {
            for i in 0..=(2 * n) {
                let closed = if i % 2 == 0 { closing } else { !closing };
                self.0.push((edge_at + step * i, closed));
            }
        }
        self
    }

    pub fn end(&self) -> Duration {
        self.0.last().map_or(Duration::ZERO, |(t, _)| *t)
    }

    /// As pin levels, for the given "closed" level.
    pub fn levels(&self, closed: Level) -> Vec<(Duration, Level)> {
        self.0
            .iter()
            .map(|&(t, c)| (t, if c { closed } else { closed.inverted() }))
            .collect()
    }

    /// The 16 Hz S0 worst case: 30 ms on, 32.5 ms off, for `seconds`.
    pub fn train_16hz(seconds: u64) -> Self {
        (0..seconds * 16).fold(Self::default(), |tl, i| {
            tl.pulse(us(62_500) * (i as u32) + ms(1_000), ms(30))
        })
    }
}
