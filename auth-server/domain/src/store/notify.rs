//! Local wake-ups for long-polls: one `watch` channel per login that somebody
//! waits on, created on demand and dropped with its last waiter. The Redis
//! backend feeds it from pub/sub, so a decision on any instance wakes the
//! waiters on this one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Waiters by login id.
#[derive(Debug, Default)]
pub struct Notifier {
    waiters: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Notifier {
    /// Start listening for changes of `id`. Subscribe before reading the
    /// state, so no change between the read and the wait is missed.
    pub fn subscribe(self: &Arc<Self>, id: &str) -> Subscription {
        let mut map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let rx = map
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Subscription {
            id: id.to_owned(),
            rx,
            notifier: Arc::clone(self),
        }
    }

    /// Wake everybody waiting on `id` (a no-op when nobody waits).
    pub fn notify(&self, id: &str) {
        let map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(id) {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Wake every waiter on this instance, so each re-reads its login (after a
    /// reconnect to Redis, when a decision may have been published unseen).
    pub fn notify_all(&self) {
        let map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        for tx in map.values() {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// How many logins have waiters (for tests and metrics).
    pub fn watched(&self) -> usize {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// One waiter's handle.
#[derive(Debug)]
pub struct Subscription {
    id: String,
    rx: watch::Receiver<u64>,
    notifier: Arc<Notifier>,
}

impl Subscription {
    /// Resolves at the next change after the last one seen.
    pub async fn changed(&mut self) {
        // The sender lives in the map while this receiver exists.
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = self
            .notifier
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if map.get(&self.id).is_some_and(|tx| tx.receiver_count() <= 1) {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notify_wakes_and_last_waiter_cleans_up() {
        let n = Arc::new(Notifier::default());
        let mut a = n.subscribe("l1");
        let b = n.subscribe("l1");
        n.notify("l2");
        n.notify("l1");
        tokio::time::timeout(std::time::Duration::from_secs(5), a.changed())
            .await
            .expect("woken");
        assert_eq!(n.watched(), 1);
        drop(a);
        assert_eq!(n.watched(), 1, "b still waits");
        drop(b);
        assert_eq!(n.watched(), 0);
    }

    #[tokio::test]
    async fn notify_all_wakes_every_waiter() {
        let n = Arc::new(Notifier::default());
        let mut a = n.subscribe("l1");
        let mut b = n.subscribe("l2");
        n.notify_all();
        for s in [&mut a, &mut b] {
            tokio::time::timeout(std::time::Duration::from_secs(5), s.changed())
                .await
                .expect("woken");
        }
    }

    #[tokio::test]
    async fn a_change_before_the_wait_is_not_lost() {
        let n = Arc::new(Notifier::default());
        let mut a = n.subscribe("l1");
        n.notify("l1");
        // Already marked changed: resolves immediately.
        tokio::time::timeout(std::time::Duration::from_secs(5), a.changed())
            .await
            .expect("not lost");
    }
}
