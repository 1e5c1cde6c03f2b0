//! Every file optc writes (weights, plots, checkpoints, optimizer state files, logs) goes
//! through here, so that no crash, full disk or interruption leaves a half-written file where a
//! good one was, nor a stray temporary file beside it.
//!
//! A whole file is written by [`write`]: a temporary file is created beside the target with
//! `create_new` (which never follows a symlink and fails on any existing name) under an
//! unpredictable name, written, fsynced, renamed over the target, and the folder is fsynced. On
//! any error, a full disk included, the temporary file is removed before the error is returned.
//!
//! What may be written: a path that does not exist yet, or a regular file. Anything else that
//! exists (a folder, a device such as `/dev/null`, a FIFO, a socket) is refused with a message
//! saying what it is. A symlink is written through: the file it names is replaced, the link
//! stays, as `>` in a shell does; a link to something that is not a regular file is refused
//! like that thing, and a dangling link is refused.
//!
//! Temporary files and folders are registered while they exist; [`exit_now`] (a second Ctrl-C)
//! removes them and exits, and waits for a log line being appended to be written whole first.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Writes `bytes` to `path` atomically (see the module doc). Errors name the path.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |out| out.write_all(bytes))
}

/// As [`write`], with the contents written by `fill` (into a buffered temporary file).
pub fn write_with(path: &Path, fill: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>) -> io::Result<()> {
    let target = target(path)?;
    let (dir, name) = split(&target);
    let temp = Temp::create_file(&dir, &name).map_err(|e| failed(path, e))?;
    let written = (|| {
        if let Ok(meta) = std::fs::metadata(&target) {
            temp.file()?.set_permissions(meta.permissions())?;
        }
        let file = temp.file()?;
        let mut out = io::BufWriter::new(file);
        fill(&mut out)?;
        out.flush()?;
        drop(out);
        file.sync_all()?;
        std::fs::rename(&temp.path, &target)?;
        sync_dir(&dir);
        Ok(())
    })();
    match written {
        Ok(()) => {
            temp.forget();
            Ok(())
        }
        Err(e) => Err(failed(path, e)),
    }
}

/// The file a write to `path` lands in: `path` itself, or the file its symlink names. Refuses
/// a path that exists and is not a regular file, and a dangling symlink.
pub fn target(path: &Path) -> io::Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty path is not a file name"));
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => return Err(failed(path, e)),
    };
    let resolved = if meta.file_type().is_symlink() {
        std::fs::canonicalize(path).map_err(|e| {
            let to = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
            refused(path, format!("a symlink to `{to}`, which cannot be followed ({e})"))
        })?
    } else {
        path.to_path_buf()
    };
    let meta = std::fs::metadata(&resolved).map_err(|e| failed(path, e))?;
    if meta.is_file() {
        return Ok(resolved);
    }
    Err(refused(path, format!("{}, not a regular file; optc writes only regular files", what(&meta))))
}

/// Checks, before a run, that [`write`] to `path` can succeed: the target is acceptable and its
/// folder exists and takes a new file (one is created and removed).
pub fn check(path: &Path) -> io::Result<()> {
    let target = target(path)?;
    let (dir, name) = split(&target);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(refused(path, format!("inside `{}`, which is not a folder", dir.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(refused(path, format!("inside `{}`, which does not exist", dir.display())));
        }
        Err(e) => return Err(failed(path, e)),
    }
    Temp::create_file(&dir, &name).map(drop).map_err(|e| failed(path, e))
}

/// A folder for a checkpoint being written, beside where it will go; removed unless
/// [`TempDir::persist`] moves it into place.
pub struct TempDir(Temp);

impl TempDir {
    /// Creates an empty temporary folder in `parent` for the folder `name`.
    pub fn create(parent: &Path, name: &str) -> io::Result<TempDir> {
        Temp::create(parent, name, true).map(TempDir).map_err(|e| failed(&parent.join(name), e))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Moves the folder to `target`, replacing a folder already there.
    pub fn persist(self, target: &Path) -> io::Result<()> {
        let parent = self.0.path.parent().map(Path::to_path_buf).unwrap_or_default();
        sync_dir(&self.0.path);
        let moved = match std::fs::symlink_metadata(target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::rename(&self.0.path, target),
            Err(e) => Err(e),
            Ok(meta) if !meta.is_dir() => {
                return Err(refused(target, format!("{}, not a checkpoint folder", what(&meta))));
            }
            Ok(_) => {
                // Move the old one aside first (a folder cannot be renamed over a non-empty one);
                // it is not registered, so an exit in between never removes the only copy.
                let (_, name) = split(target);
                let old = parent.join(format!(".{name}.old.{:016x}.tmp", unpredictable()));
                let swapped = std::fs::rename(target, &old).and_then(|()| {
                    std::fs::rename(&self.0.path, target).inspect_err(|_| {
                        let _ = std::fs::rename(&old, target);
                    })
                });
                if swapped.is_ok() {
                    let _ = std::fs::remove_dir_all(&old);
                }
                swapped
            }
        };
        moved.map_err(|e| failed(target, e))?;
        self.0.forget();
        sync_dir(&parent);
        Ok(())
    }
}

/// A log file that grows line by line. Each [`Appender::append`] is written whole or, if the
/// process is stopped by [`exit_now`], not at all.
pub struct Appender {
    file: File,
    path: PathBuf,
}

impl Appender {
    /// Opens `path` (a new or regular file, or a symlink to one) to append to; `truncate`
    /// empties it first.
    pub fn open(path: &Path, truncate: bool) -> io::Result<Appender> {
        let target = target(path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(!truncate)
            .write(true)
            .truncate(truncate)
            .open(&target)
            .map_err(|e| failed(path, e))?;
        Ok(Appender { file, path: path.to_path_buf() })
    }

    /// Appends `bytes` (whole lines).
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let _no_exit = in_flight();
        self.file.write_all(bytes).map_err(|e| failed(&self.path, e))
    }

    /// Makes what was appended durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data().map_err(|e| failed(&self.path, e))
    }
}

/// Removes every temporary file and folder being written and exits with `code` at once; a
/// log line being appended is finished first. For a second interrupt.
pub fn exit_now(code: i32) -> ! {
    let paths = in_flight();
    for path in paths.iter() {
        if path.is_dir() {
            let _ = std::fs::remove_dir_all(path);
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
    // The lock is held until the process ends, so no new temporary file can appear.
    std::process::exit(code)
}

/// FNV-1a, 64 bits, of `bytes`: the checksum of optc's files, to find damage (any one changed
/// byte changes it), not a defence against tampering.
pub fn checksum(bytes: &[u8]) -> u64 {
    checksum_more(CHECKSUM_START, bytes)
}

/// The checksum of nothing, to continue with [`checksum_more`].
pub const CHECKSUM_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The checksum `h` of some bytes continued over `bytes`: `checksum(a ++ b)` is
/// `checksum_more(checksum(a), b)`, so large data need not be gathered into one buffer.
pub fn checksum_more(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// A write that the system refused: "cannot write `path`: reason".
#[derive(Debug)]
pub struct Failed {
    pub path: PathBuf,
    pub reason: io::Error,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write `{}`: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.reason)
    }
}

/// The system's reason for an error of this module, without the path (for a message that
/// names another path, such as a checkpoint's folder rather than a file in its temporary one).
pub fn reason(e: &io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Failed>()) {
        Some(failed) => failed.reason.to_string(),
        None => e.to_string(),
    }
}

/// An error of the system, as [`Failed`], keeping its kind.
fn failed(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), Failed { path: path.to_path_buf(), reason: e })
}

fn refused(path: &Path, why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("`{}` is {why}", path.display()))
}

/// What a file that is not a regular one is, for messages.
fn what(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// The folder and file name of `path` (the folder `.` for a bare name).
fn split(path: &Path) -> (PathBuf, String) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (dir, name)
}

/// Makes renames in `dir` durable; best effort (not every system can open a folder).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The registry of temporary paths that exist now; its lock also keeps [`exit_now`] from
/// ending the process in the middle of an append.
fn in_flight() -> MutexGuard<'static, Vec<PathBuf>> {
    static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    IN_FLIGHT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 64 bits nobody can guess: SipHash under the process's random keys, of a counter.
fn unpredictable() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// A temporary file or folder, registered while it exists and removed when dropped.
struct Temp {
    path: PathBuf,
    file: Option<File>,
}

impl Temp {
    fn create_file(dir: &Path, name: &str) -> io::Result<Temp> {
        Temp::create(dir, name, false)
    }

    /// Creates `dir/.NAME.RANDOM.tmp` exclusively, trying other names if one is taken (a name
    /// planted by someone else is never opened).
    fn create(dir: &Path, name: &str, folder: bool) -> io::Result<Temp> {
        let mut last = None;
        for _ in 0..16 {
            let mut temp = Temp::reserve(dir, name);
            let made = if folder {
                std::fs::create_dir(&temp.path).map(|()| None)
            } else {
                OpenOptions::new().write(true).create_new(true).open(&temp.path).map(Some)
            };
            match made {
                Ok(file) => {
                    temp.file = file;
                    return Ok(temp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    temp.forget();
                    last = Some(e);
                }
                Err(e) => {
                    temp.forget();
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
    }

    /// A fresh registered name in `dir`, not created yet.
    fn reserve(dir: &Path, name: &str) -> Temp {
        let path = dir.join(format!(".{name}.{:016x}.tmp", unpredictable()));
        in_flight().push(path.clone());
        Temp { path, file: None }
    }

    fn file(&self) -> io::Result<&File> {
        self.file.as_ref().ok_or_else(|| io::Error::other("a temporary folder is not a file"))
    }

    /// Stops tracking the path: it was renamed into place, or never created.
    fn forget(mut self) {
        self.unregister();
        self.path = PathBuf::new();
    }

    fn unregister(&self) {
        let mut paths = in_flight();
        if let Some(i) = paths.iter().position(|p| *p == self.path) {
            paths.swap_remove(i);
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        self.file = None;
        let _ = if self.path.is_dir() { std::fs::remove_dir_all(&self.path) } else { std::fs::remove_file(&self.path) };
        self.unregister();
    }
}
