//! Giving memory back after a flood. mimalloc frees a page's memory to the system only when
//! the thread that owns it next calls into the allocator and the page has been empty for a
//! while; a worker thread that goes quiet after thousands of connections closed would keep
//! their memory. So each worker thread that serves connections also runs a small task that
//! asks mimalloc, once a second, to collect what its heap no longer uses.

use std::cell::Cell;
use std::time::Duration;

thread_local! {
    static RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// Starts the collector of the current worker thread, once per thread.
pub fn ensure_collector() {
    if RUNNING.with(|r| r.replace(true)) {
        return;
    }
    // Pingora's worker runtimes are single-threaded: this task stays on this thread, whose
    // heap it collects.
    tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // SAFETY: mi_collect only walks this thread's own heap.
            unsafe { libmimalloc_sys::mi_collect(false) };
        }
    });
}
