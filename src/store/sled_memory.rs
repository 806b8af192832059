//! Gives back the 21 MB that sled 0.34 spends on metrics it never records.
//!
//! sled builds its metrics at its first use, also with metrics turned off (its
//! default `no_metrics` feature): 41 histograms of 2^16 eight-byte buckets, each
//! filled with zeros by writing them, so every one of their pages is resident.
//! With metrics off nothing ever writes them again. On a Pi Zero 2 W (512 MB) that
//! was more than half of the whole process.
//!
//! The binary installs [`Allocator`] (the system allocator, plus this): while the
//! process opens sled for the first time, it notes every allocation of exactly one
//! histogram's size made by the opening thread. If there are exactly as many as
//! sled has histograms, and every byte of them is zero, their pages go back to the
//! kernel (`madvise(MADV_DONTNEED)`): the memory stays allocated and reads as the
//! same zeros, it just holds no page until something writes to it. Anything else
//! (another count, a non-zero byte, a process without this allocator) leaves the
//! memory as it is.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One sled 0.34 histogram: 2^16 buckets of `AtomicUsize`.
const HISTOGRAM_BYTES: usize = (1 << 16) * std::mem::size_of::<usize>();
/// How many sled 0.34.7's `Metrics` holds.
const HISTOGRAMS: usize = 41;
/// Room for what one open may allocate of that size.
const SLOTS: usize = 64;

thread_local! {
    /// This thread is opening sled for the first time.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
}

static SEEN: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static COUNT: AtomicUsize = AtomicUsize::new(0);
static FIRST_OPEN_DONE: AtomicBool = AtomicBool::new(false);
/// Bytes given back, for the log and `/metrics`.
static RELEASED: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, noting histogram-sized allocations while sled first opens.
pub struct Allocator;

fn capturing() -> bool {
    CAPTURING.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every call is passed on to `System` unchanged; the extra bookkeeping
// only stores addresses in atomics and never touches the memory.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        let p = unsafe { System.alloc(layout) };
        if layout.size() == HISTOGRAM_BYTES && !p.is_null() && capturing() {
            let i = COUNT.fetch_add(1, Ordering::Relaxed);
            if let Some(slot) = SEEN.get(i) {
                slot.store(p as usize, Ordering::Relaxed);
            }
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if layout.size() == HISTOGRAM_BYTES && capturing() {
            // Freed again during the open: not a histogram (they live forever).
            for slot in &SEEN {
                let _ = slot.compare_exchange(p as usize, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        // SAFETY: the caller's contract for `dealloc` is passed on as it is.
        unsafe { System.dealloc(p, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on as it is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is passed on as it is.
        unsafe { System.realloc(p, layout, new_size) }
    }
}

/// Runs `open` (which opens sled). The first time in the process, sled's metrics
/// are built inside it: their pages are given back afterwards (see the module).
pub fn first_open<T>(open: impl FnOnce() -> T) -> T {
    if FIRST_OPEN_DONE.swap(true, Ordering::SeqCst) {
        return open();
    }
    let _ = CAPTURING.try_with(|c| c.set(true));
    let result = open();
    let _ = CAPTURING.try_with(|c| c.set(false));
    release();
    result
}

/// Bytes of sled's metrics given back to the kernel (0: none).
pub fn released_bytes() -> usize {
    RELEASED.load(Ordering::Relaxed)
}

fn release() {
    let seen: Vec<usize> = SEEN
        .iter()
        .map(|s| s.swap(0, Ordering::Relaxed))
        .filter(|&p| p != 0)
        .collect();
    if COUNT.load(Ordering::Relaxed) != HISTOGRAMS || seen.len() != HISTOGRAMS {
        tracing::debug!(
            found = seen.len(),
            "sled's metrics are not the {HISTOGRAMS} histograms of sled 0.34.7: left as they are"
        );
        return;
    }
    let page = page_size();
    let mut released = 0;
    for start in seen {
        // SAFETY: `start` is a live allocation of HISTOGRAM_BYTES (never freed
        // during the open, and sled's metrics live as long as the process), so
        // reading it as words is in bounds; it is 8-byte aligned (AtomicUsize).
        let words = unsafe {
            std::slice::from_raw_parts(start as *const usize, HISTOGRAM_BYTES / size_of::<usize>())
        };
        if words.iter().any(|&w| w != 0) {
            continue;
        }
        let from = start.div_ceil(page) * page;
        let to = (start + HISTOGRAM_BYTES) / page * page;
        if to <= from {
            continue;
        }
        // SAFETY: [from, to) lies inside the allocation, page-aligned; it holds
        // only zeros, and MADV_DONTNEED on private anonymous memory makes it read
        // as zeros again: the values the program sees do not change.
        let r = unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED) };
        if r == 0 {
            released += to - from;
        }
    }
    RELEASED.store(released, Ordering::Relaxed);
    tracing::debug!(
        "gave {} bytes of sled's unused metrics back to the kernel",
        released
    );
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}
