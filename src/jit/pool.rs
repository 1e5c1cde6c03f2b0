//! Worker threads for the chunks of a pass, started once and reused: starting a thread costs
//! tens of microseconds, as much as a step of a small model; waking a parked one costs a few.
//!
//! The caller runs the first chunk itself and waits until every worker has reported its chunk
//! done before it returns, so the pointers a job carries never outlive the call that made them.
//!
//! Between the passes of one step, threads spin for their next message a little before they
//! park: the next pass follows within tens of microseconds, and waking a parked thread can take
//! a hundred or more on a virtual machine (Adafactor's three passes on a 2048 x 2048 leaf, on 2
//! threads, eight alternating runs each: 0.64-0.81 of its probe, median 0.71, against 0.56-0.70,
//! median 0.67, parking at once). After a step's last pass they park at once, leaving the cores
//! to the model.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, OnceLock};

use super::Task;
use super::run::Launch;

/// One chunk of a pass for one worker.
struct Job {
    launch: *const Launch,
    tasks: *const Task,
    len: usize,
    partials: *mut f32,
    done: Sender<()>,
    /// Whether another pass of the step follows (then the worker spins for it before parking).
    more: bool,
}

// SAFETY: a job's pointers are valid until its `done` message is received (see `run_chunks`),
// and the chunks of one call touch disjoint elements and partial rows.
unsafe impl Send for Job {}

/// The senders of the workers started so far.
static WORKERS: OnceLock<Mutex<Vec<Sender<Job>>>> = OnceLock::new();

/// Runs `launch` on each of `chunks` (task runs with the partial rows they write), the first on
/// this thread and the others on pool workers, and returns when all are done.
///
/// # Safety
/// Every task must have been checked by `run_pass`, and the chunks must touch disjoint elements
/// and disjoint partial rows.
pub(super) unsafe fn run_chunks(launch: &Launch, chunks: &[(&[Task], *mut f32)], more: bool) {
    let Some(((first, first_partials), rest)) = chunks.split_first() else { return };
    let (done, finished) = channel();
    let mut sent = 0;
    {
        let mut workers = WORKERS.get_or_init(|| Mutex::new(Vec::new())).lock().unwrap_or_else(|e| e.into_inner());
        while workers.len() < rest.len()
            && let Some(worker) = start_worker()
        {
            workers.push(worker);
        }
        for (i, (tasks, partials)) in rest.iter().enumerate() {
            let job = Job { launch, tasks: tasks.as_ptr(), len: tasks.len(), partials: *partials, done: done.clone(), more };
            match workers.get(i).map(|w| w.send(job)) {
                Some(Ok(())) => sent += 1,
                // No worker (the system refused a thread) or a dead one: run the chunk here.
                // SAFETY: the caller's contract.
                _ => unsafe { launch.run(tasks, *partials) },
            }
        }
    }
    drop(done);
    // SAFETY: the caller's contract.
    unsafe { launch.run(first, *first_partials) };
    // Wait for every job sent. `recv` fails only when every sender is gone, that is when every
    // job has finished or its worker has died; either way no worker touches the memory any more.
    for _ in 0..sent {
        if next(&finished, true).is_none() {
            break;
        }
    }
}

/// Starts a worker that runs the jobs it receives until the process ends; `None` if the system
/// refuses a thread.
fn start_worker() -> Option<Sender<Job>> {
    let (jobs, receiver): (Sender<Job>, Receiver<Job>) = channel();
    let worker = move || {
        let mut spin = false;
        while let Some(job) = next(&receiver, spin) {
            // SAFETY: `run_chunks` keeps the job's pointers valid until it receives `done`.
            unsafe { (*job.launch).run(std::slice::from_raw_parts(job.tasks, job.len), job.partials) };
            spin = job.more;
            let _ = job.done.send(());
        }
    };
    std::thread::Builder::new().name("optc-worker".into()).spawn(worker).ok()?;
    Some(jobs)
}

/// The next message, spinning for it a little first if `spin`, then parked until it comes.
/// `None` once every sender is gone.
fn next<T>(receiver: &Receiver<T>, spin: bool) -> Option<T> {
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
