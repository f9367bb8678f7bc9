//! Failpoints of the kill -9 campaign: `KITLE_FAILPOINT=NAME[:N]` makes the process kill
//! itself with `SIGKILL` the `N`-th time (the first when `N` is left out) it reaches the point
//! `NAME`, so a test can stop a real `kitle` process at an exact moment of a refresh, a put or
//! a removal and check what the store holds afterwards.
//!
//! The points, in the order a refresh reaches them:
//!
//! | point | where |
//! |---|---|
//! | `refresh.evaluated` | every segment evaluated, nothing written yet |
//! | `refresh.members_written` | after each members file (`:N` picks the file) |
//! | `refresh.changes_written` | after each change log |
//! | `<object>.before_commit` | the change applied, the conditional write not yet made (`manifest`, `definitions`) |
//! | `<object>.after_commit` | the object written, the command not yet done |
//!
//! `SIGKILL` rather than a panic or an exit: nothing runs after it (no destructor, no flush, no
//! unlock but the kernel's), exactly like `kill -9` from outside. Without the variable a point
//! costs one atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a failpoint.
pub const FAILPOINT_VARIABLE: &str = "KITLE_FAILPOINT";

static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
static REACHED: AtomicU64 = AtomicU64::new(0);

/// `NAME[:N]` → the point and the how-manieth time it fires (at least 1).
fn parse(value: &str) -> Option<(String, u64)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match value.rsplit_once(':') {
        Some((name, n)) => Some((name.to_string(), n.trim().parse::<u64>().ok()?.max(1))),
        None => Some((value.to_string(), 1)),
    }
}

/// Marks that the process reached the point `name`; kills the process with `SIGKILL` when
/// `KITLE_FAILPOINT` names this point and this is the time it asks for.
pub fn reach(name: &str) {
    let armed = ARMED.get_or_init(|| {
        std::env::var(FAILPOINT_VARIABLE)
            .ok()
            .and_then(|v| parse(&v))
    });
    let Some((point, nth)) = armed else { return };
    if point != name {
        return;
    }
    if REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
        eprintln!("failpoint {name}:{nth} reached: killing this process (SIGKILL)");
        // SAFETY: `kill` with this process's own id and a valid signal number has no
        // preconditions; it does not return once the signal is delivered.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_counts_are_read() {
        assert_eq!(
            parse("refresh.evaluated"),
            Some(("refresh.evaluated".into(), 1))
        );
        assert_eq!(
            parse("refresh.members_written:3"),
            Some(("refresh.members_written".into(), 3))
        );
        assert_eq!(parse("x:0"), Some(("x".into(), 1)));
        assert_eq!(parse("x:many"), None);
        assert_eq!(parse("  "), None);
    }

    #[test]
    fn an_unarmed_point_does_nothing() {
        // The test process has no KITLE_FAILPOINT: reaching a point returns.
        reach("refresh.evaluated");
    }
}
