//! `--data-dir`: room history kept on disk in an embedded
//! [redb](https://docs.rs/redb) database, so that a restart loses nothing.
//!
//! The chat stays sans-io: it hands out each entry it appends
//! ([`tincan_chat::Output::appended`]) and takes a restored history at start
//! ([`tincan_chat::Chat::restore`]). This module opens and checks the file at
//! start (a corrupt or unwritable store is an error that names the path),
//! reads every room's history, and writes new entries off the hot path: a
//! session hands an entry to a bounded queue ([`Writer::record`], which
//! never waits), and a writer thread commits one transaction per batch of
//! whatever is queued. Each room keeps at most `--history` entries on disk.
//!
//! The table maps `(room, sequence)` to `(kind, ts, from, text)`; a room's
//! sequence numbers count up from 0, so its oldest entries are its lowest
//! keys.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use redb::{Database, ReadableTable, TableDefinition};
use tincan_chat::{Appended, Entry, Kind};

use crate::log::Log;

/// The database file's name in `--data-dir`.
pub const FILE_NAME: &str = "history.redb";

/// Entries that may wait for the writer thread; more are dropped and
/// counted ([`Log::StoreDropped`]).
pub const QUEUE: usize = 16 * 1024;

/// Entries written in one transaction at most.
const BATCH: usize = 1024;

/// `(room, sequence)` to `(kind, ts, from, text)`.
const HISTORY: TableDefinition<(&str, u64), (u8, u64, &str, &str)> =
    TableDefinition::new("history");

/// Why the store cannot be used; each names the path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory cannot be made.
    #[error("cannot create --data-dir {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file cannot be opened or created (corrupt, not a redb file,
    /// unwritable, or in use by another server).
    #[error("cannot open the history store {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why (boxed: redb's error is large, and this is a cold path).
        source: Box<redb::Error>,
    },
    /// The writer thread cannot be started.
    #[error("cannot start the history store's writer thread: {0}")]
    Thread(std::io::Error),
    /// The file opened, but reading or writing it failed.
    #[error("the history store {path} is unusable: {source}")]
    Unusable {
        /// The database file.
        path: PathBuf,
        /// Why (boxed: redb's error is large, and this is a cold path).
        source: Box<redb::Error>,
    },
}

/// An open history store.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Each room's next sequence number.
    next: HashMap<String, u64>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Each room's history, oldest first.
pub type Histories = Vec<(String, Vec<Entry>)>;

impl Store {
    /// Opens (or creates) the store in `dir` and reads every room's
    /// history, trimming each to its newest `history` entries on disk too,
    /// so a smaller `--history` than last time takes effect. The trim is a
    /// write, so an unwritable store fails here, at start.
    pub fn open(dir: &Path, history: usize) -> Result<(Self, Histories), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| StoreError::Open {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        let mut store = Self {
            db,
            path,
            next: HashMap::new(),
        };
        let histories = store.load(history).map_err(|source| StoreError::Unusable {
            path: store.path.clone(),
            source: Box::new(source),
        })?;
        Ok((store, histories))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    // redb's error is large; these run once at start and once per batch.
    #[allow(clippy::result_large_err)]
    fn load(&mut self, history: usize) -> Result<Histories, redb::Error> {
        let mut rooms: Vec<(String, Vec<(u64, Entry)>)> = Vec::new();
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(HISTORY)?;
            for row in table.iter()? {
                let (key, value) = row?;
                let (room, seq) = key.value();
                let (kind, ts, from, text) = value.value();
                let kind = match kind {
                    0 => Kind::Message,
                    _ => Kind::Action,
                };
                let entry = Entry {
                    kind,
                    from: from.to_owned(),
                    text: text.to_owned(),
                    ts,
                };
                match rooms.last_mut() {
                    Some((name, entries)) if name == room => entries.push((seq, entry)),
                    _ => rooms.push((room.to_owned(), vec![(seq, entry)])),
                }
            }
            for (room, entries) in &mut rooms {
                let next = entries.last().map_or(0, |(seq, _)| seq + 1);
                self.next.insert(room.clone(), next);
                let excess = entries.len().saturating_sub(history);
                for (seq, _) in entries.drain(..excess) {
                    table.remove((room.as_str(), seq))?;
                }
            }
        }
        txn.commit()?;
        Ok(rooms
            .into_iter()
            .filter(|(_, entries)| !entries.is_empty())
            .map(|(room, entries)| (room, entries.into_iter().map(|(_, e)| e).collect()))
            .collect())
    }

    /// Writes `batch` in one transaction, each room capped at `history`.
    #[allow(clippy::result_large_err)]
    fn write(&mut self, batch: &[Appended], history: usize) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        let mut next = self.next.clone();
        {
            let mut table = txn.open_table(HISTORY)?;
            for Appended { room, entry } in batch {
                let seq = next.entry(room.clone()).or_insert(0);
                let kind = match entry.kind {
                    Kind::Message => 0,
                    Kind::Action => 1,
                };
                table.insert(
                    (room.as_str(), *seq),
                    (kind, entry.ts, entry.from.as_str(), entry.text.as_str()),
                )?;
                if let Some(old) = seq.checked_sub(history as u64) {
                    table.remove((room.as_str(), old))?;
                }
                *seq += 1;
            }
        }
        txn.commit()?;
        // Only a committed batch moves the sequence numbers on.
        self.next = next;
        Ok(())
    }

    /// Starts the writer thread; `log` prints its lines.
    pub fn spawn_writer(
        mut self,
        history: usize,
        log: impl Fn(Log) + Send + 'static,
    ) -> Result<Writer, StoreError> {
        let (queue, entries) = mpsc::sync_channel::<Appended>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let thread = std::thread::Builder::new()
            .name("tincan-store".into())
            .spawn(move || self.run(&entries, history, &counted, log))
            .map_err(StoreError::Thread)?;
        Ok(Writer {
            queue,
            dropped,
            thread,
        })
    }

    /// The writer thread: until every [`Writer`] handle is gone, waits for
    /// an entry, takes whatever else is queued (up to [`BATCH`]) and writes
    /// it all in one transaction.
    fn run(
        &mut self,
        entries: &Receiver<Appended>,
        history: usize,
        dropped: &AtomicU64,
        log: impl Fn(Log),
    ) {
        let path = self.path.display().to_string();
        let mut failing = false;
        let mut batch = Vec::with_capacity(BATCH);
        while let Ok(first) = entries.recv() {
            batch.push(first);
            batch.extend(entries.try_iter().take(BATCH - 1));
            match self.write(&batch, history) {
                Ok(()) if failing => {
                    failing = false;
                    log(Log::StoreWriteRecovered { path: path.clone() });
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    let error = e.to_string();
                    log(Log::StoreWriteFailed {
                        path: path.clone(),
                        error,
                    });
                }
                Err(_) => {}
            }
            batch.clear();
            let count = dropped.swap(0, Ordering::Relaxed);
            if count > 0 {
                log(Log::StoreDropped { count });
            }
        }
    }
}

/// The sessions' side of the store: hands entries to the writer thread.
#[derive(Debug)]
pub struct Writer {
    queue: SyncSender<Appended>,
    dropped: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Queues an entry for writing, without waiting: when the queue is full
    /// the entry is dropped and counted.
    pub fn record(&self, entry: Appended) {
        match self.queue.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the queue and waits for the writer thread to write what is
    /// left (at shutdown, so that every entry taken is kept).
    pub fn finish(self) {
        drop(self.queue);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tincan-store-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn said(room: &str, text: &str) -> Appended {
        Appended {
            room: room.into(),
            entry: Entry {
                kind: if text.starts_with('*') {
                    Kind::Action
                } else {
                    Kind::Message
                },
                from: "alice".into(),
                text: text.into(),
                ts: 7,
            },
        }
    }

    fn texts(histories: &Histories, room: &str) -> Vec<String> {
        histories
            .iter()
            .find(|(name, _)| name == room)
            .map(|(_, entries)| entries.iter().map(|e| e.text.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn entries_survive_a_reopen_capped_per_room() {
        let dir = dir("reopen");
        let (store, histories) = Store::open(&dir, 3).expect("opens");
        assert!(histories.is_empty());
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let writer = store
            .spawn_writer(3, move |line| seen.lock().expect("lock").push(line))
            .expect("thread");
        for text in ["1", "2", "3", "4", "*5"] {
            writer.record(said("a", text));
        }
        writer.record(said("b", "x"));
        writer.finish();
        assert!(lines.lock().expect("lock").is_empty());
        let (_, histories) = Store::open(&dir, 3).expect("reopens");
        assert_eq!(texts(&histories, "a"), ["3", "4", "*5"]);
        assert_eq!(histories[0].1[2].kind, Kind::Action);
        assert_eq!(texts(&histories, "b"), ["x"]);
        // A smaller limit trims what is on disk, and numbering goes on.
        let (store, histories) = Store::open(&dir, 1).expect("reopens");
        assert_eq!(texts(&histories, "a"), ["*5"]);
        let writer = store.spawn_writer(1, |_| {}).expect("thread");
        writer.record(said("a", "6"));
        writer.finish();
        let (_, histories) = Store::open(&dir, 5).expect("reopens");
        assert_eq!(texts(&histories, "a"), ["6"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused_with_its_path() {
        let dir = dir("corrupt");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(FILE_NAME), vec![0x5a; 8192]).expect("write");
        let error = Store::open(&dir, 3).expect_err("corrupt").to_string();
        assert!(error.contains(FILE_NAME), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_under_a_file_is_refused_with_its_path() {
        let dir = dir("under-file");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("file"), b"x").expect("write");
        let error = Store::open(&dir.join("file").join("sub"), 3)
            .expect_err("not a directory")
            .to_string();
        assert!(error.contains("file/sub"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
