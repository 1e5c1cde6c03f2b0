//! Work split over scoped threads, started for the call. A thread the system refuses to start
//! is no error: its share runs on the calling thread.

use std::sync::Mutex;

/// The cores this process may use (1 if that cannot be told).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `f` of each of `items`, in order, over up to `threads` threads: contiguous runs of items, the
/// first on the calling thread.
pub fn map<T: Send, R: Send>(items: Vec<T>, threads: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len()).max(1);
    if threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let size = items.len().div_ceil(threads);
    let mut items = items.into_iter();
    // Each run waits in its slot for whichever thread takes it first.
    let slots: Vec<Mutex<Option<Vec<T>>>> =
        (0..threads).map(|_| Mutex::new(Some(items.by_ref().take(size).collect()))).collect();
    let run = |slot: &Mutex<Option<Vec<T>>>| -> Option<Vec<R>> {
        let run = slot.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        Some(run.into_iter().map(&f).collect())
    };
    let mut results: Vec<Option<Vec<R>>> = std::thread::scope(|scope| {
        let run = &run;
        let others: Vec<_> = slots[1..].iter().map(|slot| std::thread::Builder::new().spawn_scoped(scope, move || run(slot))).collect();
        let mut results = vec![run(&slots[0])];
        for handle in others {
            results.push(match handle.map(|h| h.join()) {
                Ok(Ok(result)) => result,
                // A panic in `f` is a bug: it goes on here, as it would have on one thread.
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                // The thread did not start: its run is still in its slot.
                Err(_) => None,
            });
        }
        results
    });
    // Runs no thread took are still in their slots.
    for (result, slot) in results.iter_mut().zip(&slots) {
        if result.is_none() {
            *result = run(slot);
        }
    }
    results.into_iter().flatten().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items_for_any_thread_count() {
        let items: Vec<u32> = (0..23).collect();
        let expected: Vec<u32> = items.iter().map(|x| x * x).collect();
        for threads in [0, 1, 2, 3, 8, 40] {
            assert_eq!(map(items.clone(), threads, |x| x * x), expected, "{threads} threads");
        }
        assert!(map(Vec::<u32>::new(), 4, |x| x).is_empty());
    }

    #[test]
    fn items_may_be_mutable_borrows() {
        let mut data = vec![1.0f32; 100];
        let chunks: Vec<&mut [f32]> = data.chunks_mut(7).collect();
        let sums = map(chunks, 3, |c| {
            c.iter_mut().for_each(|x| *x *= 2.0);
            c.iter().sum::<f32>()
        });
        assert_eq!(sums.iter().sum::<f32>(), 200.0);
        assert!(data.iter().all(|&x| x == 2.0));
    }
}
