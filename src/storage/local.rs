//! The local-directory backend: the embedded default.
//!
//! Objects are files under the root. Writes go to a temporary file in
//! `<root>/.packages-tmp/` and are moved into place, so readers never see a
//! partial object. Conditional writes are atomic across processes: the check
//! and the rename happen under an exclusive `flock` on a per-key lock file in
//! `<root>/.packages-locks/`. Both folders start with a dot, which no object
//! key segment may, so they can never collide with objects.
//!
//! A copy is a hard link (objects are never changed in place, only replaced by
//! rename, so sharing an inode is safe), or a byte copy where links fail.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use sha2::{Digest, Sha256};

use super::{
    Consistency, GetResult, ObjectMeta, ObjectStore, Payload, PutMode, PutOptions, StorageError,
    StoreFuture, check_key,
};

const TMP_DIR: &str = ".packages-tmp";
const LOCK_DIR: &str = ".packages-locks";

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        let fail = |e: io::Error| StorageError::backend("open", &root.display().to_string(), e);
        fs::create_dir_all(root.join(TMP_DIR)).map_err(fail)?;
        fs::create_dir_all(root.join(LOCK_DIR)).map_err(fail)?;
        let root = root.canonicalize().map_err(fail)?;
        Ok(Self { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        if key.split('/').any(|s| s.starts_with('.')) {
            return Err(StorageError::InvalidKey {
                key: key.to_owned(),
                reason: "a segment starts with `.`",
            });
        }
        Ok(self.root.join(key))
    }

    async fn get(&self, key: &str) -> Result<GetResult, StorageError> {
        let path = self.path_of(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| map_io("get", key, e))?;
        let metadata = file.metadata().await.map_err(|e| map_io("get", key, e))?;
        if !metadata.is_file() {
            return Err(StorageError::NotFound {
                key: key.to_owned(),
            });
        }
        Ok(GetResult {
            meta: meta_of(key, &metadata),
            body: Box::pin(file),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(meta_of(key, &m))),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(StorageError::backend("head", key, e)),
        }
    }

    async fn put(
        &self,
        key: &str,
        payload: Payload,
        mode: PutMode,
    ) -> Result<ObjectMeta, StorageError> {
        let path = self.path_of(key)?;
        let store = self.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || store.put_blocking(&key, &path, payload, mode))
            .await
            .map_err(|e| StorageError::backend("put", "", e))?
    }

    fn put_blocking(
        &self,
        key: &str,
        path: &Path,
        payload: Payload,
        mode: PutMode,
    ) -> Result<ObjectMeta, StorageError> {
        let fail = |e: io::Error| StorageError::backend("put", key, e);
        // Stage the bytes first, outside the lock; the temporary file is
        // removed on every early return by its Drop.
        let mut staged = tempfile::NamedTempFile::new_in(self.root.join(TMP_DIR)).map_err(fail)?;
        match payload {
            Payload::Bytes(bytes) => io::Write::write_all(&mut staged, &bytes).map_err(fail)?,
            Payload::File(source) => {
                let mut source = File::open(&source).map_err(fail)?;
                io::copy(&mut source, &mut staged).map_err(fail)?;
            }
        }
        staged.as_file().sync_all().map_err(fail)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(fail)?;
        }

        let _lock = self.lock(key)?;
        match &mode {
            PutMode::Overwrite => {}
            PutMode::Create => {
                if fs::symlink_metadata(path).is_ok() {
                    return Err(StorageError::AlreadyExists {
                        key: key.to_owned(),
                    });
                }
            }
            PutMode::Update(etag) => match fs::metadata(path) {
                Ok(current) if &etag_of(&current) == etag => {}
                Ok(_) => {
                    return Err(StorageError::Precondition {
                        key: key.to_owned(),
                    });
                }
                Err(e) if is_missing(&e) => {
                    return Err(StorageError::Precondition {
                        key: key.to_owned(),
                    });
                }
                Err(e) => return Err(fail(e)),
            },
        }
        staged.persist(path).map_err(|e| fail(e.error))?;
        let written = fs::metadata(path).map_err(fail)?;
        Ok(meta_of(key, &written))
    }

    /// Takes the exclusive per-key lock; released when the returned file drops.
    fn lock(&self, key: &str) -> Result<File, StorageError> {
        let name = hex::encode(Sha256::digest(key.as_bytes()));
        let lock_path = self.root.join(LOCK_DIR).join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StorageError::backend("lock", key, e))?;
        file.lock_exclusive()
            .map_err(|e| StorageError::backend("lock", key, e))?;
        Ok(file)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let store = self.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || store.list_blocking(&prefix))
            .await
            .map_err(|e| StorageError::backend("list", "", e))?
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        // Start the walk at the deepest directory the prefix names.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        if !dir_part.is_empty() {
            check_key(dir_part)?;
        }
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.root.join(dir_part)
        };
        let mut found = Vec::new();
        let mut stack = vec![(start, dir_part.to_owned())];
        while let Some((dir, key_dir)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) || e.kind() == io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(StorageError::backend("list", prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::backend("list", prefix, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let key = if key_dir.is_empty() {
                    name
                } else {
                    format!("{key_dir}/{name}")
                };
                let file_type = entry
                    .file_type()
                    .map_err(|e| StorageError::backend("list", prefix, e))?;
                if file_type.is_dir() {
                    // Only descend where keys below could still match the prefix.
                    let as_dir = format!("{key}/");
                    if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                        stack.push((entry.path(), key));
                    }
                } else if file_type.is_file() && key.starts_with(prefix) {
                    match entry.metadata() {
                        Ok(m) => found.push(meta_of(&key, &m)),
                        Err(e) if is_missing(&e) => {}
                        Err(e) => return Err(StorageError::backend("list", prefix, e)),
                    }
                }
            }
        }
        Ok(found)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let source = self.path_of(from)?;
        let target = self.path_of(to)?;
        let store = self.clone();
        let (from, to) = (from.to_owned(), to.to_owned());
        tokio::task::spawn_blocking(move || store.copy_blocking(&from, &to, &source, &target))
            .await
            .map_err(|e| StorageError::backend("copy", "", e))?
    }

    fn copy_blocking(
        &self,
        from: &str,
        to: &str,
        source: &Path,
        target: &Path,
    ) -> Result<(), StorageError> {
        let fail = |e: io::Error| StorageError::backend("copy", to, e);
        match fs::metadata(source) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(map_io("copy", from, io::ErrorKind::NotFound.into())),
            Err(e) => return Err(map_io("copy", from, e)),
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(fail)?;
        }
        // Stage under a fresh temporary name, then rename into place under the
        // target's lock, as a put does.
        let staged = tempfile::Builder::new()
            .prefix("copy-")
            .make_in(self.root.join(TMP_DIR), |path| {
                match fs::hard_link(source, path) {
                    Ok(()) => Ok(()),
                    // A name clash: the builder retries with another name.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
                    // No links here (another file system, say): copy the bytes.
                    Err(_) => {
                        let mut out = OpenOptions::new().write(true).create_new(true).open(path)?;
                        io::copy(&mut File::open(source)?, &mut out)?;
                        out.sync_all()
                    }
                }
            })
            .map_err(|e| map_io("copy", from, e))?;
        let _lock = self.lock(to)?;
        let staged_path = staged.path().to_owned();
        // Keep the staged name: if `to` is already a link to the same inode,
        // rename succeeds without removing it, and the drop below does.
        fs::rename(&staged_path, target).map_err(fail)?;
        drop(staged);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        let store = self.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            let _lock = store.lock(&key)?;
            match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if is_missing(&e) => Ok(()),
                Err(e) => Err(StorageError::backend("delete", &key, e)),
            }
        })
        .await
        .map_err(|e| StorageError::backend("delete", "", e))?
    }
}

impl ObjectStore for LocalStore {
    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    fn consistency(&self) -> Option<Consistency> {
        Some(Consistency::Conditional)
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, GetResult> {
        Box::pin(self.get(key))
    }

    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<ObjectMeta>> {
        Box::pin(self.head(key))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        payload: Payload,
        _options: &'a PutOptions,
        mode: PutMode,
    ) -> StoreFuture<'a, ObjectMeta> {
        // Headers are derived from the key at serve time, not stored.
        Box::pin(self.put(key, payload, mode))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>> {
        Box::pin(self.list(prefix))
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.delete(key))
    }

    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.copy(from, to))
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn map_io(op: &'static str, key: &str, e: io::Error) -> StorageError {
    if is_missing(&e) || e.kind() == io::ErrorKind::IsADirectory {
        StorageError::NotFound {
            key: key.to_owned(),
        }
    } else {
        StorageError::backend(op, key, e)
    }
}

/// A version tag from inode, size and modification time: every write moves a
/// new file into place, so it changes on every replacement without reading the bytes.
fn etag_of(m: &fs::Metadata) -> String {
    format!(
        "\"{:x}-{:x}-{:x}{:08x}\"",
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    )
}

fn meta_of(key: &str, m: &fs::Metadata) -> ObjectMeta {
    ObjectMeta {
        key: key.to_owned(),
        size: m.len(),
        etag: etag_of(m),
        last_modified: m.modified().ok(),
    }
}
