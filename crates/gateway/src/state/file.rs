//! `file:PATH`: the state of a single gateway in one JSON file (a list of records, secrets included,
//! so the file is created with mode 0600). Every change rewrites it atomically: write a temporary
//! file beside it, sync, rename. Files written before records had kinds (a list of subscriptions)
//! read unchanged.

use super::{Cache, Record, StateError, StateStore};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

pub struct FileStore {
    path: PathBuf,
    cache: Cache,
    /// Serializes file writes so the file always holds the latest map.
    write: tokio::sync::Mutex<()>,
}

impl FileStore {
    /// Reads `path` if it exists; a missing file is an empty state.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        let entries = match std::fs::read(&path) {
            Ok(bytes) => {
                let corrupt = |message: String| StateError::Corrupt { path: shown.clone(), message };
                let list: Vec<serde_json::Value> =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not a JSON list: {e}")))?;
                let mut entries = BTreeMap::new();
                for (index, value) in list.into_iter().enumerate() {
                    let record = Record::from_json(None, value).map_err(|e| corrupt(format!("entry {index}: {e}")))?;
                    entries.insert(record.key(), record);
                }
                entries
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(StateError::File { path: shown, source }),
        };
        Ok(Self { path, cache: Cache::new(entries), write: tokio::sync::Mutex::new(()) })
    }

    /// Undoes a change the file did not take, so memory never holds what a restart would lose.
    fn restore(&self, key: String, previous: Option<Record>) {
        self.cache.update(|map| match previous {
            Some(previous) => map.insert(key, previous),
            None => map.remove(&key),
        });
    }

    async fn persist(&self) -> Result<(), StateError> {
        let _guard = self.write.lock().await;
        let list: Vec<serde_json::Value> = self.cache.records().iter().map(Record::to_json).collect();
        let bytes = serde_json::to_vec_pretty(&list)
            .map_err(|e| StateError::Corrupt { path: self.path.display().to_string(), message: e.to_string() })?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| StateError::File { path: self.path.display().to_string(), source: std::io::Error::other(e) })?
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let error = |source| StateError::File { path: path.display().to_string(), source };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp-{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.sync_all().map_err(error)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(error)
}

#[async_trait::async_trait]
impl StateStore for FileStore {
    fn records(&self) -> Vec<Record> {
        self.cache.records()
    }

    fn record(&self, key: &str) -> Option<Record> {
        self.cache.record(key)
    }

    async fn put_record(&self, record: Record) -> Result<(), StateError> {
        let key = record.key();
        let previous = self.cache.update(|map| map.insert(key.clone(), record));
        self.persist().await.inspect_err(|_| self.restore(key, previous))
    }

    async fn delete_record(&self, key: &str) -> Result<bool, StateError> {
        let Some(previous) = self.cache.update(|map| map.remove(key)) else { return Ok(false) };
        self.persist().await.inspect_err(|_| self.restore(key.to_owned(), Some(previous)))?;
        Ok(true)
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.cache.changes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::validate::{parse, CreateSubscription};
    use crate::state::Subscription;

    fn subscription(id: &str) -> Subscription {
        let body = r#"{"plan":"p","configuration":{"callbackUrl":"http://x","auth":{"type":"token","token":{"value":"t0ken"}}}}"#;
        let request: CreateSubscription = parse(body.as_bytes()).unwrap();
        Subscription {
            id: id.into(),
            api_id: "api".into(),
            plan_id: request.plan,
            configuration: request.configuration,
            state: Default::default(),
        }
    }

    #[tokio::test]
    async fn survives_reopening_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let store = FileStore::open(&path).unwrap();
        store.put(subscription("a")).await.unwrap();
        store.put(subscription("b")).await.unwrap();
        assert!(store.delete("api", "a").await.unwrap());
        assert!(!store.delete("api", "a").await.unwrap());
        let reopened = FileStore::open(&path).unwrap();
        assert_eq!(reopened.list(), vec![subscription("b")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn a_file_of_an_earlier_version_loads_and_unknown_records_are_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        // A list of subscriptions, as kafka-edge 0.1.0 wrote it, and a record of a later version.
        let future = serde_json::json!({"kind": "rate-limit", "version": 3, "apiId": "api"});
        let old = serde_json::json!([serde_json::to_value(subscription("a")).unwrap(), future]);
        std::fs::write(&path, old.to_string()).unwrap();
        let store = FileStore::open(&path).unwrap();
        assert_eq!(store.list(), vec![subscription("a")]);
        store.put(subscription("b")).await.unwrap();
        let written: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(written.contains(&future), "{written:?}");
        assert!(written.iter().any(|record| record.get("kind").is_none() && record["id"] == "a"), "{written:?}");
        assert_eq!(FileStore::open(&path).unwrap().list(), vec![subscription("a"), subscription("b")]);
    }

    #[tokio::test]
    async fn a_failed_write_leaves_memory_as_it_was() {
        let store = FileStore::open("/nonexistent-directory/state").unwrap();
        assert!(store.put(subscription("a")).await.is_err());
        assert!(store.list().is_empty());
    }
}
