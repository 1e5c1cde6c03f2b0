//! Worker threads for the chunks of a pass, started once and reused: starting a thread costs
//! tens of microseconds, as much as a step of a small model.
//!
//! A pass is cut into several chunks per thread; the caller and the workers each claim the next
//! chunk not yet taken, so a thread that something else slows down takes fewer instead of
//! holding the pass. The caller waits until every worker has reported its share done before it
//! returns, so the pointers a job carries never outlive the call that made them.
//!
//! Between the passes of one step, threads spin for their next message a little before they
//! park: the next pass follows within tens of microseconds, and waking a parked thread can take
//! a hundred or more on a virtual machine. After a step's last pass they park at once, leaving
//! the cores to the model. Adafactor's three passes on a 2048 x 2048 leaf on 2 threads, eight
//! alternating runs each on this machine, of its probe: parking at once and one chunk per
//! thread 0.51-0.80 (median 0.745), spinning 0.65-0.85 (0.76), spinning and claiming
//! 0.55-0.86 (0.805).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use super::Task;
use super::run::Launch;

/// A worker's share of a pass: it claims chunks from `next` until none is left.
struct Job {
    launch: *const Launch,
    chunks: *const (&'static [Task], *mut f32),
    len: usize,
    next: *const AtomicUsize,
    done: Sender<()>,
    /// Whether another pass of the step follows (then the worker spins for it before parking).
    more: bool,
}

// SAFETY: a job's pointers are valid until its `done` message is received (see `run_chunks`),
// and the chunks of one call touch disjoint elements and partial rows.
unsafe impl Send for Job {}

/// The senders of the workers started so far.
static WORKERS: OnceLock<Mutex<Vec<Sender<Job>>>> = OnceLock::new();

/// Runs `launch` on every one of `chunks` (task runs with the partial rows they write) on
/// `threads` threads, this one and pool workers, each claiming the next chunk not yet taken
/// (so a thread slowed by other work takes fewer), and returns when all are done.
///
/// # Safety
/// Every task must have been checked by `run_pass`, and the chunks must touch disjoint elements
/// and disjoint partial rows.
pub(super) unsafe fn run_chunks(launch: &Launch, chunks: &[(&[Task], *mut f32)], threads: usize, more: bool) {
    let next = AtomicUsize::new(0);
    let (done, finished) = channel();
    let mut sent = 0;
    {
        let helpers = threads.saturating_sub(1).min(chunks.len().saturating_sub(1));
        let mut workers = WORKERS.get_or_init(|| Mutex::new(Vec::new())).lock().unwrap_or_else(|e| e.into_inner());
        while workers.len() < helpers
            && let Some(worker) = start_worker()
        {
            workers.push(worker);
        }
        for worker in workers.iter().take(helpers) {
            // (The lifetime is erased: the job ends before `chunks` does.)
            let job = Job { launch, chunks: chunks.as_ptr().cast(), len: chunks.len(), next: &next, done: done.clone(), more };
            // A dead worker leaves its share to the others.
            if worker.send(job).is_ok() {
                sent += 1;
            }
        }
    }
    drop(done);
    // SAFETY: the caller's contract.
    unsafe { claim(launch, chunks, &next) };
    // Wait for every job sent. `recv` fails only when every sender is gone, that is when every
    // job has finished or its worker has died; either way no worker touches the memory any more.
    for _ in 0..sent {
        if next_message(&finished, true).is_none() {
            break;
        }
    }
}

/// Runs the chunks not yet claimed, one at a time, until none is left.
///
/// # Safety
/// As [`run_chunks`].
unsafe fn claim(launch: &Launch, chunks: &[(&[Task], *mut f32)], next: &AtomicUsize) {
    while let Some((tasks, partials)) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
        // SAFETY: the caller's contract; each chunk is claimed by one thread only.
        unsafe { launch.run(tasks, *partials) };
    }
}

/// Starts a worker that runs the jobs it receives until the process ends; `None` if the system
/// refuses a thread.
fn start_worker() -> Option<Sender<Job>> {
    let (jobs, receiver): (Sender<Job>, Receiver<Job>) = channel();
    let worker = move || {
        let mut spin = false;
        while let Some(job) = next_message(&receiver, spin) {
            // SAFETY: `run_chunks` keeps the job's pointers valid until it receives `done`.
            unsafe { claim(&*job.launch, std::slice::from_raw_parts(job.chunks, job.len), &*job.next) };
            spin = job.more;
            let _ = job.done.send(());
        }
    };
    std::thread::Builder::new().name("optc-worker".into()).spawn(worker).ok()?;
    Some(jobs)
}

/// The next message, spinning for it a little first if `spin`, then parked until it comes.
/// `None` once every sender is gone.
fn next_message<T>(receiver: &Receiver<T>, spin: bool) -> Option<T> {
    if !spin {
        return receiver.recv().ok();
    }
    let start = std::time::Instant::now();
    loop {
        match receiver.try_recv() {
            Ok(message) => return Some(message),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) if start.elapsed() < SPIN => std::hint::spin_loop(),
            Err(std::sync::mpsc::TryRecvError::Empty) => return receiver.recv().ok(),
        }
    }
}

/// How long a thread spins for its next message before it parks.
const SPIN: std::time::Duration = std::time::Duration::from_micros(100);
