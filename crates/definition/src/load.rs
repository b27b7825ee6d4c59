//! Reading definition files: JSON or YAML text → raw serde types (with every ignored field
//! recorded) → typed per-block configurations (with the path of each block) → validation.

use crate::api::*;
use crate::entrypoint::*;
use crate::kafka::{KafkaEndpointConfiguration, SharedConfiguration};
use crate::plan::*;
use crate::problem::{join, Problem};
use crate::validate::validate;
use crate::value::lenient_u64;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// A field that is present but that kafka-edge does not implement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub file: String,
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ignored ({})", self.file, self.path, self.reason)
    }
}

/// A definition that loaded, with the fields it ignored.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: String,
    pub api: ApiDefinition,
    pub ignored: Vec<Ignored>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// The format a file name implies; `None` for files that are not definitions.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// Loads every definition found at the given files and directories (directories are searched
/// recursively for `.json`, `.yaml` and `.yml`). All problems of all files are reported together,
/// including API ids or context paths that two definitions share.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Loaded>, Vec<Problem>> {
    let (files, mut problems) = definition_files(paths);
    let mut loaded: Vec<Loaded> = Vec::new();
    for file in &files {
        match load_definition(file) {
            Ok(definition) => loaded.push(definition),
            Err(mut found) => problems.append(&mut found),
        }
    }
    check_unique(&loaded, &mut problems);
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems)
    }
}

/// The definition files at the given files and directories, in a stable order, and the paths
/// that could not be read. Directories are searched recursively; names that start with `.` are
/// skipped, so that a Kubernetes ConfigMap's `..data` and timestamped directories do not show
/// each definition a second time.
pub fn definition_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files, &mut problems);
    }
    (files, problems)
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let origin = path.display().to_string();
    if path.is_dir() {
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(error) => return problems.push(problem(&origin, "", format!("cannot read directory: {error}"))),
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        let hidden =
            |child: &Path| child.file_name().and_then(|name| name.to_str()).is_some_and(|n| n.starts_with('.'));
        for child in children {
            if hidden(&child) {
                continue;
            }
            if child.is_dir() || Format::of(&child).is_some() {
                collect_files(&child, files, problems);
            }
        }
    } else if path.exists() {
        files.push(path.to_path_buf());
    } else {
        problems.push(problem(&origin, "", "no such file or directory".into()));
    }
}

/// Problems for API ids and context paths that two definitions share (named in the later one).
pub fn check_unique(loaded: &[Loaded], problems: &mut Vec<Problem>) {
    let mut ids: Vec<(&str, &str)> = Vec::new();
    let mut context_paths: Vec<(String, &str)> = Vec::new();
    for definition in loaded {
        if let Some((_, other)) = ids.iter().find(|(id, _)| *id == definition.api.id) {
            problems.push(problem(
                &definition.file,
                "id",
                format!("API id `{}` is also used by {other}", definition.api.id),
            ));
        }
        ids.push((&definition.api.id, &definition.file));
        for path in definition.api.context_paths() {
            let normalized = normalize_context_path(path);
            if let Some((_, other)) = context_paths.iter().find(|(p, _)| *p == normalized) {
                problems.push(problem(
                    &definition.file,
                    "listeners",
                    format!("context path `{path}` is also served by {other}"),
                ));
            }
            context_paths.push((normalized, &definition.file));
        }
    }
}

/// `/demo/` and `/demo` are the same context path.
pub fn normalize_context_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Loads one definition file.
pub fn load_definition(path: &Path) -> Result<Loaded, Vec<Problem>> {
    let text = read_definition(path).map_err(|problem| vec![problem])?;
    load_str(&text, Format::of(path).unwrap_or(Format::Json), &path.display().to_string())
}

/// The text of one definition file.
pub fn read_definition(path: &Path) -> Result<String, Problem> {
    std::fs::read_to_string(path)
        .map_err(|error| problem(&path.display().to_string(), "", format!("cannot read file: {error}")))
}

/// Loads one definition from text; `origin` names it in problems.
pub fn load_str(text: &str, format: Format, origin: &str) -> Result<Loaded, Vec<Problem>> {
    let document: Value = match format {
        Format::Json => {
            serde_json::from_str(text).map_err(|e| vec![problem(origin, "", format!("invalid JSON: {e}"))])?
        }
        Format::Yaml => {
            serde_norway::from_str(text).map_err(|e| vec![problem(origin, "", format!("invalid YAML: {e}"))])?
        }
    };
    let mut ignored = Vec::new();
    let raw: RawApi = parse(document, "", origin, &mut ignored).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let api = raw.into_definition(origin, &mut problems, &mut ignored);
    validate(&api, origin, &mut problems, &mut ignored);
    if problems.is_empty() {
        Ok(Loaded { file: origin.to_string(), api, ignored })
    } else {
        Err(problems)
    }
}

/// Loads a Kafka `security` block on its own (JSON, or YAML by extension), as the gateway's own
/// Kafka clients take it (`kafka-edge run --state-security FILE`). Unknown fields are problems.
pub fn load_security(path: &Path) -> Result<crate::SecurityConfiguration, Problem> {
    let origin = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|error| problem(&origin, "", format!("cannot read file: {error}")))?;
    let document: Value = match Format::of(path).unwrap_or(Format::Json) {
        Format::Json => serde_json::from_str(&text).map_err(|e| problem(&origin, "", format!("invalid JSON: {e}")))?,
        Format::Yaml => {
            serde_norway::from_str(&text).map_err(|e| problem(&origin, "", format!("invalid YAML: {e}")))?
        }
    };
    let mut ignored = Vec::new();
    parse(document, "", &origin, &mut ignored)
}

/// A problem at `path` (empty: the whole file, shown as `(root)`) of the definition in `file`.
pub(crate) fn problem(file: &str, path: &str, message: String) -> Problem {
    let path = if path.is_empty() { "(root)" } else { path };
    Problem::new(path, message).in_file(file)
}

/// Deserializes `value` as `T`, recording the fields `T` does not know as ignored and reporting a
/// type error with its full path below `base`.
fn parse<T: DeserializeOwned>(
    value: Value,
    base: &str,
    origin: &str,
    ignored: &mut Vec<Ignored>,
) -> Result<T, Problem> {
    let value = if value.is_null() { Value::Object(Default::default()) } else { value };
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(render_ignored_path(&path));
    let deserializer = serde_ignored::Deserializer::new(value, &mut record);
    let result: Result<T, _> = serde_path_to_error::deserialize(deserializer);
    for path in unknown {
        ignored.push(Ignored {
            file: origin.to_string(),
            path: join(base, &path),
            reason: "not a field kafka-edge implements".into(),
        });
    }
    result.map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { base.to_string() } else { join(base, &path) };
        problem(origin, &path, error.inner().to_string())
    })
}

fn render_ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", render_ignored_path(parent)),
        P::Map { parent, key } => join(&render_ignored_path(parent), key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => render_ignored_path(parent),
    }
}

/// Parses a block that must be complete and exact (unknown fields are errors, not ignored).
fn parse_strict<T: DeserializeOwned>(
    value: &Value,
    base: &str,
    origin: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut ignored = Vec::new();
    match parse(value.clone(), base, origin, &mut ignored) {
        Ok(typed) => Some(typed),
        Err(found) => {
            problems.push(found);
            None
        }
    }
}

// === raw definition ===

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawApi {
    id: String,
    name: String,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    definition_version: Option<String>,
    #[serde(rename = "type")]
    api_type: String,
    #[serde(default)]
    listeners: Vec<RawListener>,
    #[serde(default)]
    endpoint_groups: Vec<RawEndpointGroup>,
    #[serde(default)]
    flows: Vec<Flow>,
    #[serde(default)]
    plans: Vec<RawPlan>,
    #[serde(default)]
    resources: Vec<RawResource>,
    #[serde(default)]
    properties: Vec<RawProperty>,
}

#[derive(Deserialize)]
struct RawResource {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "enabled", deserialize_with = "crate::value::lenient_bool")]
    enabled: bool,
    #[serde(default)]
    configuration: Value,
}

fn enabled() -> bool {
    true
}

#[derive(Deserialize)]
struct RawProperty {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct RawListener {
    #[serde(rename = "type")]
    kind: ListenerType,
    #[serde(default)]
    paths: Vec<ListenerPath>,
    #[serde(default)]
    entrypoints: Vec<RawEntrypoint>,
    #[serde(default)]
    cors: Option<Value>,
}

#[derive(Deserialize)]
struct RawEntrypoint {
    #[serde(rename = "type")]
    kind: EntrypointType,
    #[serde(default)]
    qos: Qos,
    #[serde(default)]
    dlq: Option<RawDlq>,
    #[serde(default)]
    configuration: Value,
}

#[derive(Deserialize)]
struct RawDlq {
    endpoint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEndpointGroup {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    load_balancer: Option<Value>,
    #[serde(default)]
    shared_configuration: Value,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEndpoint {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "default_weight", deserialize_with = "lenient_u64")]
    weight: u64,
    #[serde(default, deserialize_with = "lenient_optional_bool")]
    inherit_configuration: Option<bool>,
    #[serde(default)]
    configuration: Value,
    #[serde(default)]
    shared_configuration_override: Option<Value>,
    #[serde(default)]
    tenants: Option<Vec<String>>,
}

fn default_weight() -> u64 {
    1
}

fn lenient_optional_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    crate::value::lenient_bool(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPlan {
    id: String,
    name: String,
    #[serde(default)]
    security: Option<RawPlanSecurity>,
    #[serde(default)]
    mode: Option<PlanMode>,
    #[serde(default)]
    status: PlanStatus,
    #[serde(default)]
    selection_rule: Option<String>,
    #[serde(default)]
    flows: Vec<Flow>,
}

#[derive(Deserialize)]
struct RawPlanSecurity {
    #[serde(rename = "type")]
    kind: PlanSecurityType,
    #[serde(default)]
    configuration: Value,
}

impl RawPlan {
    fn into_plan(self, base: &str, origin: &str, problems: &mut Vec<Problem>, ignored: &mut Vec<Ignored>) -> Plan {
        let mode = self.mode.unwrap_or(PlanMode::Standard);
        let security = match (mode, self.security) {
            // A PUSH plan's callers are its subscriptions: its security block is not read.
            (PlanMode::Push, _) | (_, None) => None,
            (PlanMode::Standard, Some(security)) => {
                let path = join(base, "security.configuration");
                let value = security.configuration;
                match security.kind {
                    PlanSecurityType::KeyLess => Some(PlanSecurity::KeyLess),
                    PlanSecurityType::Mtls => Some(PlanSecurity::Mtls),
                    PlanSecurityType::ApiKey => {
                        parse_into(value, &path, origin, problems, ignored).map(PlanSecurity::ApiKey)
                    }
                    PlanSecurityType::Jwt => parse_into(value, &path, origin, problems, ignored).map(PlanSecurity::Jwt),
                    PlanSecurityType::OAuth2 => {
                        parse_into(value, &path, origin, problems, ignored).map(PlanSecurity::OAuth2)
                    }
                }
            }
        };
        Plan {
            id: self.id,
            name: self.name,
            security,
            mode,
            status: self.status,
            selection_rule: self.selection_rule.filter(|rule| !rule.trim().is_empty()),
            flows: self.flows,
        }
    }
}

/// [`parse`] for a block inside the definition: its problem is collected, its ignored fields too.
fn parse_into<T: DeserializeOwned>(
    value: Value,
    base: &str,
    origin: &str,
    problems: &mut Vec<Problem>,
    ignored: &mut Vec<Ignored>,
) -> Option<T> {
    parse(value, base, origin, ignored).map_err(|problem| problems.push(problem)).ok()
}

impl RawApi {
    fn into_definition(self, origin: &str, problems: &mut Vec<Problem>, ignored: &mut Vec<Ignored>) -> ApiDefinition {
        match self.definition_version.as_deref() {
            None | Some("4.0.0") | Some("V4") | Some("v4") => {}
            Some(other) => problems.push(problem(
                origin,
                "definitionVersion",
                format!("invalid value `{other}`, expected `4.0.0` (a v4 message API)"),
            )),
        }
        if !self.api_type.eq_ignore_ascii_case("message") {
            problems.push(problem(origin, "type", format!("invalid value `{}`, expected `message`", self.api_type)));
        }
        let listeners = self
            .listeners
            .into_iter()
            .enumerate()
            .map(|(index, listener)| listener.into_listener(&format!("listeners[{index}]"), origin, problems, ignored))
            .collect();
        let endpoint_groups = self
            .endpoint_groups
            .into_iter()
            .enumerate()
            .filter_map(|(index, group)| {
                group.into_group(&format!("endpointGroups[{index}]"), origin, problems, ignored)
            })
            .collect();
        let plans = self
            .plans
            .into_iter()
            .enumerate()
            .map(|(index, plan)| plan.into_plan(&format!("plans[{index}]"), origin, problems, ignored))
            .collect();
        let resources = self
            .resources
            .into_iter()
            .enumerate()
            .map(|(index, resource)| {
                let base = format!("resources[{index}]");
                let oauth2 = if resource.kind.eq_ignore_ascii_case("oauth2") {
                    parse_into(resource.configuration, &join(&base, "configuration"), origin, problems, ignored)
                } else {
                    ignored.push(Ignored {
                        file: origin.to_string(),
                        path: base,
                        reason: format!(
                            "resource type `{}` is not implemented (kafka-edge reads `oauth2`)",
                            resource.kind
                        ),
                    });
                    None
                };
                Resource { name: resource.name, enabled: resource.enabled, oauth2 }
            })
            .collect();
        ApiDefinition {
            id: self.id,
            name: self.name,
            api_version: self.api_version,
            listeners,
            endpoint_groups,
            flows: self.flows,
            plans,
            resources,
            properties: self.properties.into_iter().map(|p| (p.key, p.value)).collect(),
        }
    }
}

impl RawListener {
    fn into_listener(
        self,
        base: &str,
        origin: &str,
        problems: &mut Vec<Problem>,
        ignored: &mut Vec<Ignored>,
    ) -> Listener {
        let cors_path = join(base, "cors");
        // Gravitee ignores the other fields of a disabled block; so does kafka-edge, silently.
        let cors = match self.cors {
            Some(value)
                if value.get("enabled").is_some_and(|enabled| {
                    enabled == true || enabled.as_str().is_some_and(|text| text.trim().eq_ignore_ascii_case("true"))
                }) =>
            {
                parse_into::<Cors>(value, &cors_path, origin, problems, ignored)
            }
            _ => None,
        };
        if cors.as_ref().is_some_and(|cors| cors.run_policies) {
            ignored.push(Ignored {
                file: origin.to_string(),
                path: join(&cors_path, "runPolicies"),
                reason: "preflight requests are answered without running flows".into(),
            });
        }
        let entrypoints = self
            .entrypoints
            .into_iter()
            .enumerate()
            .map(|(index, entrypoint)| {
                let path = format!("{base}.entrypoints[{index}]");
                let configuration_path = join(&path, "configuration");
                let configuration = match entrypoint.kind {
                    EntrypointType::HttpGet => {
                        parse_strict(&entrypoint.configuration, &configuration_path, origin, problems)
                            .map(EntrypointConfiguration::HttpGet)
                    }
                    EntrypointType::HttpPost => {
                        parse_strict(&entrypoint.configuration, &configuration_path, origin, problems)
                            .map(EntrypointConfiguration::HttpPost)
                    }
                    EntrypointType::Sse => {
                        parse_strict(&entrypoint.configuration, &configuration_path, origin, problems)
                            .map(EntrypointConfiguration::Sse)
                    }
                    EntrypointType::Webhook => {
                        parse_strict(&entrypoint.configuration, &configuration_path, origin, problems)
                            .map(EntrypointConfiguration::Webhook)
                    }
                    EntrypointType::Websocket => {
                        parse_strict(&entrypoint.configuration, &configuration_path, origin, problems)
                            .map(EntrypointConfiguration::Websocket)
                    }
                }
                .unwrap_or(EntrypointConfiguration::NotImplemented);
                Entrypoint {
                    kind: entrypoint.kind,
                    qos: entrypoint.qos,
                    dlq_endpoint: entrypoint.dlq.map(|d| d.endpoint),
                    configuration,
                }
            })
            .collect();
        Listener { kind: self.kind, paths: self.paths, entrypoints, cors }
    }
}

impl RawEndpointGroup {
    fn into_group(
        self,
        base: &str,
        origin: &str,
        problems: &mut Vec<Problem>,
        ignored: &mut Vec<Ignored>,
    ) -> Option<EndpointGroup> {
        if !self.kind.eq_ignore_ascii_case("kafka") {
            problems.push(problem(
                origin,
                &join(base, "type"),
                format!("invalid value `{}`, expected `kafka`", self.kind),
            ));
            return None;
        }
        if self.load_balancer.is_some() {
            ignored.push(Ignored {
                file: origin.to_string(),
                path: join(base, "loadBalancer"),
                reason: "requests are served by the first endpoint of the first group".into(),
            });
        }
        let shared: SharedConfiguration =
            parse_strict(&self.shared_configuration, &join(base, "sharedConfiguration"), origin, problems)?;
        let mut endpoints = Vec::new();
        for (index, endpoint) in self.endpoints.into_iter().enumerate() {
            let path = format!("{base}.endpoints[{index}]");
            if !endpoint.kind.eq_ignore_ascii_case("kafka") {
                problems.push(problem(
                    origin,
                    &join(&path, "type"),
                    format!("invalid value `{}`, expected `kafka`", endpoint.kind),
                ));
                continue;
            }
            if endpoint.tenants.as_ref().is_some_and(|tenants| !tenants.is_empty()) {
                ignored.push(Ignored {
                    file: origin.to_string(),
                    path: join(&path, "tenants"),
                    reason: "tenants are not implemented; the endpoint is always deployed".into(),
                });
            }
            let configuration: Option<KafkaEndpointConfiguration> =
                parse_strict(&endpoint.configuration, &join(&path, "configuration"), origin, problems);
            // An explicit `inheritConfiguration: true`, or no override at all, means the group's.
            let override_path = join(&path, "sharedConfigurationOverride");
            let inherits = match (endpoint.inherit_configuration, &endpoint.shared_configuration_override) {
                (Some(true), Some(_)) => {
                    ignored.push(Ignored {
                        file: origin.to_string(),
                        path: override_path.clone(),
                        reason: "inheritConfiguration is true: the group's sharedConfiguration applies".into(),
                    });
                    true
                }
                (Some(true), None) | (None, None) => true,
                (_, Some(_)) => false,
                (Some(false), None) => {
                    problems.push(problem(
                        origin,
                        &override_path,
                        "required when inheritConfiguration is false".into(),
                    ));
                    continue;
                }
            };
            let shared_configuration = match &endpoint.shared_configuration_override {
                Some(override_value) if !inherits => parse_strict(override_value, &override_path, origin, problems),
                _ => Some(shared.clone()),
            };
            if let (Some(configuration), Some(shared_configuration)) = (configuration, shared_configuration) {
                endpoints.push(Endpoint {
                    name: endpoint.name,
                    weight: endpoint.weight,
                    configuration,
                    shared_configuration,
                    inherits_configuration: inherits,
                });
            }
        }
        Some(EndpointGroup { name: self.name, shared_configuration: shared, endpoints })
    }
}
