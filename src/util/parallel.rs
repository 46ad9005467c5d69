//! Run independent per-component work on up to `jobs` threads, keeping order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub fn map<T: Sync, R: Send>(jobs: usize, items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let result = work(item);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("a worker thread panicked"))
        })
        .collect()
}

/// Run `work` on every item once the items it `needs` (indices into `items`)
/// have finished, up to `jobs` at a time: a ready queue, so an item starts as
/// soon as what it needs is done rather than when a whole wave is. Among ready
/// items, the given order. `work` also gets how many items are running or
/// ready as it starts, to share the CPUs. `needs` must be acyclic (the
/// callers' graphs are checked for cycles first); an index out of range or
/// pointing at the item itself is ignored.
pub fn ready_queue<T: Sync>(jobs: usize, items: &[T], needs: &[Vec<usize>], work: impl Fn(&T, usize) + Sync) {
    struct State {
        started: Vec<bool>,
        done: Vec<bool>,
    }
    let needs_of = |i: usize| {
        needs
            .get(i)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&n| n != i && n < items.len())
    };
    let state = Mutex::new(State {
        started: vec![false; items.len()],
        done: vec![false; items.len()],
    });
    let changed = std::sync::Condvar::new();
    let jobs = jobs.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut s = match state.lock() {
                    Ok(s) => s,
                    Err(poisoned) => poisoned.into_inner(),
                };
                loop {
                    let ready = |s: &State, i: usize| !s.started[i] && needs_of(i).all(|n| s.done[n]);
                    match (0..items.len()).find(|&i| ready(&s, i)) {
                        Some(i) => {
                            s.started[i] = true;
                            let running = (0..items.len()).filter(|&j| s.started[j] && !s.done[j]).count();
                            let waiting = (0..items.len()).filter(|&j| ready(&s, j)).count();
                            drop(s);
                            // A panic still marks the item done (else the
                            // others wait for ever), then goes on up.
                            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                work(&items[i], running + waiting)
                            }));
                            s = match state.lock() {
                                Ok(s) => s,
                                Err(poisoned) => poisoned.into_inner(),
                            };
                            s.done[i] = true;
                            changed.notify_all();
                            if let Err(panic) = outcome {
                                drop(s);
                                std::panic::resume_unwind(panic);
                            }
                        }
                        None if s.started.iter().all(|&b| b) => return,
                        None => {
                            s = match changed.wait(s) {
                                Ok(s) => s,
                                Err(poisoned) => poisoned.into_inner(),
                            };
                        }
                    }
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn an_item_starts_as_soon_as_what_it_needs_is_done() {
        // a (slow) and b (fast) need nothing; c needs b only. With a wave
        // scheduler c would wait for a; with the ready queue it finishes first.
        let items = ["a", "b", "c"];
        let needs = vec![vec![], vec![], vec![1]];
        let finished = Mutex::new(Vec::new());
        super::ready_queue(2, &items, &needs, |item, _| {
            if *item == "a" {
                std::thread::sleep(Duration::from_millis(300));
            }
            finished.lock().unwrap().push(*item);
        });
        assert_eq!(*finished.lock().unwrap(), ["b", "c", "a"]);
    }

    #[test]
    fn a_panic_reaches_the_caller_instead_of_hanging_the_others() {
        let items = ["a", "b", "c"];
        let needs = vec![vec![], vec![0], vec![]];
        let result = std::panic::catch_unwind(|| {
            super::ready_queue(2, &items, &needs, |item, _| {
                if *item == "a" {
                    panic!("boom");
                }
            })
        });
        assert!(result.is_err());
    }

    #[test]
    fn one_job_runs_in_dependency_order_then_given_order() {
        let items = ["a", "b", "c", "d"];
        // a needs c; b needs nothing; c needs d.
        let needs = vec![vec![2], vec![], vec![3], vec![]];
        let order = Mutex::new(Vec::new());
        super::ready_queue(1, &items, &needs, |item, _| order.lock().unwrap().push(*item));
        assert_eq!(*order.lock().unwrap(), ["b", "d", "c", "a"]);
    }
}
