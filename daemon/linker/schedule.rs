//! The order package folders are built in: a package only after the package folder it is
//! nested in (its nearest ancestor among those being built), and among those ready, the one
//! with the most files first, on as many threads as the linking pool has.
//!
//! Building level by level (all depth-1 folders, then all depth-2…) left a core idle at the end
//! of each level while the other finished the level's last big package; largest-first with no
//! barrier keeps both busy until the small ones at the very end.
//!
//! Must not: build anything itself (the caller's closure does), or start a package before its
//! ancestor's closure returned.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex};

use rustc_hash::FxHashMap;

/// What to build: a location (`node_modules/a/node_modules/b`) and how much work it is.
pub trait Job: Sync {
    fn location(&self) -> &str;
    fn weight(&self) -> usize;
}

/// For each job, the jobs nested in it directly (whose nearest ancestor among `jobs` it is);
/// and the jobs with no ancestor among them.
fn nesting<J: Job>(jobs: &[J]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let at: FxHashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.location(), i))
        .collect();
    let mut roots = Vec::new();
    let mut children = vec![Vec::new(); jobs.len()];
    for (i, j) in jobs.iter().enumerate() {
        let mut loc = j.location();
        let parent = loop {
            match crate::tree::location_parts(loc) {
                Some((up, _)) if !up.is_empty() => {
                    loc = up;
                    if let Some(&p) = at.get(loc) {
                        break Some(p);
                    }
                }
                _ => break None,
            }
        };
        match parent {
            Some(p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    (roots, children)
}

/// The shared state of one run: jobs ready (heaviest first, then in the order given), how
/// many are being built, how many threads wait for work, and the first error (or a panic,
/// which the scope then re-raises).
struct Board<E> {
    ready: BinaryHeap<(usize, Reverse<usize>)>,
    busy: usize,
    waiting: usize,
    failed: Option<E>,
    panicked: bool,
}

/// Run `build` on every job on `threads` threads (at least one), each job after its nearest
/// ancestor's `build` returned Ok. The first error stops the run (jobs already started finish)
/// and is returned; the jobs nested in a failed one are not built.
pub fn run<J: Job, E: Send>(
    jobs: &[J],
    threads: usize,
    build: impl Fn(&J) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let (roots, children) = nesting(jobs);
    let board = Mutex::new(Board {
        ready: roots
            .into_iter()
            .map(|i| (jobs[i].weight(), Reverse(i)))
            .collect(),
        busy: 0,
        waiting: 0,
        failed: None,
        panicked: false,
    });
    let wake = Condvar::new();
    let worker = || {
        while let Some(i) = next(&board, &wake) {
            // A panic must not leave the other threads waiting for this job forever.
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| build(&jobs[i])));
            let Ok(mut b) = board.lock() else { return };
            b.busy -= 1;
            match result {
                Err(panic) => {
                    b.panicked = true;
                    drop(b);
                    wake.notify_all();
                    std::panic::resume_unwind(panic);
                }
                Ok(Ok(())) => b
                    .ready
                    .extend(children[i].iter().map(|&c| (jobs[c].weight(), Reverse(c)))),
                Ok(Err(e)) => {
                    if b.failed.is_none() {
                        b.failed = Some(e);
                    }
                }
            }
            // Waiters count under the lock, so none can be about to sleep unseen; with none,
            // the wake-up (a futex call per job) is skipped.
            let anyone = b.waiting > 0;
            drop(b);
            if anyone {
                wake.notify_all();
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads.max(1) {
            s.spawn(worker);
        }
        worker();
    });
    match board.into_inner() {
        Ok(b) => b.failed.map_or(Ok(()), Err),
        Err(poisoned) => poisoned.into_inner().failed.map_or(Ok(()), Err),
    }
}

/// The next job to build, or None when everything is done or the run failed.
fn next<E>(board: &Mutex<Board<E>>, wake: &Condvar) -> Option<usize> {
    let mut b = board.lock().ok()?;
    loop {
        if b.failed.is_some() || b.panicked {
            return None;
        }
        if let Some((_, Reverse(i))) = b.ready.pop() {
            b.busy += 1;
            return Some(i);
        }
        if b.busy == 0 {
            return None;
        }
        b.waiting += 1;
        b = wake.wait(b).ok()?;
        b.waiting -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct J(&'static str, usize);
    impl Job for J {
        fn location(&self) -> &str {
            self.0
        }
        fn weight(&self) -> usize {
            self.1
        }
    }

    fn jobs() -> Vec<J> {
        vec![
            J("node_modules/a/node_modules/b/node_modules/c", 5),
            J("node_modules/a", 1),
            J("node_modules/@s/x/node_modules/y", 100),
            J("node_modules/big", 50),
            J("node_modules/a/node_modules/b", 3),
            J("node_modules/@s/x", 2),
            // Its ancestor `node_modules/q` is not being built: it starts at once.
            J("node_modules/q/node_modules/r", 7),
        ]
    }

    #[test]
    fn nested_jobs_wait_for_their_nearest_ancestor_only() {
        let (mut roots, children) = nesting(&jobs());
        roots.sort();
        assert_eq!(roots, vec![1, 3, 5, 6]);
        assert_eq!(children[1], vec![4]);
        assert_eq!(children[4], vec![0]);
        assert_eq!(children[5], vec![2]);
        assert!(children[3].is_empty());
    }

    #[test]
    fn every_job_runs_once_after_its_ancestor_and_heaviest_first_on_one_thread() {
        let js = jobs();
        for threads in [1, 2, 4] {
            let order = Mutex::new(Vec::new());
            run(&js, threads, |j| -> Result<(), ()> {
                order.lock().unwrap().push(j.0);
                Ok(())
            })
            .unwrap();
            let order = order.into_inner().unwrap();
            assert_eq!(order.len(), js.len(), "{threads} threads: {order:?}");
            let pos = |l: &str| order.iter().position(|o| *o == l).unwrap();
            assert!(pos("node_modules/a") < pos("node_modules/a/node_modules/b"));
            assert!(
                pos("node_modules/a/node_modules/b")
                    < pos("node_modules/a/node_modules/b/node_modules/c")
            );
            assert!(pos("node_modules/@s/x") < pos("node_modules/@s/x/node_modules/y"));
            if threads == 1 {
                // Ready at the start: big (50), q/r (7), @s/x (2), a (1).
                assert_eq!(
                    &order[..2],
                    &["node_modules/big", "node_modules/q/node_modules/r"]
                );
                // @s/x's child (100) outweighs a (1), ready at the same time.
                assert_eq!(order[3], "node_modules/@s/x/node_modules/y");
            }
        }
    }

    #[test]
    fn the_first_error_stops_the_run_and_nested_jobs_of_a_failure_never_start() {
        let js = jobs();
        let ran = AtomicUsize::new(0);
        let err = run(&js, 2, |j| {
            ran.fetch_add(1, Ordering::SeqCst);
            if j.0 == "node_modules/a" {
                Err(format!("failed {}", j.0))
            } else {
                Ok(())
            }
        });
        assert_eq!(err, Err("failed node_modules/a".to_string()));
        assert!(
            ran.load(Ordering::SeqCst) <= js.len() - 2,
            "b and c never start"
        );
    }
}
