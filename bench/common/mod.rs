//! What the bench programs share: each declares `mod common;` and so compiles this folder as a
//! module of its own, using the part it needs — the random generator, the command-line walk of
//! the load generators, their latency figures and the milter's packet framing.

// Each program uses a different part; the rest is dead code in that program alone.
#![allow(dead_code)]

use std::str::FromStr;
use std::time::Instant;

/// xorshift64*: deterministic, dependency-free, good enough to spread events; the same seed
/// gives the same sequence in every bench and every run.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The generator of stream `stream` (a load's thread or connection) in the run seeded with
    /// `seed`: the two are mixed (splitmix64's finaliser) so that no two streams share a
    /// sequence. Adjacent numbers must not seed streams as they are: the state must not be zero,
    /// and the `| 1` that ensures it maps 2k and 2k + 1 to the same state.
    pub(crate) fn for_stream(seed: u64, stream: u64) -> Rng {
        let mut z = seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(stream.wrapping_add(1).wrapping_mul(0xd1b5_4a32_d192_ed03));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (below 1 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A number in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Hands the command line's `--option value` pairs to `apply`, in order, and stops at the first
/// error. The `--bench` that `cargo bench` passes to a harness-less target is skipped.
pub(crate) fn each_option(
    mut apply: impl FnMut(&str, String) -> Result<(), String>,
) -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--bench" {
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        apply(&arg, value)?;
    }
    Ok(())
}

/// `value` as the number option `arg` takes, or the line naming both.
pub(crate) fn number<T: FromStr>(arg: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("bad value for {arg}: {value}"))
}

/// Microseconds since `started`, saturating (a latency sample).
pub(crate) fn micros_since(started: Instant) -> u32 {
    started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

/// The `p` quantile (0 to 1) of sorted microsecond samples, in milliseconds; 0 when empty.
pub(crate) fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let index = ((sorted_us.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted_us[index.min(sorted_us.len() - 1)]) / 1000.0
}

/// Appends one milter packet: its 4-byte big-endian length (command byte included), the command
/// byte, the data. Written from the protocol's wire format, independently of the library's codec.
pub(crate) fn milter_packet(out: &mut Vec<u8>, code: u8, data: &[u8]) {
    out.extend_from_slice(&((data.len() + 1) as u32).to_be_bytes());
    out.push(code);
    out.extend_from_slice(data);
}
