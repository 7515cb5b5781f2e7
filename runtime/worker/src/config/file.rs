//! Reading config files: Kafka Connect `.properties`, JSON (the REST `{"name","config"}` body
//! or a flat map), TOML and YAML. Every format ends as the same flat `key -> string` map, so a
//! connector behaves identically whichever format it was written in.
//!
//! In TOML and YAML, nested tables are flattened with dots: `connector.class = "X"` in TOML
//! (a dotted key) and `connector: {class: X}` in YAML both mean `connector.class=X`. A key
//! that is also the prefix of others (`transforms` beside `transforms.x.type`) is written
//! quoted in TOML (`"transforms.x.type" = …`); YAML and JSON keys may simply contain dots.
//!
//! Files are parsed with the format crates directly rather than through the `config` crate:
//! `config` expands dotted keys into nested paths, and a flat Kafka Connect config, where
//! `transforms` and `transforms.x.type` (or `key.converter` and
//! `key.converter.schemas.enable`) coexist, cannot survive that.

use std::path::Path;

use sluice_api::config::Props;
use sluice_api::{Error, Result};

/// A connector config as read from a file: its name and flat settings.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectorSpec {
    pub name: String,
    /// All settings, `name` included (Kafka Connect keeps it in the config too).
    pub config: Props,
}

/// Shows the config with secret-looking values hidden.
impl std::fmt::Debug for ConnectorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorSpec")
            .field("name", &self.name)
            .field("config", &super::shown(&self.config))
            .finish()
    }
}

/// The file formats sluice reads, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Properties,
    Json,
    Toml,
    Yaml,
}

impl Format {
    /// The format implied by a file name; anything unrecognised is read as `.properties`,
    /// as Kafka Connect does.
    pub fn of(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("toml") => Format::Toml,
            Some("yaml" | "yml") => Format::Yaml,
            _ => Format::Properties,
        }
    }
}

/// Reads a file into a flat map, naming the file in every error.
pub fn read_props(path: &Path) -> Result<Props> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            format!(
                "cannot read config file {} (check the path)",
                path.display()
            ),
            e,
        )
    })?;
    parse_props(&text, Format::of(path)).map_err(|e| e.context(path.display()))
}

/// Parses text of the given format into a flat map.
pub fn parse_props(text: &str, format: Format) -> Result<Props> {
    match format {
        Format::Properties => parse_properties(text),
        Format::Json => serde_json::from_str(text)
            .map_err(|e| Error::config(format!("invalid JSON: {e}")))
            .and_then(flat_props),
        Format::Toml => toml::from_str::<serde_json::Value>(text)
            .map_err(|e| Error::config(format!("invalid TOML: {e}")))
            .and_then(flat_props),
        Format::Yaml => parse_yaml(text).and_then(flat_props),
    }
}

fn parse_yaml(text: &str) -> Result<serde_json::Value> {
    let documents = yaml_rust2::YamlLoader::load_from_str(text)
        .map_err(|e| Error::config(format!("invalid YAML: {e}")))?;
    match documents.as_slice() {
        [] => Ok(serde_json::Value::Object(serde_json::Map::new())),
        [document] => yaml_to_json(document),
        _ => Err(Error::config(
            "expected one YAML document, found several (`---`)",
        )),
    }
}

fn yaml_to_json(yaml: &yaml_rust2::Yaml) -> Result<serde_json::Value> {
    use serde_json::Value as Json;
    use yaml_rust2::Yaml;
    Ok(match yaml {
        Yaml::Null | Yaml::BadValue => Json::Null,
        Yaml::Boolean(b) => Json::Bool(*b),
        Yaml::Integer(i) => Json::from(*i),
        // Kept as written: `1.50` stays `1.50`, as it would in a .properties file.
        Yaml::Real(r) => Json::String(r.clone()),
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Array(items) => Json::Array(items.iter().map(yaml_to_json).collect::<Result<_>>()?),
        Yaml::Hash(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => return Err(Error::config(format!("unsupported YAML key {other:?}"))),
                };
                object.insert(key, yaml_to_json(value)?);
            }
            Json::Object(object)
        }
        Yaml::Alias(_) => return Err(Error::config("YAML aliases are not supported in configs")),
    })
}

/// Reads a worker config, then applies `SLUICE__…` environment overrides:
/// `SLUICE__REST_PORT=9090` sets `rest.port` (after the prefix, `_` stands for `.`).
pub fn read_worker_props(path: &Path) -> Result<Props> {
    let mut props = read_props(path)?;
    props.extend(env_overrides(std::env::vars()));
    Ok(props)
}

/// The worker settings given by `SLUICE__…` variables among `vars`: the rest of the name,
/// lower-cased, with `_` read as `.`.
pub fn env_overrides(vars: impl Iterator<Item = (String, String)>) -> Props {
    vars.filter_map(|(name, value)| {
        let key = name.strip_prefix("SLUICE__")?;
        (!key.is_empty()).then(|| (key.to_ascii_lowercase().replace('_', "."), value))
    })
    .collect()
}

/// Reads a connector config and unwraps the REST body form `{"name": …, "config": {…}}`.
pub fn read_connector(path: &Path) -> Result<ConnectorSpec> {
    let props = read_props(path)?;
    connector_from_props(props).map_err(|e| e.context(path.display()))
}

/// A connector spec from flat settings, accepting the `{"name","config"}` wrapper (which
/// arrives flattened as `config.*` keys).
pub fn connector_from_props(props: Props) -> Result<ConnectorSpec> {
    let wrapped = props.keys().any(|k| k.starts_with("config."));
    let (outer_name, mut config) = if wrapped {
        let mut config = Props::new();
        let mut outer_name = None;
        for (key, value) in props {
            if let Some(inner) = key.strip_prefix("config.") {
                config.insert(inner.to_owned(), value);
            } else if key == "name" {
                outer_name = Some(value);
            } else {
                return Err(Error::config(format!(
                    "unexpected top-level key `{key}` beside `config`; the REST form is \
                     {{\"name\": …, \"config\": {{…}}}}"
                )));
            }
        }
        (outer_name, config)
    } else {
        (None, props)
    };
    let name = match (outer_name, config.get("name")) {
        (Some(outer), Some(inner)) if &outer != inner => {
            return Err(Error::config(format!(
                "connector name `{outer}` does not match config.name `{inner}`; make them equal"
            )));
        }
        (Some(outer), _) => outer,
        (None, Some(inner)) => inner.clone(),
        (None, None) => {
            return Err(Error::config(
                "missing `name`: every connector config needs a unique `name=…`",
            ));
        }
    };
    if name.trim().is_empty() {
        return Err(Error::config("`name` is empty; give the connector a name"));
    }
    config.insert("name".into(), name.clone());
    Ok(ConnectorSpec { name, config })
}

fn flat_props(json: serde_json::Value) -> Result<Props> {
    if !json.is_object() {
        return Err(Error::config("expected a map of settings at the top level"));
    }
    let mut props = Props::new();
    flatten("", &json, &mut props);
    Ok(props)
}

fn flatten(prefix: &str, json: &serde_json::Value, out: &mut Props) {
    use serde_json::Value as Json;
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match json {
        Json::Object(map) => {
            for (k, v) in map {
                flatten(&key(k), v, out);
            }
        }
        Json::Array(items) => {
            let joined = items
                .iter()
                .map(|item| match item {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",");
            out.insert(prefix.to_owned(), joined);
        }
        Json::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        Json::Null => {
            out.insert(prefix.to_owned(), String::new());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// Parses Java `.properties`: `key=value`, `key: value` or `key value`; `#`/`!` comments;
/// backslash line continuations and escapes (`\t`, `\n`, `\uXXXX`, `\=`…). A line that holds a
/// key with no separator and no value is rejected rather than read as an empty setting, since
/// it is almost always a typo.
pub fn parse_properties(text: &str) -> Result<Props> {
    let mut props = Props::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let line_no = index + 1;
        let mut logical = raw.trim_start().to_owned();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => {
                    return Err(Error::config(format!(
                        "line {line_no}: the last line ends with `\\` (a continuation) but \
                         nothing follows; remove the trailing backslash"
                    )));
                }
            }
        }
        let (key, value, had_separator) = split_key_value(&logical);
        let key = unescape(key).map_err(|e| Error::config(format!("line {line_no}: {e}")))?;
        let value = unescape(value).map_err(|e| Error::config(format!("line {line_no}: {e}")))?;
        if !had_separator && value.is_empty() {
            return Err(Error::config(format!(
                "line {line_no}: `{}` is not a `key=value` setting; write `{}=<value>` \
                 (or `{}=` for an empty value)",
                raw.trim(),
                key,
                key
            )));
        }
        if key.is_empty() {
            return Err(Error::config(format!(
                "line {line_no}: `{}` has no key before `=`",
                raw.trim()
            )));
        }
        props.insert(key, value);
    }
    Ok(props)
}

fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace, as `java.util.Properties` does.
fn split_key_value(line: &str) -> (&str, &str, bool) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' => {
                return (&line[..i], line[i + 1..].trim_start(), true);
            }
            b' ' | b'\t' | b'\x0c' => {
                let rest = line[i..].trim_start();
                return match rest.strip_prefix(['=', ':']) {
                    Some(value) => (&line[..i], value.trim_start(), true),
                    None => (&line[..i], rest, !rest.is_empty()),
                };
            }
            _ => i += 1,
        }
    }
    (line, "", false)
}

fn unescape(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| {
                        format!("`\\u{hex}` is not a valid unicode escape (four hex digits)")
                    })?;
                out.push(code);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kafka_connect_quickstart_source_file() {
        let props = parse_properties(
            "# comment\n! also comment\nname=local-file-source\nconnector.class = FileStreamSource\n\
             tasks.max: 1\nfile test.txt\ntopic=connect-\\\n   test\nescaped=a\\=b\\u0041\n",
        )
        .unwrap();
        assert_eq!(props["name"], "local-file-source");
        assert_eq!(props["connector.class"], "FileStreamSource");
        assert_eq!(props["tasks.max"], "1");
        assert_eq!(props["file"], "test.txt");
        assert_eq!(props["topic"], "connect-test");
        assert_eq!(props["escaped"], "a=bA");
    }

    #[test]
    fn a_bare_key_is_reported_with_its_line() {
        let err = parse_properties("name=x\nconnector.class\n").unwrap_err();
        assert!(
            err.message()
                .starts_with("line 2: `connector.class` is not a `key=value`"),
            "{err}"
        );
        let err = parse_properties("a=\\u12G4\n").unwrap_err();
        assert!(err.message().contains("line 1"), "{err}");
    }

    #[test]
    fn toml_yaml_json_and_properties_agree() {
        let properties = parse_props(
            "name=s\nconnector.class=FileStreamSource\ntasks.max=1\nfile=test.txt\ntopic=t\n",
            Format::Properties,
        )
        .unwrap();
        let toml = parse_props(
            "name = \"s\"\nconnector.class = \"FileStreamSource\"\ntasks.max = 1\nfile = \"test.txt\"\ntopic = \"t\"\n",
            Format::Toml,
        )
        .unwrap();
        let yaml = parse_props(
            "name: s\nconnector.class: FileStreamSource\ntasks.max: 1\nfile: test.txt\ntopic: t\n",
            Format::Yaml,
        )
        .unwrap();
        let json = parse_props(
            r#"{"name":"s","config":{"connector.class":"FileStreamSource","tasks.max":"1","file":"test.txt","topic":"t"}}"#,
            Format::Json,
        )
        .unwrap();
        assert_eq!(toml, properties);
        assert_eq!(yaml, properties);
        assert_eq!(connector_from_props(json).unwrap().config, properties);
    }

    #[test]
    fn a_key_beside_its_own_prefix_survives_in_every_format() {
        for _ in 0..20 {
            let json = parse_props(
                r#"{"transforms":"a","transforms.a.type":"x"}"#,
                Format::Json,
            )
            .unwrap();
            assert_eq!(
                (
                    json["transforms"].as_str(),
                    json["transforms.a.type"].as_str()
                ),
                ("a", "x")
            );
            let yaml = parse_props("transforms: a\ntransforms.a.type: x\n", Format::Yaml).unwrap();
            assert_eq!(yaml, json);
            let toml = parse_props(
                "transforms = \"a\"\n\"transforms.a.type\" = \"x\"\n",
                Format::Toml,
            )
            .unwrap();
            assert_eq!(toml, json);
        }
    }

    #[test]
    fn keys_keep_their_case() {
        let yaml = parse_props(
            "transforms: MakeMap\ntransforms.MakeMap.type: x\n",
            Format::Yaml,
        )
        .unwrap();
        assert_eq!(yaml["transforms.MakeMap.type"], "x");
        let toml = parse_props("\"transforms.MakeMap.type\" = \"x\"\n", Format::Toml).unwrap();
        assert_eq!(toml["transforms.MakeMap.type"], "x");
    }

    #[test]
    fn environment_overrides_map_underscores_to_dots() {
        let vars = [
            ("SLUICE__REST_PORT", "9090"),
            ("SLUICE__KEY_CONVERTER", "StringConverter"),
            ("SLUICE__KEY_CONVERTER_SCHEMAS_ENABLE", "false"),
            ("OTHER", "x"),
        ];
        let props = env_overrides(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(props["rest.port"], "9090");
        assert_eq!(props["key.converter"], "StringConverter");
        assert_eq!(props["key.converter.schemas.enable"], "false");
        assert_eq!(props.len(), 3);
    }

    #[test]
    fn mismatched_names_are_rejected() {
        let props: Props = [("name", "a"), ("config.name", "b")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(
            connector_from_props(props)
                .unwrap_err()
                .message()
                .contains("does not match")
        );
    }
}
