//! Ctrl-C and SIGTERM during `optc run`: the first asks the run to stop at the end of the
//! step it is in (and to write its log, checkpoint and plot); a second exits at once, removing
//! the temporary files being written ([`crate::fsio::exit_now`]), so no file is left half
//! written. Signals are taken by a thread (signal-hook's iterator), not in a handler, so that
//! what is done on them may lock and allocate.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked the run to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);

/// Starts listening for SIGINT and SIGTERM; returns an error if they cannot be caught.
#[cfg(unix)]
pub fn listen() -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| format!("cannot catch Ctrl-C: {e}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if STOP.swap(signal, Ordering::SeqCst) != 0 {
                    eprintln!("\nstopping at once");
                    crate::fsio::exit_now(128 + signal);
                }
                eprintln!("\nstopping at the end of this step (press Ctrl-C again to stop at once)");
            }
        })
        .map(drop)
        .map_err(|e| format!("cannot catch Ctrl-C: {e}"))
}

#[cfg(not(unix))]
pub fn listen() -> Result<(), String> {
    Ok(())
}

/// The signal that asked the run to stop, if one did.
pub fn requested() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The name of a signal, for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        2 => "Ctrl-C (SIGINT)",
        15 => "SIGTERM",
        _ => "a signal",
    }
}
