//! Worker threads for the chunks of a pass, started once and reused: starting a thread costs
//! tens of microseconds, as much as a step of a small model; waking a parked one costs a few.
//!
//! The caller runs the first chunk itself and waits until every worker has reported its chunk
//! done before it returns, so the pointers a job carries never outlive the call that made them.

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
pub(super) unsafe fn run_chunks(launch: &Launch, chunks: &[(&[Task], *mut f32)]) {
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
            let job = Job { launch, tasks: tasks.as_ptr(), len: tasks.len(), partials: *partials, done: done.clone() };
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
        if finished.recv().is_err() {
            break;
        }
    }
}

/// Starts a worker that runs the jobs it receives until the process ends; `None` if the system
/// refuses a thread.
fn start_worker() -> Option<Sender<Job>> {
    let (jobs, receiver): (Sender<Job>, Receiver<Job>) = channel();
    let worker = move || {
        for job in receiver {
            // SAFETY: `run_chunks` keeps the job's pointers valid until it receives `done`.
            unsafe { (*job.launch).run(std::slice::from_raw_parts(job.tasks, job.len), job.partials) };
            let _ = job.done.send(());
        }
    };
    std::thread::Builder::new().name("optc-worker".into()).spawn(worker).ok()?;
    Some(jobs)
}
