//! The timer queue behind `setTimeout` and `setInterval`, which the event loop in `engine.rs` drains.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rquickjs::{Ctx, Function, Object, Persistent};

use crate::engine::Shared;

/// Largest delay in milliseconds; larger or invalid delays become 1 ms, as in
/// Node, which stores delays as 32-bit signed integers.
const MAX_DELAY_MS: f64 = 2_147_483_647.0;

struct Timer {
    callback: Persistent<Function<'static>>,
    interval: Option<Duration>,
}

/// Pending timers ordered by due time, then by creation, so timers due at
/// the same instant fire in the order they were set.
#[derive(Default)]
pub struct Timers {
    next_id: u32,
    queue: BTreeMap<(Instant, u32), Timer>,
    due_by_id: HashMap<u32, Instant>,
}

impl Timers {
    fn add(
        &mut self,
        callback: Persistent<Function<'static>>,
        delay: Duration,
        repeat: bool,
    ) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        let due = Instant::now() + delay;
        let interval = repeat.then_some(delay);
        self.queue.insert((due, id), Timer { callback, interval });
        self.due_by_id.insert(id, due);
        id
    }

    fn remove(&mut self, id: u32) {
        if let Some(due) = self.due_by_id.remove(&id) {
            self.queue.remove(&(due, id));
        }
    }

    /// Returns when the earliest timer is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(due, _)| *due)
    }

    /// Removes the earliest timer if it is due at `now` and returns its
    /// callback. An interval is queued again before its callback runs, so
    /// the callback can clear it.
    pub fn take_due(&mut self, now: Instant) -> Option<Persistent<Function<'static>>> {
        let (&(due, id), _) = self.queue.first_key_value()?;
        if due > now {
            return None;
        }
        let timer = self.queue.remove(&(due, id))?;
        self.due_by_id.remove(&id);
        if let Some(interval) = timer.interval {
            let next = now + interval;
            self.queue.insert(
                (next, id),
                Timer {
                    callback: timer.callback.clone(),
                    interval: timer.interval,
                },
            );
            self.due_by_id.insert(id, next);
        }
        Some(timer.callback)
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.due_by_id.clear();
    }
}

/// Adds `setTimer(callback, delayMs, repeat)` and `clearTimer(id)` to the
/// native object. The JavaScript wrappers bind extra arguments.
pub fn register<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
    shared: &Rc<Shared>,
) -> rquickjs::Result<()> {
    let state = Rc::clone(shared);
    let set = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, callback: Function<'js>, delay_ms: f64, repeat: bool| {
            let callback = Persistent::save(&ctx, callback);
            state
                .timers
                .borrow_mut()
                .add(callback, delay(delay_ms), repeat)
        },
    )?;
    native.set("setTimer", set)?;

    let state = Rc::clone(shared);
    let clear = Function::new(ctx.clone(), move |id: f64| {
        if id.is_finite() && id >= 1.0 && id <= f64::from(u32::MAX) {
            state.timers.borrow_mut().remove(id as u32);
        }
    })?;
    native.set("clearTimer", clear)?;
    Ok(())
}

fn delay(delay_ms: f64) -> Duration {
    if (1.0..=MAX_DELAY_MS).contains(&delay_ms) {
        Duration::from_secs_f64(delay_ms / 1000.0)
    } else {
        Duration::from_millis(1)
    }
}
