//! What one journal record holds: a list of store operations, and their bytes.
//!
//! Events are stored resolved (meter, time, milliliters): a counter value has been
//! turned into liters before it is journaled, so a replay never depends on how a
//! later version reads counters. Small state (counter position, alert state, mail
//! outbox, meter registry) travels as plain key puts and deletes. Pure: no IO.
//!
//! Payload: `version u8 = 1`, then ops, each `tag u8` and its fields; integers
//! are varints, times zigzag deltas, keys and values length-prefixed.

use super::codec::{get_varint, put_varint};

const VERSION: u8 = 1;

/// One event as stored: which meter (its stable key), when, how much.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub meter: u16,
    pub ts_ms: i64,
    pub ml: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Events, with `forward` when each is also queued for `[forward]`.
    Events {
        forward: bool,
        events: Vec<Event>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Del {
        key: Vec<u8>,
    },
    /// Deletes every key in `from..=to`.
    DelRange {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    /// "The meter shows `m3` at `at_ms`", set on the dashboard while the config said
    /// `was_m3` at `was_anchor_ms` (`i64::MIN`: none).
    SetReading {
        meter: u16,
        m3: f64,
        at_ms: i64,
        was_m3: f64,
        was_anchor_ms: i64,
    },
    /// The owner's correction of `[from_ms, to_ms)`: its events go, and with
    /// `set_ml` that many milliliters are spread over it instead (`store::correct`).
    Correct {
        meter: u16,
        from_ms: i64,
        to_ms: i64,
        set_ml: Option<u64>,
        at_ms: i64,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("it was written by a newer version of watermeter (record version {0})")]
    Version(u8),
    #[error("it ends in the middle of an operation")]
    Short,
    #[error("it holds an unknown operation {0}")]
    UnknownOp(u8),
}

mod tag {
    pub const EVENTS: u8 = 1;
    pub const PUT: u8 = 2;
    pub const DEL: u8 = 3;
    pub const DEL_RANGE: u8 = 4;
    pub const SET_READING: u8 = 5;
    pub const CORRECT: u8 = 6;
}

/// The events and milliliters a record adds (what applying it reports).
pub fn applied(ops: &[Op]) -> super::Applied {
    let mut applied = super::Applied::default();
    for op in ops {
        if let Op::Events { events, .. } = op {
            for e in events.iter().filter(|e| e.ml > 0) {
                applied.events += 1;
                applied.milliliters += e.ml;
            }
        }
    }
    applied
}

pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut out = vec![VERSION];
    for op in ops {
        match op {
            Op::Events { forward, events } => {
                out.push(tag::EVENTS);
                out.push(u8::from(*forward));
                put_varint(&mut out, events.len() as u64);
                let mut prev = 0i64;
                for e in events {
                    put_varint(&mut out, u64::from(e.meter));
                    put_varint(&mut out, zigzag(e.ts_ms.wrapping_sub(prev)));
                    put_varint(&mut out, e.ml);
                    prev = e.ts_ms;
                }
            }
            Op::Put { key, value } => {
                out.push(tag::PUT);
                put_bytes(&mut out, key);
                put_bytes(&mut out, value);
            }
            Op::Del { key } => {
                out.push(tag::DEL);
                put_bytes(&mut out, key);
            }
            Op::DelRange { from, to } => {
                out.push(tag::DEL_RANGE);
                put_bytes(&mut out, from);
                put_bytes(&mut out, to);
            }
            Op::SetReading {
                meter,
                m3,
                at_ms,
                was_m3,
                was_anchor_ms,
            } => {
                out.push(tag::SET_READING);
                put_varint(&mut out, u64::from(*meter));
                out.extend_from_slice(&m3.to_le_bytes());
                out.extend_from_slice(&at_ms.to_le_bytes());
                out.extend_from_slice(&was_m3.to_le_bytes());
                out.extend_from_slice(&was_anchor_ms.to_le_bytes());
            }
            Op::Correct {
                meter,
                from_ms,
                to_ms,
                set_ml,
                at_ms,
                reason,
            } => {
                out.push(tag::CORRECT);
                put_varint(&mut out, u64::from(*meter));
                out.extend_from_slice(&from_ms.to_le_bytes());
                out.extend_from_slice(&to_ms.to_le_bytes());
                // 0: delete; n + 1: set n milliliters.
                put_varint(&mut out, set_ml.map_or(0, |ml| ml.saturating_add(1)));
                out.extend_from_slice(&at_ms.to_le_bytes());
                put_bytes(&mut out, reason.as_bytes());
            }
        }
    }
    out
}

pub fn decode(payload: &[u8]) -> Result<Vec<Op>, DecodeError> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    match r.byte()? {
        VERSION => {}
        v => return Err(DecodeError::Version(v)),
    }
    let mut ops = Vec::new();
    while r.pos < payload.len() {
        let op = match r.byte()? {
            tag::EVENTS => {
                let forward = r.byte()? != 0;
                let n = r.varint()?;
                // A count larger than the bytes left is damage: never allocate for it.
                let mut events = Vec::with_capacity((n as usize).min(payload.len()));
                let mut prev = 0i64;
                for _ in 0..n {
                    let meter = u16::try_from(r.varint()?).map_err(|_| DecodeError::Short)?;
                    let ts_ms = prev.wrapping_add(unzigzag(r.varint()?));
                    let ml = r.varint()?;
                    events.push(Event { meter, ts_ms, ml });
                    prev = ts_ms;
                }
                Op::Events { forward, events }
            }
            tag::PUT => Op::Put {
                key: r.bytes()?,
                value: r.bytes()?,
            },
            tag::DEL => Op::Del { key: r.bytes()? },
            tag::DEL_RANGE => Op::DelRange {
                from: r.bytes()?,
                to: r.bytes()?,
            },
            tag::SET_READING => Op::SetReading {
                meter: u16::try_from(r.varint()?).map_err(|_| DecodeError::Short)?,
                m3: f64::from_le_bytes(r.array()?),
                at_ms: i64::from_le_bytes(r.array()?),
                was_m3: f64::from_le_bytes(r.array()?),
                was_anchor_ms: i64::from_le_bytes(r.array()?),
            },
            tag::CORRECT => Op::Correct {
                meter: u16::try_from(r.varint()?).map_err(|_| DecodeError::Short)?,
                from_ms: i64::from_le_bytes(r.array()?),
                to_ms: i64::from_le_bytes(r.array()?),
                set_ml: r.varint()?.checked_sub(1),
                at_ms: i64::from_le_bytes(r.array()?),
                reason: String::from_utf8_lossy(&r.bytes()?).into_owned(),
            },
            other => return Err(DecodeError::UnknownOp(other)),
        };
        ops.push(op);
    }
    Ok(ops)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Short)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        get_varint(self.buf, &mut self.pos).ok_or(DecodeError::Short)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = usize::try_from(self.varint()?).map_err(|_| DecodeError::Short)?;
        let end = self.pos.checked_add(n).ok_or(DecodeError::Short)?;
        let b = self.buf.get(self.pos..end).ok_or(DecodeError::Short)?;
        self.pos = end;
        Ok(b.to_vec())
    }

    fn array(&mut self) -> Result<[u8; 8], DecodeError> {
        let end = self.pos + 8;
        let b = self.buf.get(self.pos..end).ok_or(DecodeError::Short)?;
        self.pos = end;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(meter: u16, ts_ms: i64, ml: u64) -> Event {
        Event { meter, ts_ms, ml }
    }

    #[test]
    fn every_operation_round_trips() {
        let ops = vec![
            Op::Events {
                forward: true,
                events: vec![
                    ev(0, 1_700_000_000_000, 1000),
                    ev(3, -5, 250),
                    ev(0, i64::MAX, 0),
                ],
            },
            Op::Put {
                key: b"Ameter".to_vec(),
                value: b"{}".to_vec(),
            },
            Op::Del { key: vec![b'O', 1] },
            Op::DelRange {
                from: vec![b'F', 0],
                to: vec![b'F', 9],
            },
            Op::SetReading {
                meter: 2,
                m3: 123.456,
                at_ms: 1_700_000_000_000,
                was_m3: 0.0,
                was_anchor_ms: i64::MIN,
            },
        ];
        assert_eq!(decode(&encode(&ops)), Ok(ops));
    }

    #[test]
    fn a_one_liter_pulse_costs_a_few_bytes() {
        let events: Vec<Event> = (0..100)
            .map(|i| ev(0, 1_700_000_000_000 + i * 2_000, 1000))
            .collect();
        let bytes = encode(&[Op::Events {
            forward: false,
            events,
        }]);
        assert!(bytes.len() < 100 * 6 + 20, "{} bytes", bytes.len());
    }

    #[test]
    fn truncated_or_foreign_payloads_are_errors_not_panics() {
        let full = encode(&[Op::Put {
            key: vec![1, 2, 3],
            value: vec![4; 40],
        }]);
        for cut in 2..full.len() {
            assert_eq!(
                decode(&full[..cut]),
                Err(DecodeError::Short),
                "cut at {cut}"
            );
        }
        assert_eq!(decode(&[9]), Err(DecodeError::Version(9)));
        assert_eq!(decode(&[VERSION, 77]), Err(DecodeError::UnknownOp(77)));
        assert_eq!(
            decode(&[VERSION, tag::EVENTS, 0, 0xff, 0xff, 0xff, 0x0f]),
            Err(DecodeError::Short)
        );
    }
}
