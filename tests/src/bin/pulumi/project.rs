//! The project (`Pulumi.yaml`, `Pulumi.yml` or `Pulumi.json`) and the fake program it describes.
//!
//! The program uses the shape of Pulumi YAML programs (`runtime: yaml`): `resources:` with `type`,
//! `properties` and `options`, `variables:`, `outputs:`, `config:` declarations, `${...}` interpolation and
//! `fn::secret`. The fake evaluates it itself: each custom resource "creates" instantly with its
//! properties as outputs plus a generated `id`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::CliError;
use crate::secret::{self, seal};
use crate::settings::ConfigEntry;
use crate::store;
use crate::yaml::{self, Yaml};

/// The project file found for a working directory.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// The project name.
    pub(crate) name: String,
    /// The directory holding the project file.
    pub(crate) dir: PathBuf,
    /// The parsed project file.
    pub(crate) doc: Yaml,
}

impl Project {
    /// Finds the project file in `cwd` or its parents, as Pulumi does.
    pub(crate) fn find(cwd: &Path) -> Result<Project, CliError> {
        let mut dir = Some(cwd);
        while let Some(d) = dir {
            for file in ["Pulumi.yaml", "Pulumi.yml", "Pulumi.json"] {
                let path = d.join(file);
                if path.is_file() {
                    return Project::load(&path);
                }
            }
            dir = d.parent();
        }
        Err(CliError::new(format!(
            "no Pulumi.yaml project file found (searching upwards from {}). If you have not created a project yet, use `pulumi new` to do so: no project file found",
            cwd.display()
        )))
    }

    fn load(path: &Path) -> Result<Project, CliError> {
        let text = fs::read_to_string(path).map_err(|e| CliError::io("reading", path, &e))?;
        let doc = if path.extension().is_some_and(|e| e == "json") {
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                CliError::new(format!(
                    "could not load current project: {}: {e}",
                    path.display()
                ))
            })?;
            Yaml::from_json(&v)
        } else {
            yaml::parse(&text).map_err(|e| {
                CliError::new(format!(
                    "could not load current project: {}: {e}",
                    path.display()
                ))
            })?
        };
        let Some(name) = doc.get("name").and_then(Yaml::as_str).map(str::to_owned) else {
            return Err(CliError::new(format!(
                "could not load current project: {}: project is missing a 'name' attribute",
                path.display()
            )));
        };
        if doc.get("runtime").is_none() {
            return Err(CliError::new(format!(
                "could not load current project: {}: project is missing a 'runtime' attribute",
                path.display()
            )));
        }
        Ok(Project {
            name,
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            doc,
        })
    }

    /// Project-level config defaults (`config: {key: {default: v}}` or `config: {key: v}`).
    /// The keys of the project's `config:` block, as written.
    pub(crate) fn declared_config_keys(&self) -> Vec<String> {
        match self.doc.get("config") {
            Some(Yaml::Map(entries)) => entries.iter().map(|(k, _)| k.clone()).collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn config_defaults(&self) -> BTreeMap<String, ConfigEntry> {
        let mut out = BTreeMap::new();
        if let Some(Yaml::Map(entries)) = self.doc.get("config") {
            for (k, v) in entries {
                let key = qualify_key(&self.name, k);
                let value = match v {
                    Yaml::Map(_) => match v.get("default").or_else(|| v.get("value")) {
                        Some(d) => d.to_json(),
                        None => continue,
                    },
                    other => other.to_json(),
                };
                let value = match value {
                    Value::String(s) => Value::String(s),
                    Value::Array(_) | Value::Object(_) => value,
                    other => Value::String(other.to_string()),
                };
                out.insert(
                    key,
                    ConfigEntry {
                        value,
                        secret: false,
                    },
                );
            }
        }
        out
    }
}

/// Qualifies a config key with the project namespace when it has none.
pub(crate) fn qualify_key(project: &str, key: &str) -> String {
    if key.contains(':') {
        key.to_owned()
    } else {
        format!("{project}:{key}")
    }
}

/// A resource declared by the program, after evaluation.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredResource {
    /// The logical name.
    pub(crate) name: String,
    /// The type token.
    pub(crate) ty: String,
    /// The URN.
    pub(crate) urn: String,
    /// The parent URN.
    pub(crate) parent: String,
    /// Evaluated inputs; secret values are sealed.
    pub(crate) inputs: serde_json::Map<String, Value>,
    /// Input keys that force replacement when they change.
    pub(crate) replace_on_changes: Vec<String>,
    /// Whether deletion is refused.
    pub(crate) protect: bool,
    /// Whether the resource is a component (not custom).
    pub(crate) component: bool,
    /// URNs this resource depends on.
    pub(crate) dependencies: Vec<String>,
    /// The ID the program saw for `${name.id}` (empty for components).
    pub(crate) resolved_id: String,
}

/// The evaluated program: resources in dependency order and stack outputs.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    /// The stack resource URN.
    pub(crate) stack_urn: String,
    /// Declared resources in the order the engine registers them.
    pub(crate) resources: Vec<DeclaredResource>,
    /// Stack outputs; secret values are sealed.
    pub(crate) outputs: serde_json::Map<String, Value>,
    /// The outputs that could not be evaluated, with the error: as in Pulumi YAML, the resources are
    /// still registered and the update then fails.
    pub(crate) output_errors: Vec<(String, String)>,
}

/// Builds a URN the way Pulumi does: the parent's type chain, excluding the stack, joined with `$`.
pub(crate) fn urn(stack: &str, project: &str, type_chain: &str, name: &str) -> String {
    format!("urn:pulumi:{stack}::{project}::{type_chain}::{name}")
}

/// The deterministic fake ID of a custom resource.
pub(crate) fn fake_id(name: &str, urn: &str, generation: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in urn.bytes().chain(generation.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{name}-{:07x}", h & 0x0fff_ffff)
}

/// Evaluates the program against a stack's config and the IDs already in state.
///
/// `existing_ids` maps URNs to the IDs in state, so that `${res.id}` stays stable across updates; a
/// resource being replaced gets `generation` 1 so its new ID differs.
pub(crate) fn evaluate(
    project: &Project,
    stack: &str,
    config: &BTreeMap<String, ConfigEntry>,
    existing_ids: &BTreeMap<String, String>,
    replaced: &[String],
) -> Result<Program, CliError> {
    let stack_type = "pulumi:pulumi:Stack";
    let stack_urn = urn(
        stack,
        &project.name,
        stack_type,
        &format!("{}-{stack}", project.name),
    );
    let mut scope = Scope {
        project: &project.name,
        stack,
        config,
        values: BTreeMap::new(),
    };

    if let Some(Yaml::Map(vars)) = project.doc.get("variables") {
        for (k, v) in vars {
            let value = scope.eval(&v.to_json())?;
            scope.values.insert(k.clone(), value);
        }
    }

    let mut declared: Vec<(String, Yaml)> = match project.doc.get("resources") {
        Some(Yaml::Map(entries)) => entries.clone(),
        Some(Yaml::Null) | None => Vec::new(),
        Some(_) => return Err(program_error("'resources' must be a mapping")),
    };
    let order = topo_order(&declared)?;
    let mut resources: Vec<DeclaredResource> = Vec::new();
    let mut types: BTreeMap<String, (String, String)> = BTreeMap::new(); // name -> (urn, type chain)
    for idx in order {
        let (name, body) = std::mem::replace(&mut declared[idx], (String::new(), Yaml::Null));
        let Some(ty) = body.get("type").and_then(Yaml::as_str).map(str::to_owned) else {
            return Err(program_error(&format!(
                "resource '{name}' is missing a 'type'"
            )));
        };
        let options = body.get("options");
        let mut dependencies = Vec::new();
        let (parent_urn, chain) = match options.and_then(|o| o.get("parent")).and_then(Yaml::as_str)
        {
            Some(p) => {
                let pname = strip_ref(p).unwrap_or(p);
                let Some((purn, pchain)) = types.get(pname) else {
                    return Err(program_error(&format!(
                        "resource '{name}' has unknown parent '{p}'"
                    )));
                };
                (purn.clone(), format!("{pchain}${ty}"))
            }
            None => (stack_urn.clone(), ty.clone()),
        };
        let urn = urn(stack, &project.name, &chain, &name);
        let props = body
            .get("properties")
            .map(Yaml::to_json)
            .unwrap_or(Value::Null);
        let refs = references(&props);
        for r in &refs {
            if let Some((u, _)) = types.get(r) {
                if !dependencies.contains(u) {
                    dependencies.push(u.clone());
                }
            }
        }
        if let Some(Yaml::Seq(deps)) = options.and_then(|o| o.get("dependsOn")) {
            for d in deps {
                if let Some((u, _)) = d
                    .as_str()
                    .map(|s| strip_ref(s).unwrap_or(s))
                    .and_then(|s| types.get(s))
                {
                    if !dependencies.contains(u) {
                        dependencies.push(u.clone());
                    }
                }
            }
        }
        let inputs = match scope.eval(&props)? {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            _ => {
                return Err(program_error(&format!(
                    "resource '{name}' properties must be a mapping"
                )));
            }
        };
        let component = options
            .and_then(|o| o.get("component"))
            .is_some_and(|c| *c == Yaml::Bool(true));
        let generation = u64::from(replaced.contains(&urn));
        let id = if component {
            String::new()
        } else if generation == 0 {
            existing_ids
                .get(&urn)
                .cloned()
                .unwrap_or_else(|| fake_id(&name, &urn, 0))
        } else {
            let old = existing_ids.get(&urn).cloned().unwrap_or_default();
            let mut g = 1;
            loop {
                let candidate = fake_id(&name, &urn, g);
                if candidate != old {
                    break candidate;
                }
                g += 1;
            }
        };
        let mut outputs = inputs.clone();
        if !component {
            outputs.insert("id".to_owned(), Value::String(id.clone()));
        }
        outputs.insert("urn".to_owned(), Value::String(urn.clone()));
        scope.values.insert(name.clone(), Value::Object(outputs));
        types.insert(name.clone(), (urn.clone(), chain));
        let replace_on_changes = match options.and_then(|o| o.get("replaceOnChanges")) {
            Some(Yaml::Seq(items)) => items
                .iter()
                .filter_map(Yaml::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let protect = options
            .and_then(|o| o.get("protect"))
            .is_some_and(|p| *p == Yaml::Bool(true));
        resources.push(DeclaredResource {
            name,
            ty,
            urn,
            parent: parent_urn,
            inputs,
            replace_on_changes,
            protect,
            component,
            dependencies,
            resolved_id: id,
        });
    }

    let mut outputs = serde_json::Map::new();
    let mut output_errors = Vec::new();
    if let Some(Yaml::Map(entries)) = project.doc.get("outputs") {
        for (name, value) in entries {
            match scope.eval(&value.to_json()) {
                Ok(v) => {
                    outputs.insert(name.clone(), v);
                }
                Err(e) => output_errors.push((name.clone(), e.message)),
            }
        }
    }
    Ok(Program {
        stack_urn,
        resources,
        outputs,
        output_errors,
    })
}

fn program_error(msg: &str) -> CliError {
    CliError::program(msg.to_owned())
}

/// `${name}` -> `name`.
fn strip_ref(s: &str) -> Option<&str> {
    s.strip_prefix("${").and_then(|s| s.strip_suffix('}'))
}

/// The resource names a value refers to through `${name...}`.
fn references(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_refs(v, &mut out);
    out
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else { break };
                let expr = &after[..end];
                let head = expr.split(['.', '[']).next().unwrap_or(expr);
                out.push(head.to_owned());
                rest = &after[end + 1..];
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// Orders resources so that each comes after what it references, keeping declaration order otherwise.
fn topo_order(declared: &[(String, Yaml)]) -> Result<Vec<usize>, CliError> {
    let names: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
    let deps: Vec<Vec<usize>> = declared
        .iter()
        .map(|(_, body)| {
            let mut refs = references(
                &body
                    .get("properties")
                    .map(Yaml::to_json)
                    .unwrap_or(Value::Null),
            );
            if let Some(opts) = body.get("options") {
                if let Some(p) = opts.get("parent").and_then(Yaml::as_str) {
                    refs.push(strip_ref(p).unwrap_or(p).to_owned());
                }
                if let Some(Yaml::Seq(ds)) = opts.get("dependsOn") {
                    for d in ds.iter().filter_map(Yaml::as_str) {
                        refs.push(strip_ref(d).unwrap_or(d).to_owned());
                    }
                }
            }
            refs.iter()
                .filter_map(|r| names.iter().position(|n| n == r))
                .collect()
        })
        .collect();
    let mut done = vec![false; declared.len()];
    let mut order = Vec::new();
    while order.len() < declared.len() {
        let next =
            (0..declared.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d] || d == i));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => {
                let stuck: Vec<&str> = (0..declared.len())
                    .filter(|&i| !done[i])
                    .map(|i| names[i])
                    .collect();
                return Err(program_error(&format!(
                    "circular dependency between resources {}",
                    stuck.join(", ")
                )));
            }
        }
    }
    Ok(order)
}

struct Scope<'a> {
    project: &'a str,
    stack: &'a str,
    config: &'a BTreeMap<String, ConfigEntry>,
    values: BTreeMap<String, Value>,
}

impl Scope<'_> {
    fn eval(&self, v: &Value) -> Result<Value, CliError> {
        match v {
            Value::String(s) => self.interpolate(s),
            Value::Array(a) => a
                .iter()
                .map(|x| self.eval(x))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(o) => {
                if o.len() == 1 {
                    if let Some(inner) = o.get("fn::secret") {
                        let value = self.eval(inner)?;
                        return Ok(if secret::is_sealed(&value) {
                            value
                        } else {
                            seal(&value)
                        });
                    }
                }
                let mut out = serde_json::Map::new();
                for (k, x) in o {
                    out.insert(k.clone(), self.eval(x)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn interpolate(&self, s: &str) -> Result<Value, CliError> {
        // A string that is exactly one reference keeps the referenced value's type (and secrecy).
        if let Some(expr) = strip_ref(s) {
            if !expr.contains("${") && !expr.contains('}') {
                return self.lookup(expr);
            }
        }
        if !s.contains("${") {
            return Ok(Value::String(s.to_owned()));
        }
        let mut out = String::new();
        let mut secret = false;
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let mut value = self.lookup(&after[..end])?;
            if secret::is_sealed(&value) {
                secret = true;
                value = secret::unseal(&value).unwrap_or(Value::Null);
            }
            match value {
                Value::String(x) => out.push_str(&x),
                other => out.push_str(&other.to_string()),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        let v = Value::String(out);
        Ok(if secret { seal(&v) } else { v })
    }

    fn lookup(&self, expr: &str) -> Result<Value, CliError> {
        match expr {
            "pulumi.stack" => return Ok(Value::String(self.stack.to_owned())),
            "pulumi.project" => return Ok(Value::String(self.project.to_owned())),
            "pulumi.organization" => return Ok(Value::String(store::organization())),
            _ => {}
        }
        let mut parts = expr.split('.');
        let head = parts.next().unwrap_or(expr);
        let mut current = if let Some(v) = self.values.get(head) {
            v.clone()
        } else if let Some(entry) = self
            .config
            .get(&qualify_key(self.project, head))
            .or_else(|| self.config.get(head))
        {
            if entry.secret {
                seal(&secret::unseal(&entry.value).unwrap_or_else(|| entry.value.clone()))
            } else {
                entry.value.clone()
            }
        } else {
            return Err(program_error(&format!(
                "resource or variable named \"{head}\" could not be found (in \"${{{expr}}}\")"
            )));
        };
        for part in parts {
            let opened = if secret::is_sealed(&current) {
                secret::unseal(&current).unwrap_or(Value::Null)
            } else {
                current.clone()
            };
            let was_secret = secret::is_sealed(&current);
            let next = opened.get(part).cloned().ok_or_else(|| {
                program_error(&format!("\"${{{expr}}}\": no property \"{part}\""))
            })?;
            current = if was_secret && !secret::is_sealed(&next) {
                seal(&next)
            } else {
                next
            };
        }
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(src: &str) -> Project {
        let doc = yaml::parse(src).unwrap();
        Project {
            name: doc.get("name").unwrap().as_str().unwrap().to_owned(),
            dir: PathBuf::from("/tmp"),
            doc,
        }
    }

    #[test]
    fn evaluates_references_secrets_and_parents_in_dependency_order() {
        let p = project(
            r#"
name: demo
runtime: yaml
resources:
  object:
    type: aws:s3:BucketObject
    properties:
      bucket: ${bucket.id}
      key: "${pulumi.stack}/index.html"
    options:
      parent: ${bucket}
  bucket:
    type: aws:s3:Bucket
    properties:
      acl: private
outputs:
  bucketId: ${bucket.id}
  password: ${dbPassword}
  greeting: "hello ${who}"
"#,
        );
        let mut config = BTreeMap::new();
        config.insert(
            "demo:dbPassword".to_owned(),
            ConfigEntry {
                value: seal(&Value::String("hunter2".into())),
                secret: true,
            },
        );
        config.insert(
            "demo:who".to_owned(),
            ConfigEntry {
                value: "world".into(),
                secret: false,
            },
        );
        let prog = evaluate(&p, "dev", &config, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(
            prog.stack_urn,
            "urn:pulumi:dev::demo::pulumi:pulumi:Stack::demo-dev"
        );
        assert_eq!(prog.resources[0].name, "bucket");
        let object = &prog.resources[1];
        assert_eq!(
            object.urn,
            "urn:pulumi:dev::demo::aws:s3:Bucket$aws:s3:BucketObject::object"
        );
        assert_eq!(object.parent, prog.resources[0].urn);
        assert_eq!(object.dependencies, vec![prog.resources[0].urn.clone()]);
        let id = prog.outputs["bucketId"].as_str().unwrap();
        assert!(id.starts_with("bucket-"));
        assert_eq!(object.inputs["bucket"], Value::String(id.to_owned()));
        assert_eq!(object.inputs["key"], Value::String("dev/index.html".into()));
        assert!(secret::is_sealed(&prog.outputs["password"]));
        assert_eq!(
            prog.outputs["greeting"],
            Value::String("hello world".into())
        );
    }

    #[test]
    fn unresolved_references_and_cycles_are_program_errors() {
        // An output that cannot be evaluated leaves the resources registered, as in Pulumi YAML.
        let p = project("name: demo\nruntime: yaml\noutputs:\n  x: ${nothing}\n  y: ok\n");
        let prog = evaluate(&p, "dev", &BTreeMap::new(), &BTreeMap::new(), &[]).unwrap();
        assert_eq!(prog.output_errors.len(), 1);
        assert_eq!(prog.output_errors[0].0, "x");
        assert!(
            prog.output_errors[0]
                .1
                .contains("\"nothing\" could not be found")
        );
        assert_eq!(prog.outputs["y"], "ok");
        let p = project(
            "name: demo\nruntime: yaml\nresources:\n  a:\n    type: t:m:A\n    properties:\n      x: ${b.id}\n  b:\n    type: t:m:B\n    properties:\n      x: ${a.id}\n",
        );
        let err = evaluate(&p, "dev", &BTreeMap::new(), &BTreeMap::new(), &[]).unwrap_err();
        assert!(err.message.contains("circular"));
    }
}
