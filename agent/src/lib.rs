//! sitec's host agent: a typed program whose every crash point is
//! simulated, which push brings to hosts as one static executable.
//!
//! The core every transition stands on: the state
//! directory's files ([`layout`]), the bundle index ([`index`]), the host's
//! state read once ([`host`]), the journal ([`journal`]), and the
//! transitions between generations ([`transition`]: the first switch with
//! its backup, a switch, an operator's rollback, and the recovery that
//! settles what a crash left). The crash simulation (`tests/crash.rs`)
//! stops them after every step.
//!
//! Every state-changing operation (a write, its fsync, a rename, a
//! symlink, an unlink, each external command) goes through one interface,
//! [`effects::Effects`]: [`os::Os`] on a host (or under a root directory in
//! tests), [`sim::SimFs`] in memory, which can stop after any operation as
//! a killed process or as a power loss (what was not yet fsync'd is lost).
//!
//! A network change arms a confirmation (`armed`, and a timer of PID 1's on
//! the monotonic clock, started through the same interface); `confirm`
//! keeps the generation, `expire` (the timer) and the boot roll it back.
//!
//! The actions and unit states run inside the transitions ([`actions`],
//! decided apart in [`decide`]); a bundle is read through `sitec-format`
//! ([`bundle`]), which the compiler shares.
//!
//! Secrets are kept and installed by the transitions ([`secrets`]).
//!
//! Boots on new kernel files are judged, confirmed or gone back from in
//! [`boot`].
//!
//! The command line ([`cli`], run by [`run`]) takes the lock ([`lock`])
//! and writes the host's status ([`status`]).
//!
//! A bundle is received ([`receive`]) and checked ([`check`], [`validate`]:
//! the daemons' own parsers).
//!
//! `switch` makes the agent the host's ([`guard`]).
//!
//! Pull mode fetches, verifies and applies signed releases ([`pull`]).

pub mod actions;
pub mod armed;
pub mod boot;
pub mod bundle;
pub mod check;
pub mod cli;
pub mod decide;
pub mod effects;
pub mod gc;
pub mod generation;
pub mod guard;
pub mod host;
pub mod index;
pub mod journal;
pub mod layout;
pub mod lock;
pub mod os;
pub mod pull;
pub mod receive;
pub mod run;
pub mod secrets;
pub mod sim;
pub mod status;
pub mod transition;
pub mod utc;
pub mod validate;
