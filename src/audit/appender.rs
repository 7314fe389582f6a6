//! Group commit for entries that record no other change (refused sign-ins, rate-limit trips,
//! bad SCIM tokens…): the events an attack produces by the thousand. Each caller hands its
//! entry to one background task and waits; the task appends everything waiting in one
//! transaction and answers every caller after the commit. So a caller still learns its entry is
//! durable before it answers, but a thousand callers cost one commit (one fsync), not a
//! thousand.
//!
//! Entries tied to a change never come here: they are appended in that change's transaction.

use tokio::sync::{mpsc, oneshot};

use crate::audit::entry::Entry;
use crate::audit::store::{self, NewEntry};
use crate::db::{Database, DbError};

/// Most entries committed together; more wait for the next commit.
const MAX_BATCH: usize = 1024;

type Reply = oneshot::Sender<Result<Entry, String>>;

/// A handle on the group-commit task; cheap to clone.
#[derive(Debug, Clone)]
pub struct GroupAppender {
    queue: mpsc::Sender<(NewEntry, Reply)>,
}

impl GroupAppender {
    /// Starts the task; it ends when every handle is dropped.
    pub fn spawn(db: Database) -> Self {
        let (queue, mut incoming) = mpsc::channel::<(NewEntry, Reply)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while incoming.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (entries, replies): (Vec<NewEntry>, Vec<Reply>) = batch.drain(..).unzip();
                match commit(&db, entries).await {
                    Ok(stored) => {
                        for (reply, entry) in replies.into_iter().zip(stored) {
                            let _ = reply.send(Ok(entry));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(message.clone()));
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    /// Appends `entry` and returns it once committed.
    pub async fn append(&self, entry: NewEntry) -> Result<Entry, DbError> {
        // Refused here rather than in the batch, so one bad entry cannot fail the others.
        store::check_catalogue(&entry)?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((entry, reply))
            .await
            .map_err(|_| DbError::Audit("the audit appender has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbError::Audit("the audit appender has stopped".into()))?
            .map_err(DbError::Audit)
    }
}

async fn commit(db: &Database, entries: Vec<NewEntry>) -> Result<Vec<Entry>, DbError> {
    let mut tx = db.begin().await?;
    let stored = store::append_batch(&mut tx, entries).await?;
    tx.commit().await?;
    Ok(stored)
}
