//! Pushed heartbeats: the last one per heartbeat check, and whether a check is still
//! within its grace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pharos_store::journal::now_micros;

/// Last heartbeat per heartbeat check.
#[derive(Clone, Default)]
pub struct Heartbeats {
    slots: Arc<Mutex<HashMap<String, HeartbeatSlot>>>,
}

#[derive(Clone, Copy, Debug)]
struct HeartbeatSlot {
    grace: Duration,
    last_micros: Option<i64>,
}

/// Why a heartbeat was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HeartbeatError {
    UnknownCheck,
    NotAHeartbeatCheck,
}

impl Heartbeats {
    /// Records a heartbeat; returns when the check fails without another one.
    pub fn beat(
        &self,
        check_id: &str,
        is_check: impl Fn(&str) -> bool,
    ) -> Result<i64, HeartbeatError> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = slots.get_mut(check_id) else {
            return Err(if is_check(check_id) {
                HeartbeatError::NotAHeartbeatCheck
            } else {
                HeartbeatError::UnknownCheck
            });
        };
        let now = now_micros();
        slot.last_micros = Some(now);
        Ok(now + slot.grace.as_micros() as i64)
    }

    pub(super) fn last(&self, check_id: &str) -> Option<i64> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.get(check_id).and_then(|slot| slot.last_micros)
    }

    pub(super) fn register(&self, check_id: &str, grace: Duration) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(check_id.to_owned())
            .and_modify(|slot| slot.grace = grace)
            .or_insert(HeartbeatSlot {
                grace,
                last_micros: None,
            });
    }

    pub(super) fn unregister(&self, check_id: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(check_id);
    }
}
