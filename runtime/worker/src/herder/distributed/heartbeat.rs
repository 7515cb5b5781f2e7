//! Heartbeats for a worker's whole membership, on a connection of their own.
//!
//! # Contract
//! * One task beats every `heartbeat.interval.ms` for the member id and generation last given
//!   to [`Heartbeats::follow`], through rebalances too: Tansu 0.6 counts only heartbeats as
//!   signs of life, so a member that stops beating while it joins and syncs (a follower's
//!   join alone is held ~3 s there) is expelled; Apache Kafka answers them
//!   REBALANCE_IN_PROGRESS and keeps the session alive as well.
//! * Each answer is tagged with the generation it was sent for; the membership loop acts
//!   only on answers for the generation it runs in.
//! * Any answer from the coordinator, error or not, counts as contact
//!   ([`Heartbeats::last_contact`]); a dropped connection is opened again at the next beat.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::group::{GroupMember, GroupSettings, Heartbeater, Outcome};

/// A heartbeat's answer.
pub(super) enum Beat {
    Ok,
    /// The group rebalances, or this member is fenced: why.
    Rejoin(String),
    /// No answer: why.
    Unreachable(String),
}

/// The heartbeat task and what it reports.
pub(super) struct Heartbeats {
    identity: watch::Sender<(String, i32)>,
    beats: mpsc::Receiver<(i32, Beat)>,
    contact: Arc<Mutex<Instant>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Heartbeats {
    /// Starts beating (once a member id is given).
    pub(super) fn start(settings: GroupSettings, interval: Duration) -> Heartbeats {
        let (identity, watched) = watch::channel((String::new(), -1));
        let (sender, beats) = mpsc::channel(16);
        let contact = Arc::new(Mutex::new(Instant::now()));
        let touched = Arc::clone(&contact);
        let task = tokio::spawn(async move {
            let mut heartbeater: Option<Heartbeater> = None;
            loop {
                tokio::time::sleep(interval).await;
                let (member_id, generation) = watched.borrow().clone();
                if member_id.is_empty() {
                    continue;
                }
                if heartbeater.is_none() {
                    match GroupMember::new(settings.clone()).heartbeater().await {
                        Ok(h) => heartbeater = Some(h),
                        Err(e) => {
                            let _ = sender.try_send((generation, Beat::Unreachable(e.to_string())));
                            continue;
                        }
                    }
                }
                let beating = heartbeater.as_mut().expect("just opened");
                let beat = match beating.beat(&member_id, generation).await {
                    Ok(outcome) => {
                        *touched.lock().expect("contact lock") = Instant::now();
                        match outcome {
                            Outcome::Done(()) => Beat::Ok,
                            Outcome::Rejoin(why) => Beat::Rejoin(why),
                        }
                    }
                    Err(e) => {
                        heartbeater = None;
                        Beat::Unreachable(e.to_string())
                    }
                };
                if let Err(mpsc::error::TrySendError::Closed(_)) =
                    sender.try_send((generation, beat))
                {
                    return;
                }
            }
        });
        Heartbeats {
            identity,
            beats,
            contact,
            task,
        }
    }

    /// Beats from now on for `member_id` in `generation`.
    pub(super) fn follow(&self, member_id: &str, generation: i32) {
        self.identity
            .send_replace((member_id.to_owned(), generation));
    }

    /// Records contact made another way (a join or sync answered).
    pub(super) fn touched(&self) {
        *self.contact.lock().expect("contact lock") = Instant::now();
    }

    /// When the coordinator last answered.
    pub(super) fn last_contact(&self) -> Instant {
        *self.contact.lock().expect("contact lock")
    }

    /// The next answer for `generation`, skipping those for others; `None` once the task is
    /// gone.
    pub(super) async fn next(&mut self, generation: i32) -> Option<Beat> {
        loop {
            let (sent_for, beat) = self.beats.recv().await?;
            if sent_for == generation {
                return Some(beat);
            }
        }
    }
}
