//! `--timings`: the wall time of each stage of a compile, and the thread
//! time of each step of the per-host work, summed over the threads that
//! render hosts in parallel. Never part of any output file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long one stage of a compile took.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: &'static str,
    pub time: Duration,
    pub clock: Clock,
}

impl Stage {
    pub(crate) fn wall(name: &'static str, time: Duration) -> Stage {
        Stage {
            name,
            time,
            clock: Clock::Wall,
        }
    }
}

/// What a [`Stage`]'s time measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Wall time; the wall-time stages add up to the compile.
    Wall,
    /// Thread time summed over the hosts rendered in parallel: a part of
    /// the wall-time stage before it.
    Threads,
}

/// Wall-time stages, each from the end of the one before.
pub(crate) struct Stopwatch {
    stages: Vec<Stage>,
    since: Instant,
}

impl Stopwatch {
    /// Goes on from stages timed elsewhere (loading).
    pub(crate) fn after(stages: Vec<Stage>) -> Stopwatch {
        Stopwatch {
            stages,
            since: Instant::now(),
        }
    }

    /// Ends the stage `name` now.
    pub(crate) fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.stages.push(Stage::wall(name, now - self.since));
        self.since = now;
    }

    /// Adds the steps of `clocks` as parts of the stage before.
    pub(crate) fn split<const N: usize>(&mut self, clocks: StepClocks<N>) {
        for (name, ns) in clocks.names.into_iter().zip(clocks.ns) {
            self.stages.push(Stage {
                name,
                time: Duration::from_nanos(ns.into_inner()),
                clock: Clock::Threads,
            });
        }
    }

    pub(crate) fn stages(self) -> Vec<Stage> {
        self.stages
    }
}

/// Thread time of `N` steps, summed over the threads that run them.
pub(crate) struct StepClocks<const N: usize> {
    names: [&'static str; N],
    ns: [AtomicU64; N],
}

impl<const N: usize> StepClocks<N> {
    pub(crate) fn new(names: [&'static str; N]) -> StepClocks<N> {
        StepClocks {
            names,
            ns: [(); N].map(|()| AtomicU64::new(0)),
        }
    }

    /// Runs `f` as step `step`, adding its time to the step's.
    pub(crate) fn time<T>(&self, step: usize, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = f();
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.ns[step].fetch_add(ns, Ordering::Relaxed);
        result
    }
}
