//! The typed order of a send through its lane: admitted, cleared, then given its call slot.

use std::sync::Arc;
use std::time::Duration;

use switchboard_directory::ResolvedAccount;

use super::{BroadcastHold, CallSlot, Lane, Lanes, Turn};

impl Lanes {
    /// Step 1: admits a send to `recipient` through `account` to the account's lane. A live
    /// reply (`live`) is always admitted; a broadcast only while the lane can hold it, else
    /// [`Deferred`] says how long it should wait in the database.
    pub fn admit(
        &self,
        account: &ResolvedAccount,
        recipient: &str,
        live: bool,
    ) -> Result<Admission, Deferred> {
        let lane = self.lane(account);
        let hold = if live {
            None
        } else {
            match self.hold_broadcast(&lane) {
                Some(hold) => Some(hold),
                None => return Err(Deferred(lane.broadcast_slot())),
            }
        };
        Ok(Admission {
            lane,
            recipient: recipient.to_owned(),
            live,
            _hold: hold,
        })
    }
}

/// A broadcast the lane cannot hold now: how long it should wait before it is queued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deferred(pub Duration);

/// A send admitted to its lane (a broadcast held by it until this is dropped); only
/// [`Lanes::admit`] makes one.
pub struct Admission {
    lane: Arc<Lane>,
    recipient: String,
    live: bool,
    _hold: Option<BroadcastHold>,
}

impl Admission {
    /// Steps 2 and 3: waits for the recipient's turn, then until a send to them fits their
    /// limits and the account is not paused. Do the send's database work after this.
    pub async fn clear(self) -> Cleared {
        let turn = self.lane.turn(&self.recipient).await;
        self.lane.acquire(&self.recipient).await;
        Cleared {
            _turn: turn,
            admission: self,
        }
    }
}

/// A send holding its recipient's turn (the next send to them waits until this is dropped)
/// whose recipient limits are met; only [`Admission::clear`] makes one.
pub struct Cleared {
    _turn: Turn,
    admission: Admission,
}

impl Cleared {
    /// Steps 4 to 6, right before the provider call (after the database work, whose latency
    /// would otherwise bunch sends together): waits out the recipient's spacing and the
    /// account's next slot. Hold the slot until the call has ended.
    pub async fn call_slot(&self) -> CallSlot<'_> {
        let Admission {
            lane,
            recipient,
            live,
            ..
        } = &self.admission;
        lane.space(recipient).await;
        lane.pace(*live, recipient).await
    }

    /// Stops every send of the account for `duration` (the provider asked to wait; the
    /// caller bounds it).
    pub fn pause_account(&self, duration: Duration) {
        self.admission.lane.pause(duration);
    }
}
