//! The log bridge: the core logs through the `log` crate; one logger,
//! registered once, forwards every record to the callback a shim installs.
//!
//! Everything here is a plain static without a destructor, so a server
//! that unloads and reloads the module (both do on reload) leaves nothing
//! to run at exit.

use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Where records go: `deliver` is called with the sink itself, whose
/// `target` and `userdata` carry the shim's callback and its argument as
/// plain numbers (the FFI layer turns them back into pointers).
#[derive(Clone, Copy)]
pub struct Sink {
    pub deliver: fn(&Sink, Level, &str),
    pub target: usize,
    pub userdata: usize,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);
static LOGGER: Bridge = Bridge;

struct Bridge;

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Copy the sink out so the callback never runs under the lock.
        let sink = match SINK.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        };
        if let Some(sink) = sink {
            let message = record.args().to_string();
            (sink.deliver)(&sink, record.level(), &message);
        }
    }

    fn flush(&self) {}
}

/// Installs (or with None removes) the sink and the most verbose level.
pub fn install(sink: Option<Sink>, max: LevelFilter) {
    // Fails only when a logger is already set: ours, from an earlier call,
    // or the embedding program's own, which then keeps receiving records.
    let _ = log::set_logger(&LOGGER);
    match SINK.lock() {
        Ok(mut guard) => *guard = sink,
        Err(poisoned) => *poisoned.into_inner() = sink,
    }
    log::set_max_level(if sink.is_some() { max } else { LevelFilter::Off });
}
