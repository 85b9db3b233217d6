//! WAL checkpoints on a thread of their own.
//!
//! A commit lands in the WAL (`-wal` file, fsynced: `synchronous=FULL`);
//! a checkpoint later copies the WAL's pages into the database file and
//! fsyncs it. SQLite's automatic checkpoint runs inside the commit that takes
//! the WAL past 1,000 pages, on the committing thread: a pulled week of a
//! county (~3,600 pages) waited for that copy and its fsync, about a quarter
//! of its time (BENCHMARKS.md, "Sync"). SQLite's documentation suggests the
//! alternative used here: the store's connection only signals, and a second
//! connection on a thread of its own runs the checkpoint (`PASSIVE`: it waits
//! for no reader or writer; frames it cannot copy yet wait for the next
//! signal). Nothing about durability changes: a commit is on disk once its
//! WAL is synced, as before; the checkpoint only moves pages already safe.
//!
//! If the checkpointer falls far behind (the WAL past [`INLINE_FRAMES`]), a
//! commit checkpoints itself as SQLite would. The thread stops when the store
//! is dropped; its connection, the last to close, folds the WAL into the file
//! as SQLite does on close. An in-memory store, or a file the second
//! connection cannot open, keeps SQLite's automatic checkpoint.

use std::os::raw::c_int;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use rusqlite::hooks::Wal;
use rusqlite::Connection;

/// WAL pages after a commit from which the thread is asked to checkpoint
/// (SQLite's own automatic threshold).
pub(crate) const CHECKPOINT_FRAMES: c_int = 1_000;
/// WAL pages (64 MiB of 4 KiB pages) past which a commit checkpoints on its
/// own thread, as SQLite's automatic checkpoint would.
pub(crate) const INLINE_FRAMES: c_int = 16_000;

enum Msg {
    Checkpoint,
    Stop,
}

/// The checkpointing thread of one store ([`Checkpointer::start`]).
pub(crate) struct Checkpointer {
    tx: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Takes over `conn`'s checkpoints with `second`, another connection to
    /// the same file (keyed like it), which moves to the new thread. `None`
    /// (and `conn` as it was, with SQLite's automatic checkpoint) if the
    /// thread cannot start.
    pub(crate) fn start(conn: &mut Connection, second: Connection) -> Option<Self> {
        // A checkpoint fsyncs the database file as the store's commits do.
        second.pragma_update(None, "synchronous", "FULL").ok()?;
        // One message waits at most: signals while a checkpoint runs merge.
        let (tx, rx) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("shouhu-store-checkpoint".into())
            .spawn(move || run(second, rx))
            .ok()?;
        let me = Checkpointer {
            tx,
            thread: Some(thread),
        };
        let signal = me.tx.clone();
        // Replaces SQLite's automatic checkpoint (itself a WAL hook).
        conn.wal_hook(Some(move |wal: &mut Wal, frames: c_int| {
            if frames >= INLINE_FRAMES {
                // An error here would make the (already committed) write
                // report one: a checkpoint that cannot run now runs later.
                let _ = wal.checkpoint();
            } else if frames >= CHECKPOINT_FRAMES {
                // Full: a signal is already waiting.
                let _ = signal.try_send(Msg::Checkpoint);
            }
            Ok(())
        }))
        .ok()?;
        Some(me)
    }
}

fn run(conn: Connection, rx: Receiver<Msg>) {
    while let Ok(Msg::Checkpoint) = rx.recv() {
        // A failed checkpoint leaves the WAL as it was: the next signal
        // tries again (and a commit far past the threshold does it itself).
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
    // `conn` closes here; whichever of the two connections closes last
    // checkpoints and removes the WAL, as SQLite does.
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
