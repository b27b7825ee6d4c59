//! The definition files behind the served APIs, read again on demand (docs/operations.md#reload).
//! At start every file must load, as `validate` demands. Later, each file is judged on its own: an
//! unchanged file keeps its API (same connections, same consumers), a changed one is built anew,
//! a file that fails keeps its previous version serving (or, new, is not served), and a file that
//! claims an API id or context path another file serves is refused, not the other one.

use crate::api::LoadedApi;
use kafka_edge_definition::{
    check_unique, definition_files, load_str, read_definition, Format, Ignored, Loaded, Problem,
};
use kafka_edge_endpoint_kafka::KafkaClients;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One definition file and the API built from it.
struct Served {
    text: String,
    api: Arc<LoadedApi>,
    ignored: Vec<Ignored>,
}

/// What a reload changed.
#[derive(Default)]
pub struct Changes {
    /// APIs served for the first time, or again.
    pub added: Vec<Arc<LoadedApi>>,
    /// New versions of APIs that were served.
    pub replaced: Vec<Arc<LoadedApi>>,
    /// Ids of APIs no longer served.
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty()
    }
}

/// The definition files under the `--api` paths, and the API each one serves.
pub struct Definitions {
    paths: Vec<PathBuf>,
    clients: Arc<KafkaClients>,
    served: BTreeMap<PathBuf, Served>,
    /// The text of each file last refused, so that its problems are logged once, not each reload.
    refused: HashMap<PathBuf, String>,
    /// The listing problems last logged (a named file that is gone), likewise.
    listing_problems: Vec<String>,
}

impl Definitions {
    /// Loads and builds every definition; any problem of any file, an API id or context path two
    /// files share included, refuses them all.
    pub fn load(paths: Vec<PathBuf>, clients: Arc<KafkaClients>) -> Result<Self, Vec<Problem>> {
        let (files, mut problems) = definition_files(&paths);
        let mut loaded: Vec<(PathBuf, String, Loaded)> = Vec::new();
        for file in files {
            match read(&file) {
                Ok((text, definition)) => loaded.push((file, text, definition)),
                Err(found) => problems.extend(found),
            }
        }
        let definitions: Vec<Loaded> = loaded.iter().map(|(_, _, definition)| definition.clone()).collect();
        check_unique(&definitions, &mut problems);
        let mut served = BTreeMap::new();
        for (file, text, definition) in loaded {
            match build(&definition, &clients) {
                Ok(api) => {
                    problems.extend(second_principal(&served, &file, &api));
                    served.insert(file, Served { text, api, ignored: definition.ignored });
                }
                Err(found) => problems.extend(found),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self { paths, clients, served, refused: HashMap::new(), listing_problems: Vec::new() })
    }

    /// The APIs served, in file order.
    pub fn apis(&self) -> Vec<Arc<LoadedApi>> {
        self.served.values().map(|served| served.api.clone()).collect()
    }

    /// Each file with its API and the fields it ignored, in file order.
    pub fn files(&self) -> impl Iterator<Item = (&Path, &Arc<LoadedApi>, &[Ignored])> {
        self.served.iter().map(|(file, served)| (file.as_path(), &served.api, served.ignored.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.served.is_empty()
    }

    /// Reads every file again and builds what changed; logs each refusal once.
    pub fn reload(&mut self) -> Changes {
        let (files, problems) = definition_files(&self.paths);
        self.log_listing_problems(&problems);
        let before = self.apis();
        let mut previous = std::mem::take(&mut self.served);
        let mut next: BTreeMap<PathBuf, Served> = BTreeMap::new();
        let mut candidates: Vec<(PathBuf, Served, Option<Served>)> = Vec::new();
        for file in files {
            let old = previous.remove(&file);
            let text = match read_definition(&file) {
                Ok(text) => text,
                Err(problem) => {
                    // Read while being replaced, or unreadable: what served keeps serving.
                    self.refuse(&file, String::new(), vec![problem], old.is_some());
                    if let Some(old) = old {
                        next.insert(file, old);
                    }
                    continue;
                }
            };
            let old = match old {
                Some(old) if old.text == text => {
                    next.insert(file, old);
                    continue;
                }
                other => other,
            };
            if self.refused.get(&file) == Some(&text) {
                if let Some(old) = old {
                    next.insert(file, old);
                }
                continue;
            }
            match read_text(&file, &text).and_then(|definition| {
                let api = build(&definition, &self.clients)?;
                Ok(Served { text: text.clone(), api, ignored: definition.ignored })
            }) {
                Ok(new) => candidates.push((file, new, old)),
                Err(found) => {
                    self.refuse(&file, text, found, old.is_some());
                    if let Some(old) = old {
                        next.insert(file, old);
                    }
                }
            }
        }
        for (file, new, old) in candidates {
            match conflict(&next, &file, &new.api) {
                None => {
                    self.refused.remove(&file);
                    for ignored in &new.ignored {
                        tracing::warn!("{ignored}");
                    }
                    next.insert(file, new);
                }
                Some(problem) => {
                    self.refuse(&file, new.text, vec![problem], old.is_some());
                    if let Some(old) = old.filter(|old| conflict(&next, &file, &old.api).is_none()) {
                        next.insert(file, old);
                    }
                }
            }
        }
        self.refused.retain(|file, _| next.contains_key(file) || file.exists());
        let changes = changes(&before, &next);
        self.served = next;
        for api in &changes.added {
            tracing::info!(api = %api.id, "API added by a reload.");
        }
        for api in &changes.replaced {
            tracing::info!(api = %api.id, "API reloaded: new requests get the new version.");
        }
        for api in &changes.removed {
            tracing::info!(%api, "API removed by a reload: new requests answer 404.");
        }
        changes
    }

    fn refuse(&mut self, file: &Path, text: String, problems: Vec<Problem>, keeps_previous: bool) {
        if self.refused.get(file) == Some(&text) {
            return;
        }
        for problem in &problems {
            tracing::error!("Invalid API definition: {problem}");
        }
        if keeps_previous {
            tracing::warn!(file = %file.display(), "Definition not reloaded: its previous version keeps serving.");
        } else {
            tracing::warn!(file = %file.display(), "Definition not served.");
        }
        self.refused.insert(file.to_path_buf(), text);
    }

    fn log_listing_problems(&mut self, problems: &[Problem]) {
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        if rendered != self.listing_problems {
            for problem in &rendered {
                tracing::warn!("API definitions: {problem}");
            }
            self.listing_problems = rendered;
        }
    }
}

/// Reads and loads one file.
fn read(file: &Path) -> Result<(String, Loaded), Vec<Problem>> {
    let text = read_definition(file).map_err(|problem| vec![problem])?;
    let definition = read_text(file, &text)?;
    Ok((text, definition))
}

fn read_text(file: &Path, text: &str) -> Result<Loaded, Vec<Problem>> {
    load_str(text, Format::of(file).unwrap_or(Format::Json), &file.display().to_string())
}

fn build(definition: &Loaded, clients: &Arc<KafkaClients>) -> Result<Arc<LoadedApi>, Vec<Problem>> {
    LoadedApi::build(&definition.api, clients)
        .map(Arc::new)
        .map_err(|found| found.into_iter().map(|problem| problem.in_file(&definition.file)).collect())
}

/// A problem when `api` (from `file`) would share its id or a context path with another file's.
fn conflict(served: &BTreeMap<PathBuf, Served>, file: &Path, api: &LoadedApi) -> Option<Problem> {
    let origin = file.display().to_string();
    for (other, served) in served.iter().filter(|(other, _)| other.as_path() != file) {
        let other = other.display();
        if served.api.id == api.id {
            let message = format!("API id `{}` is also used by {other}", api.id);
            return Some(Problem::new("id", message).in_file(&origin));
        }
        if let Some(path) = api.context_paths.iter().find(|path| served.api.context_paths.contains(path)) {
            let message = format!("context path `{path}` is also served by {other}");
            return Some(Problem::new("listeners", message).in_file(&origin));
        }
    }
    second_principal(served, file, api)
}

/// A problem when `api` (from `file`) authenticates with Kerberos as another principal than an
/// API another file serves.
fn second_principal(served: &BTreeMap<PathBuf, Served>, file: &Path, api: &LoadedApi) -> Option<Problem> {
    let login = api.kerberos.as_ref()?;
    served.iter().filter(|(other, _)| other.as_path() != file).find_map(|(other, served)| {
        let first = served.api.kerberos.as_ref()?;
        let here = format!("in {}", other.display());
        first.second_principal(login, &here).map(|problem| problem.in_file(&file.display().to_string()))
    })
}

/// The difference between the APIs served before and those of `next`.
fn changes(before: &[Arc<LoadedApi>], next: &BTreeMap<PathBuf, Served>) -> Changes {
    let mut changes = Changes::default();
    for api in next.values().map(|served| &served.api) {
        if before.iter().any(|old| Arc::ptr_eq(old, api)) {
            continue;
        }
        if before.iter().any(|old| old.id == api.id) {
            changes.replaced.push(api.clone());
        } else {
            changes.added.push(api.clone());
        }
    }
    for old in before {
        if !next.values().any(|served| served.api.id == old.id) {
            changes.removed.push(old.id.clone());
        }
    }
    changes
}
