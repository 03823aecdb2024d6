//! YAML documents (`Pulumi.yaml` programs, `Pulumi.<stack>.yaml` and `--config-file` files), read and
//! written with `yaml_serde`, the YAML Organization's maintained continuation of `serde_yaml`.
//!
//! Values are converted into [`Yaml`], a tree whose mappings keep their declaration order, because the
//! order of `resources:` matters to the fake engine (a `serde_json::Value` would sort the keys).
//! Tagged values (`!Tag`) are rejected: Pulumi YAML uses none.

/// A parsed YAML value. Mappings keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Yaml {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer or a float.
    Number(serde_json::Number),
    /// Any other scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Yaml>),
    /// A mapping in declaration order.
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    /// Looks a key up in a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value of a scalar.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Converts to JSON (mapping order becomes key order).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Yaml::Null => Value::Null,
            Yaml::Bool(b) => Value::Bool(*b),
            Yaml::Number(n) => Value::Number(n.clone()),
            Yaml::Str(s) => Value::String(s.clone()),
            Yaml::Seq(items) => Value::Array(items.iter().map(Yaml::to_json).collect()),
            Yaml::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Converts from JSON (used for `Pulumi.json` projects).
    pub(crate) fn from_json(v: &serde_json::Value) -> Yaml {
        use serde_json::Value;
        match v {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Bool(*b),
            Value::Number(n) => Yaml::Number(n.clone()),
            Value::String(s) => Yaml::Str(s.clone()),
            Value::Array(a) => Yaml::Seq(a.iter().map(Yaml::from_json).collect()),
            Value::Object(o) => Yaml::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Yaml::from_json(v)))
                    .collect(),
            ),
        }
    }

    fn from_value(v: yaml_serde::Value) -> Result<Yaml, String> {
        use yaml_serde::Value;
        Ok(match v {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Bool(b),
            Value::Number(n) => Yaml::Number(number(&n)?),
            Value::String(s) => Yaml::Str(s),
            Value::Sequence(items) => Yaml::Seq(
                items
                    .into_iter()
                    .map(Yaml::from_value)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(entries) => Yaml::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| Ok((key(k)?, Yaml::from_value(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Value::Tagged(t) => return Err(format!("tags are not supported ({})", t.tag)),
        })
    }
}

/// A YAML number as a JSON one (a non-finite float has no JSON form).
fn number(n: &yaml_serde::Number) -> Result<serde_json::Number, String> {
    if let Some(i) = n.as_i64() {
        Ok(i.into())
    } else if let Some(u) = n.as_u64() {
        Ok(u.into())
    } else {
        n.as_f64()
            .and_then(serde_json::Number::from_f64)
            .ok_or_else(|| format!("the number {n} has no JSON form"))
    }
}

/// A mapping key as a string: scalars are written as YAML would read them back.
fn key(k: yaml_serde::Value) -> Result<String, String> {
    use yaml_serde::Value;
    match k {
        Value::String(s) => Ok(s),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok("null".to_owned()),
        other => Err(format!("a mapping key must be a scalar, not {other:?}")),
    }
}

/// Parses a YAML document into a [`Yaml`] value.
pub(crate) fn parse(source: &str) -> Result<Yaml, String> {
    let value: yaml_serde::Value = yaml_serde::from_str(source).map_err(|e| e.to_string())?;
    Yaml::from_value(value)
}

/// Writes a value as YAML (a struct's fields in their order, maps sorted by key).
pub(crate) fn to_string<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, String> {
    yaml_serde::to_string(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_pulumi_yaml_program() {
        let src = r#"
name: demo   # the project
runtime: yaml
description: "a \"demo\""
config:
  greeting:
    default: hi
resources:
  bucket:
    type: aws:s3:Bucket
    properties:
      acl: private
      tags: {team: core, "cost center": 42}
      ports: [80, 443]
    options:
      replaceOnChanges:
        - acl
  site:
    type: aws:s3:BucketObject
    properties:
      bucket: ${bucket.id}
      body: |
        line one
        line two
outputs:
  name: ${bucket.id}
  secretValue:
    fn::secret: hunter2
  list:
  - a
  - key: v
    other: w
"#;
        let y = parse(src).unwrap();
        assert_eq!(y.get("name").unwrap().as_str(), Some("demo"));
        assert_eq!(y.get("description").unwrap().as_str(), Some("a \"demo\""));
        let resources = y.get("resources").unwrap();
        let Yaml::Map(entries) = resources else {
            panic!("not a map")
        };
        assert_eq!(
            entries.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["bucket", "site"]
        );
        let props = resources
            .get("bucket")
            .unwrap()
            .get("properties")
            .unwrap()
            .to_json();
        assert_eq!(
            props,
            serde_json::json!({"acl": "private", "tags": {"team": "core", "cost center": 42}, "ports": [80, 443]})
        );
        let body = resources
            .get("site")
            .unwrap()
            .get("properties")
            .unwrap()
            .get("body")
            .unwrap();
        assert_eq!(body.as_str(), Some("line one\nline two\n"));
        let outputs = y.get("outputs").unwrap().to_json();
        assert_eq!(
            outputs["secretValue"],
            serde_json::json!({"fn::secret": "hunter2"})
        );
        assert_eq!(
            outputs["list"],
            serde_json::json!(["a", {"key": "v", "other": "w"}])
        );
    }

    #[test]
    fn writes_what_it_reads() {
        let doc = serde_json::json!({"config": {"p:a": "x: y", "p:b": {"secure": "v1:abc"}}});
        let text = to_string(&doc).unwrap();
        assert_eq!(parse(&text).unwrap().to_json(), doc);
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse("a: 1\n  b: 2\n").is_err());
        assert!(parse("a: 1\na: 2\n").is_err());
        assert!(parse("a: !Tag 1\n").is_err());
        assert!(parse("a: [1, 2\n").is_err());
        assert!(parse("a: .inf\n").is_err());
    }
}
