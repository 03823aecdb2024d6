//! A small YAML subset parser, enough for `Pulumi.yaml` programs and `--config-file` files.
//!
//! It understands block mappings and sequences by indentation, plain, single- and double-quoted scalars,
//! one-line flow collections (`[a, b]`, `{k: v}`), `|`/`>` block scalars and `#` comments.
//! Mappings keep their declaration order, because the order of `resources:` matters to the fake engine.
//! Anchors, tags and multi-document streams are not supported and are reported as errors.

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
}

struct Line {
    number: usize,
    indent: usize,
    text: String,
}

/// Parses a YAML document into a [`Yaml`] value.
pub(crate) fn parse(source: &str) -> Result<Yaml, String> {
    let mut lines = Vec::new();
    for (i, raw) in source.lines().enumerate() {
        let trimmed_end = strip_comment(raw).trim_end().to_owned();
        if trimmed_end.trim().is_empty() {
            // Blank lines still matter inside block scalars; keep them with a marker indent.
            lines.push(Line {
                number: i + 1,
                indent: usize::MAX,
                text: String::new(),
            });
            continue;
        }
        if trimmed_end.contains('\t') && trimmed_end.trim_start().len() != trimmed_end.len() {
            let lead: String = trimmed_end
                .chars()
                .take_while(|c| c.is_whitespace())
                .collect();
            if lead.contains('\t') {
                return Err(format!(
                    "line {}: tabs are not allowed for indentation",
                    i + 1
                ));
            }
        }
        let indent = trimmed_end.len() - trimmed_end.trim_start().len();
        let text = trimmed_end.trim_start().to_owned();
        if text == "---" && lines.iter().all(|l: &Line| l.indent == usize::MAX) {
            continue;
        }
        if text.starts_with('&') || text.starts_with('*') || text.starts_with('!') {
            return Err(format!(
                "line {}: anchors, aliases and tags are not supported",
                i + 1
            ));
        }
        lines.push(Line {
            number: i + 1,
            indent,
            text,
        });
    }
    let mut parser = Parser { lines, pos: 0 };
    parser.skip_blank();
    if parser.pos >= parser.lines.len() {
        return Ok(Yaml::Null);
    }
    let indent = parser.lines[parser.pos].indent;
    let value = parser.block(indent)?;
    parser.skip_blank();
    if let Some(line) = parser.lines.get(parser.pos) {
        return Err(format!(
            "line {}: unexpected content '{}'",
            line.number, line.text
        ));
    }
    Ok(value)
}

/// Removes a `#` comment that is outside quotes and starts a word.
fn strip_comment(line: &str) -> &str {
    let mut in_single = false;
    let mut in_double = false;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !in_double => in_single = !in_single,
            '"' if !in_single && prev != '\\' => in_double = !in_double,
            '#' if !in_single && !in_double && (prev == ' ' || i == 0) => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

struct Parser {
    lines: Vec<Line>,
    pos: usize,
}

impl Parser {
    fn skip_blank(&mut self) {
        while self.pos < self.lines.len() && self.lines[self.pos].indent == usize::MAX {
            self.pos += 1;
        }
    }

    fn block(&mut self, indent: usize) -> Result<Yaml, String> {
        self.skip_blank();
        let Some(line) = self.lines.get(self.pos) else {
            return Ok(Yaml::Null);
        };
        if line.text == "-" || line.text.starts_with("- ") {
            self.sequence(indent)
        } else {
            self.mapping(indent)
        }
    }

    fn sequence(&mut self, indent: usize) -> Result<Yaml, String> {
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            let Some(line) = self.lines.get(self.pos) else {
                break;
            };
            if line.indent != indent || !(line.text == "-" || line.text.starts_with("- ")) {
                if line.indent > indent {
                    return Err(format!("line {}: bad indentation", line.number));
                }
                break;
            }
            let rest = line.text[1..].trim_start().to_owned();
            let number = line.number;
            if rest.is_empty() {
                self.pos += 1;
                self.skip_blank();
                match self.lines.get(self.pos) {
                    Some(next) if next.indent > indent => {
                        let child = next.indent;
                        items.push(self.block(child)?);
                    }
                    _ => items.push(Yaml::Null),
                }
            } else if split_key(&rest).is_some() && !rest.starts_with('{') && !rest.starts_with('[')
            {
                // `- key: value` starts a mapping whose lines sit two columns further in.
                let offset = line.text.len() - rest.len();
                self.lines[self.pos] = Line {
                    number,
                    indent: indent + offset,
                    text: rest,
                };
                items.push(self.mapping(indent + offset)?);
            } else {
                self.pos += 1;
                items.push(self.inline_value(&rest, number, indent)?);
            }
        }
        Ok(Yaml::Seq(items))
    }

    fn mapping(&mut self, indent: usize) -> Result<Yaml, String> {
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        loop {
            self.skip_blank();
            let Some(line) = self.lines.get(self.pos) else {
                break;
            };
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return Err(format!("line {}: bad indentation", line.number));
            }
            if line.text == "-" || line.text.starts_with("- ") {
                break;
            }
            let number = line.number;
            let Some((key, rest)) = split_key(&line.text) else {
                return Err(format!(
                    "line {number}: expected 'key: value', found '{}'",
                    line.text
                ));
            };
            self.pos += 1;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(format!("line {number}: duplicate key '{key}'"));
            }
            let value = if rest.is_empty() {
                self.skip_blank();
                match self.lines.get(self.pos) {
                    Some(next) if next.indent > indent => {
                        let child = next.indent;
                        self.block(child)?
                    }
                    Some(next)
                        if next.indent == indent
                            && (next.text == "-" || next.text.starts_with("- ")) =>
                    {
                        self.sequence(indent)?
                    }
                    _ => Yaml::Null,
                }
            } else {
                self.inline_value(&rest, number, indent)?
            };
            entries.push((key, value));
        }
        Ok(Yaml::Map(entries))
    }

    fn inline_value(&mut self, text: &str, number: usize, indent: usize) -> Result<Yaml, String> {
        if text == "|" || text == ">" || text == "|-" || text == ">-" {
            let folded = text.starts_with('>');
            let keep_newline = !text.ends_with('-');
            let mut parts: Vec<String> = Vec::new();
            let mut block_indent = None;
            while let Some(line) = self.lines.get(self.pos) {
                if line.indent == usize::MAX {
                    parts.push(String::new());
                    self.pos += 1;
                    continue;
                }
                if line.indent <= indent {
                    break;
                }
                let bi = *block_indent.get_or_insert(line.indent);
                let extra = " ".repeat(line.indent.saturating_sub(bi));
                parts.push(format!("{extra}{}", line.text));
                self.pos += 1;
            }
            while parts.last().is_some_and(String::is_empty) {
                parts.pop();
            }
            let mut s = if folded {
                parts.join(" ")
            } else {
                parts.join("\n")
            };
            if keep_newline {
                s.push('\n');
            }
            return Ok(Yaml::Str(s));
        }
        flow_value(text).map_err(|e| format!("line {number}: {e}"))
    }
}

/// Splits `key: value` at the first `:` followed by a space or the end of the line, outside quotes.
fn split_key(text: &str) -> Option<(String, String)> {
    let bytes = text.as_bytes();
    let (key, after) = if bytes.first() == Some(&b'"') || bytes.first() == Some(&b'\'') {
        let quote = bytes[0];
        let end = text[1..].find(quote as char)? + 1;
        let key = unquote(&text[..=end]).ok()?;
        let rest = text[end + 1..].trim_start();
        let rest = rest.strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return None;
        }
        (key, rest)
    } else {
        if text.starts_with('{') || text.starts_with('[') {
            return None;
        }
        let mut found = None;
        for (i, c) in text.char_indices() {
            if c == ':' {
                let next = text[i + 1..].chars().next();
                if next.is_none() || next == Some(' ') {
                    found = Some(i);
                    break;
                }
            }
        }
        let i = found?;
        (text[..i].trim_end().to_owned(), &text[i + 1..])
    };
    Some((key, after.trim().to_owned()))
}

fn unquote(text: &str) -> Result<String, String> {
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Ok(inner.replace("''", "'"));
    }
    if text.starts_with('"') && text.ends_with('"') && text.len() >= 2 {
        // YAML double-quoted escapes are a superset of JSON's for the cases that matter here.
        return serde_json::from_str::<String>(text).map_err(|e| format!("bad string {text}: {e}"));
    }
    Err(format!("unterminated string {text}"))
}

/// Parses a one-line value: a scalar or a flow collection.
fn flow_value(text: &str) -> Result<Yaml, String> {
    let mut p = Flow {
        chars: text.chars().collect(),
        pos: 0,
    };
    let v = p.value(false)?;
    p.skip_ws();
    if p.pos != p.chars.len() {
        return Err(format!("unexpected trailing text in '{text}'"));
    }
    Ok(v)
}

struct Flow {
    chars: Vec<char>,
    pos: usize,
}

impl Flow {
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn value(&mut self, in_flow: bool) -> Result<Yaml, String> {
        self.skip_ws();
        match self.chars.get(self.pos) {
            Some('[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.chars.get(self.pos) == Some(&']') {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.value(true)?);
                    self.skip_ws();
                    match self.chars.get(self.pos) {
                        Some(',') => self.pos += 1,
                        Some(']') => {}
                        _ => return Err("expected ',' or ']'".to_owned()),
                    }
                }
                Ok(Yaml::Seq(items))
            }
            Some('{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    self.skip_ws();
                    if self.chars.get(self.pos) == Some(&'}') {
                        self.pos += 1;
                        break;
                    }
                    let key = match self.value(true)? {
                        Yaml::Str(s) => s,
                        other => scalar_text(&other),
                    };
                    self.skip_ws();
                    if self.chars.get(self.pos) != Some(&':') {
                        return Err("expected ':' in flow mapping".to_owned());
                    }
                    self.pos += 1;
                    let v = self.value(true)?;
                    entries.push((key, v));
                    self.skip_ws();
                    match self.chars.get(self.pos) {
                        Some(',') => self.pos += 1,
                        Some('}') => {}
                        _ => return Err("expected ',' or '}'".to_owned()),
                    }
                }
                Ok(Yaml::Map(entries))
            }
            Some('"') | Some('\'') => {
                let quote = self.chars[self.pos];
                let start = self.pos;
                self.pos += 1;
                while let Some(&c) = self.chars.get(self.pos) {
                    self.pos += 1;
                    if c == '\\' && quote == '"' {
                        self.pos += 1;
                        continue;
                    }
                    if c == quote {
                        if quote == '\'' && self.chars.get(self.pos) == Some(&'\'') {
                            self.pos += 1;
                            continue;
                        }
                        let raw: String = self.chars[start..self.pos].iter().collect();
                        return unquote(&raw).map(Yaml::Str);
                    }
                }
                Err("unterminated string".to_owned())
            }
            _ => {
                let start = self.pos;
                while let Some(&c) = self.chars.get(self.pos) {
                    if in_flow && (c == ',' || c == ']' || c == '}') {
                        break;
                    }
                    if in_flow && c == ':' && self.chars.get(self.pos + 1).is_none_or(|n| *n == ' ')
                    {
                        break;
                    }
                    self.pos += 1;
                }
                let raw: String = self.chars[start..self.pos].iter().collect();
                Ok(plain_scalar(raw.trim()))
            }
        }
    }
}

fn scalar_text(v: &Yaml) -> String {
    match v {
        Yaml::Null => String::new(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Str(s) => s.clone(),
        other => format!("{:?}", other),
    }
}

fn plain_scalar(raw: &str) -> Yaml {
    match raw {
        "" | "~" | "null" | "Null" | "NULL" => return Yaml::Null,
        "true" | "True" | "TRUE" => return Yaml::Bool(true),
        "false" | "False" | "FALSE" => return Yaml::Bool(false),
        _ => {}
    }
    if let Ok(i) = raw.parse::<i64>() {
        return Yaml::Number(i.into());
    }
    if raw.chars().any(|c| c.is_ascii_digit())
        && raw
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
    {
        if let Some(n) = raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Yaml::Number(n);
        }
    }
    Yaml::Str(raw.to_owned())
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
    fn rejects_what_it_cannot_read() {
        assert!(parse("a: 1\n  b: 2\n").is_err());
        assert!(parse("a: 1\na: 2\n").is_err());
        assert!(parse("a: &anchor 1\n").is_ok()); // a plain scalar starting later is a string
        assert!(parse("&x a: 1\n").is_err());
        assert!(parse("just words\n").is_err());
    }
}
