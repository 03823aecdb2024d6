//! `pulumi config`, `config get|set|set-all|rm|rm-all`, with `--path`, `--secret` and stdin values.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};

use serde_json::{Value, json};

use crate::context::Ctx;
use crate::error::CliError;
use crate::output::print_json;
use crate::project::{Project, qualify_key};
use crate::secret::{self, Secrets};
use crate::settings::ConfigEntry;
use crate::store::{Backend, StackState};

/// `configValueJSON` of `pkg/cmd/pulumi/config`: the value is omitted for a secret unless shown.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ConfigValueJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<String>,
    #[serde(rename = "objectValue", skip_serializing_if = "Option::is_none")]
    pub(crate) object_value: Option<serde_json::Value>,
    pub(crate) secret: bool,
}

/// Dispatches the `config` commands.
pub(crate) fn run(ctx: &Ctx) -> Result<(), CliError> {
    let project = ctx.project()?;
    let backend = ctx.backend()?;
    let stack = ctx.stack_name(&project, &backend)?;
    let mut state = backend.load(&project.name, &stack)?;
    let decrypts = match ctx.command.as_str() {
        "config" => ctx.args.bool("show-secrets"),
        "config set" => ctx.args.bool("secret"),
        "config set-all" => !ctx.args.values("secret").is_empty(),
        _ => false,
    };
    if decrypts {
        ctx.check_passphrase(&backend, &state)?;
    }
    match ctx.command.as_str() {
        "config" => {
            if let Some(extra) = ctx.arg(0) {
                return Err(CliError::usage(format!(
                    "unknown command \"{extra}\" for \"pulumi config\""
                )));
            }
            list(ctx, &project, &state)
        }
        "config get" => get(ctx, &project, &backend, &state),
        "config set" => {
            set(ctx, &project, &mut state)?;
            backend.save(&state)
        }
        "config set-all" => {
            set_all(ctx, &project, &mut state)?;
            backend.save(&state)
        }
        "config rm" | "config rm-all" => {
            let keys: Vec<String> = (0..ctx.arg_count())
                .filter_map(|i| ctx.arg(i).map(str::to_owned))
                .collect();
            if keys.is_empty() || (ctx.command == "config rm" && keys.len() != 1) {
                return Err(CliError::usage(format!(
                    "`pulumi {}` requires {} key argument",
                    ctx.command,
                    if ctx.command == "config rm" {
                        "exactly one"
                    } else {
                        "at least one"
                    }
                )));
            }
            for k in keys {
                remove(ctx, &project, &mut state, &k)?;
            }
            backend.save(&state)
        }
        other => Err(CliError::usage(format!("unknown command \"{other}\""))),
    }
}

/// A parsed `--path` path segment.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Parses `a.b[0]["c.d"]` into segments.
fn parse_path(path: &str) -> Result<Vec<Seg>, CliError> {
    let bad = || {
        CliError::new(format!(
            "invalid configuration key: could not parse {path} as a configuration key path"
        ))
    };
    let chars: Vec<char> = path.chars().collect();
    let mut segs = Vec::new();
    let mut i = 0;
    let mut cur = String::new();
    while i < chars.len() {
        match chars[i] {
            '.' => {
                if !cur.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut cur)));
                } else if segs.is_empty() {
                    return Err(bad());
                }
                i += 1;
            }
            '[' => {
                if !cur.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut cur)));
                }
                let close = chars[i..].iter().position(|c| *c == ']').ok_or_else(bad)? + i;
                let inner: String = chars[i + 1..close].iter().collect();
                if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    segs.push(Seg::Key(q.to_owned()));
                } else {
                    segs.push(Seg::Index(inner.parse().map_err(|_| bad())?));
                }
                i = close + 1;
            }
            c => {
                cur.push(c);
                i += 1;
            }
        }
    }
    if !cur.is_empty() {
        segs.push(Seg::Key(cur));
    }
    match segs.first() {
        Some(Seg::Key(_)) => Ok(segs),
        _ => Err(bad()),
    }
}

/// Qualifies and validates a top-level config key like Pulumi's `ParseConfigKey`.
fn config_key(project: &Project, raw: &str) -> Result<String, CliError> {
    let parts: Vec<&str> = raw.split(':').collect();
    let key = match parts.as_slice() {
        [name] => format!("{}:{name}", project.name),
        [ns, name] if !ns.is_empty() && !name.is_empty() => raw.to_owned(),
        [ns, "config", name] if !ns.is_empty() && !name.is_empty() => format!("{ns}:{name}"),
        _ => {
            return Err(CliError::new(format!(
                "invalid configuration key: could not parse {raw} as a configuration key (configuration keys should be of the form `<namespace>:<name>`)"
            )));
        }
    };
    if key.ends_with(':') || key.starts_with(':') {
        return Err(CliError::new(format!("invalid configuration key: {raw}")));
    }
    Ok(key)
}

/// Splits a possibly `--path` key into the top-level key and the rest of the path.
fn split_key(ctx: &Ctx, project: &Project, raw: &str) -> Result<(String, Vec<Seg>), CliError> {
    if !ctx.args.bool("path") {
        return Ok((config_key(project, raw)?, Vec::new()));
    }
    let segs = parse_path(raw)?;
    let Some(Seg::Key(first)) = segs.first() else {
        return Err(CliError::new(format!("invalid configuration key: {raw}")));
    };
    Ok((config_key(project, first)?, segs[1..].to_vec()))
}

/// The key as `pulumi config` shows it: without the project namespace.
fn pretty_key(project: &Project, key: &str) -> String {
    key.strip_prefix(&format!("{}:", project.name))
        .unwrap_or(key)
        .to_owned()
}

/// Config as the program sees it: project defaults overlaid by the stack's values.
pub(crate) fn effective_config(
    project: &Project,
    state: &StackState,
) -> BTreeMap<String, ConfigEntry> {
    let mut cfg = project.config_defaults();
    for (k, v) in &state.config {
        cfg.insert(k.clone(), v.clone());
    }
    cfg
}

fn is_secret(entry: &ConfigEntry) -> bool {
    entry.secret || secret::contains_secret(&entry.value)
}

/// The display string of an entry and, for objects, the object value.
fn shown(entry: &ConfigEntry, mode: Secrets) -> (String, Option<Value>) {
    match secret::render(&entry.value, mode) {
        Value::String(s) => (s, None),
        obj @ (Value::Object(_) | Value::Array(_)) => (obj.to_string(), Some(obj)),
        other => (other.to_string(), None),
    }
}

fn list(ctx: &Ctx, project: &Project, state: &StackState) -> Result<(), CliError> {
    let show = ctx.args.bool("show-secrets");
    let cfg = effective_config(project, state);
    let mode = if show {
        Secrets::Reveal
    } else {
        Secrets::Blind
    };
    if ctx.args.bool("json") {
        let mut doc: BTreeMap<String, ConfigValueJson> = BTreeMap::new();
        for (k, entry) in &cfg {
            let secret = is_secret(entry);
            let (value, object_value) = if !secret || show {
                let (value, object) = shown(entry, mode);
                (Some(value), object)
            } else {
                (None, None)
            };
            doc.insert(
                k.clone(),
                ConfigValueJson {
                    value,
                    object_value,
                    secret,
                },
            );
        }
        print_json(ctx, &doc);
    } else {
        let rows: Vec<(String, String)> = cfg
            .iter()
            .map(|(k, e)| (pretty_key(project, k), shown(e, mode).0))
            .collect();
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max(3);
        println!("{:<width$}  VALUE", "KEY");
        for (k, v) in rows {
            println!("{k:<width$}  {v}");
        }
    }
    Ok(())
}

fn navigate<'a>(mut v: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    for s in segs {
        v = match s {
            Seg::Key(k) => v.get(k)?,
            Seg::Index(i) => v.get(*i)?,
        };
    }
    Some(v)
}

fn get(
    ctx: &Ctx,
    project: &Project,
    backend: &Backend,
    state: &StackState,
) -> Result<(), CliError> {
    let Some(raw) = ctx.arg(0) else {
        return Err(CliError::usage(
            "`pulumi config get` requires the key argument",
        ));
    };
    let (key, segs) = split_key(ctx, project, raw)?;
    let cfg = effective_config(project, state);
    let not_found = || {
        CliError::new(format!(
            "configuration key '{}' not found for stack '{}'",
            pretty_key(
                project,
                &if segs.is_empty() {
                    key.clone()
                } else {
                    format!("{key}.{raw}")
                }
            ),
            state.name
        ))
    };
    let entry = cfg.get(&key).ok_or_else(not_found)?;
    let (value, secret) = if segs.is_empty() {
        (entry.value.clone(), is_secret(entry))
    } else {
        let leaf = navigate(&entry.value, &segs).ok_or_else(not_found)?;
        (leaf.clone(), secret::contains_secret(leaf))
    };
    if secret {
        ctx.check_passphrase(backend, state)?;
    }
    let revealed = secret::render(&value, Secrets::Reveal);
    let (text, object) = match &revealed {
        Value::String(s) => (s.clone(), None),
        o @ (Value::Object(_) | Value::Array(_)) => (o.to_string(), Some(o.clone())),
        other => (other.to_string(), None),
    };
    if ctx.args.bool("json") {
        print_json(
            ctx,
            &ConfigValueJson {
                value: Some(text),
                object_value: object,
                secret,
            },
        );
    } else {
        println!("{text}");
    }
    Ok(())
}

/// Heuristic version of Pulumi's `looksLikeSecret`: a secret-sounding key with a high-entropy value.
fn looks_like_secret(key: &str, value: &str) -> bool {
    let name = key.rsplit(':').next().unwrap_or(key).to_ascii_lowercase();
    let secretish = [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "accesskey",
        "privatekey",
    ]
    .iter()
    .any(|w| name.contains(w));
    let classes = [
        value.chars().any(|c| c.is_ascii_lowercase()),
        value.chars().any(|c| c.is_ascii_uppercase()),
        value.chars().any(|c| c.is_ascii_digit()),
        value.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    secretish && value.len() >= 16 && classes >= 3
}

fn read_value(ctx: &Ctx) -> Result<String, CliError> {
    if let Some(v) = ctx.arg(1) {
        return Ok(v.to_owned());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(CliError::new(
            "config value must be specified in non-interactive mode",
        ));
    }
    let mut buf = String::new();
    stdin
        .lock()
        .read_to_string(&mut buf)
        .map_err(|e| CliError::new(format!("reading the config value from stdin: {e}")))?;
    if ctx.args.bool("raw") {
        return Ok(buf);
    }
    // Like pulumi on Linux: one trailing "\n" goes, unless --raw.
    let trimmed = buf.strip_suffix('\n').unwrap_or(&buf);
    Ok(trimmed.to_owned())
}

/// Converts a `--path` leaf like Pulumi: `true`/`false` become booleans, integers become numbers.
fn typed_leaf(value: &str) -> Value {
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        v => match v.parse::<i64>() {
            Ok(n) if !v.starts_with('+') && (v == "0" || !v.starts_with('0')) => json!(n),
            _ => Value::String(v.to_owned()),
        },
    }
}

fn set_path(root: &mut Value, segs: &[Seg], leaf: Value) -> Result<(), CliError> {
    let Some((first, rest)) = segs.split_first() else {
        *root = leaf;
        return Ok(());
    };
    match first {
        Seg::Key(k) => {
            if !root.is_object() {
                *root = Value::Object(serde_json::Map::new());
            }
            let obj = root
                .as_object_mut()
                .ok_or_else(|| CliError::new("could not set config: not a map"))?;
            let child = obj.entry(k.clone()).or_insert(Value::Null);
            set_path(child, rest, leaf)
        }
        Seg::Index(i) => {
            if !root.is_array() {
                *root = Value::Array(Vec::new());
            }
            let arr = root
                .as_array_mut()
                .ok_or_else(|| CliError::new("could not set config: not a list"))?;
            if *i > arr.len() {
                return Err(CliError::new(format!(
                    "could not set config: an array index of {i} is out of range (the list has {} elements)",
                    arr.len()
                )));
            }
            if *i == arr.len() {
                arr.push(Value::Null);
            }
            set_path(&mut arr[*i], rest, leaf)
        }
    }
}

fn set_one(
    ctx: &Ctx,
    project: &Project,
    state: &mut StackState,
    raw_key: &str,
    value: String,
    secret: bool,
) -> Result<(), CliError> {
    let (key, segs) = split_key(ctx, project, raw_key)?;
    if !secret && !ctx.args.bool("plaintext") && looks_like_secret(&key, &value) {
        return Err(CliError::new(format!(
            "config value for '{key}' looks like a secret; rerun with --secret to encrypt it, or --plaintext if you meant to store in plaintext"
        )));
    }
    if segs.is_empty() {
        let v = Value::String(value);
        state.config.insert(
            key,
            ConfigEntry {
                value: if secret { secret::seal(&v) } else { v },
                secret,
            },
        );
        return Ok(());
    }
    let leaf = if secret {
        secret::seal(&Value::String(value))
    } else {
        typed_leaf(&value)
    };
    let entry = state.config.entry(key).or_insert(ConfigEntry {
        value: Value::Null,
        secret: false,
    });
    if entry.secret {
        // A path below a plain secret string replaces it, as Pulumi does.
        entry.secret = false;
        entry.value = Value::Null;
    }
    set_path(&mut entry.value, &segs, leaf)
}

fn set(ctx: &Ctx, project: &Project, state: &mut StackState) -> Result<(), CliError> {
    let Some(raw) = ctx.arg(0) else {
        return Err(CliError::usage(
            "`pulumi config set` requires the key argument",
        ));
    };
    if ctx.arg_count() > 2 {
        return Err(CliError::usage(format!(
            "accepts between 1 and 2 arg(s), received {}",
            ctx.arg_count()
        )));
    }
    let secret = ctx.args.bool("secret");
    if secret && ctx.args.bool("plaintext") {
        return Err(CliError::usage(
            "if any flags in the group [secret plaintext type] are set none of the others can be; [plaintext secret] were all set",
        ));
    }
    let value = read_value(ctx)?;
    set_one(ctx, project, state, raw, value, secret)
}

fn set_all(ctx: &Ctx, project: &Project, state: &mut StackState) -> Result<(), CliError> {
    for (flag, secret) in [("plaintext", false), ("secret", true)] {
        for pair in ctx.args.values(flag) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(CliError::new(format!(
                    "could not parse {pair} as a configuration key/value pair (expected `key=value`)"
                )));
            };
            set_one(ctx, project, state, k, v.to_owned(), secret)?;
        }
    }
    Ok(())
}

fn remove(ctx: &Ctx, project: &Project, state: &mut StackState, raw: &str) -> Result<(), CliError> {
    let (key, segs) = split_key(ctx, project, raw)?;
    if segs.is_empty() {
        state.config.remove(&key);
        return Ok(());
    }
    let Some(entry) = state.config.get_mut(&key) else {
        return Ok(());
    };
    let (last, parents) = segs
        .split_last()
        .ok_or_else(|| CliError::new("empty path"))?;
    let mut node = &mut entry.value;
    for s in parents {
        let next = match s {
            Seg::Key(k) => node.get_mut(k),
            Seg::Index(i) => node.get_mut(*i),
        };
        match next {
            Some(n) => node = n,
            None => return Ok(()),
        }
    }
    match (last, node) {
        (Seg::Key(k), Value::Object(o)) => {
            o.remove(k);
        }
        (Seg::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
    Ok(())
}

/// Reads a `--config-file` (YAML like `Pulumi.<stack>.yaml`, or JSON) into config entries.
pub(crate) fn load_config_file(
    project: &Project,
    path: &std::path::Path,
) -> Result<BTreeMap<String, ConfigEntry>, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::io("reading config file", path, &e))?;
    let doc = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str::<Value>(&text)
            .map_err(|e| CliError::new(format!("could not parse {}: {e}", path.display())))?
    } else {
        crate::yaml::parse(&text)
            .map_err(|e| CliError::new(format!("could not parse {}: {e}", path.display())))?
            .to_json()
    };
    let mut out = BTreeMap::new();
    if let Some(Value::Object(cfg)) = doc.get("config") {
        for (k, v) in cfg {
            let key = qualify_key(&project.name, k);
            let entry = match v {
                Value::Object(o) if o.len() == 1 && o.contains_key("secure") => ConfigEntry {
                    value: secret::seal(&o["secure"]),
                    secret: true,
                },
                Value::String(s) => ConfigEntry {
                    value: Value::String(s.clone()),
                    secret: false,
                },
                Value::Object(_) | Value::Array(_) => ConfigEntry {
                    value: v.clone(),
                    secret: false,
                },
                other => ConfigEntry {
                    value: Value::String(other.to_string()),
                    secret: false,
                },
            };
            out.insert(key, entry);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_and_set_nested_values() {
        assert_eq!(
            parse_path(r#"outer.inner[0]["a.b"]"#).unwrap(),
            vec![
                Seg::Key("outer".into()),
                Seg::Key("inner".into()),
                Seg::Index(0),
                Seg::Key("a.b".into())
            ]
        );
        assert!(parse_path("[0]").is_err());
        let mut v = Value::Null;
        set_path(
            &mut v,
            &[Seg::Key("a".into()), Seg::Index(0)],
            typed_leaf("true"),
        )
        .unwrap();
        set_path(&mut v, &[Seg::Key("b".into())], typed_leaf("42")).unwrap();
        set_path(&mut v, &[Seg::Key("c".into())], typed_leaf("007")).unwrap();
        assert_eq!(v, json!({"a": [true], "b": 42, "c": "007"}));
        assert!(set_path(&mut v, &[Seg::Key("a".into()), Seg::Index(5)], json!(1)).is_err());
    }

    #[test]
    fn secret_looking_values_are_detected() {
        assert!(looks_like_secret("demo:dbPassword", "Xy7#kLm2$pQr9!zT"));
        assert!(!looks_like_secret("demo:dbPassword", "short"));
        assert!(!looks_like_secret("demo:region", "Xy7#kLm2$pQr9!zT"));
    }
}
