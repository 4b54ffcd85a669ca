//! matchbox's rules, sans IO: which group a request selects, the data a
//! template sees, and the substitution of that data into a template.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::MatchboxApiError;
use super::model::Group;

/// The group matchbox selects for request `labels`: the groups whose every
/// selector equals a label, the one with the most selectors first, ties
/// broken by the sorted `k=v` selector string (descending), as matchbox
/// sorts its groups. `mac` must already be normalised (lower-case colon
/// form) in both.
pub fn select<'a, I>(groups: I, labels: &BTreeMap<String, String>) -> Option<&'a Group>
where
    I: IntoIterator<Item = &'a Group>,
{
    let mut matching: Vec<&Group> = groups
        .into_iter()
        .filter(|g| g.selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .collect();
    matching.sort_by(|a, b| {
        b.selector
            .len()
            .cmp(&a.selector.len())
            .then_with(|| selector_key(b).cmp(&selector_key(a)))
    });
    matching.into_iter().next()
}

fn selector_key(g: &Group) -> String {
    g.selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The data a template of `group` is rendered with, as matchbox builds it:
/// the group's metadata, overlaid by its selectors, and `request` with the
/// request's `query` labels and its `raw_query`.
pub fn template_data(group: &Group, labels: &BTreeMap<String, String>, raw_query: &str) -> Value {
    let mut data: Map<String, Value> = group.metadata.clone();
    for (k, v) in &group.selector {
        data.insert(k.to_ascii_lowercase(), Value::String(v.clone()));
    }
    let query: Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut request = Map::new();
    request.insert("query".into(), Value::Object(query));
    request.insert("raw_query".into(), Value::String(raw_query.to_owned()));
    data.insert("request".into(), Value::Object(request));
    Value::Object(data)
}

/// Substitute `data` into a Go-template `template` the way matchbox renders
/// group metadata: `{{.key}}`, `{{ .a.b }}` (nested maps) and the trim
/// markers `{{-`/`-}}`. Strings are inserted as they are, numbers and
/// booleans in their JSON form, lists and maps as JSON. A missing key, or
/// any other template action (`if`, `range`, pipelines), is an error rather
/// than a silently wrong config.
pub fn render(template: &str, data: &Value) -> Result<String, MatchboxApiError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (before, after) = rest.split_at(start);
        let after = &after[2..];
        let end = after.find("}}").ok_or_else(|| MatchboxApiError::Template {
            reason: "unclosed {{".into(),
        })?;
        let mut action = &after[..end];
        rest = &after[end + 2..];
        if let Some(a) = action.strip_prefix('-') {
            out.push_str(before.trim_end());
            action = a;
        } else {
            out.push_str(before);
        }
        if let Some(a) = action.strip_suffix('-') {
            action = a;
            rest = rest.trim_start();
        }
        let action = action.trim();
        if action.starts_with("/*") && action.ends_with("*/") {
            continue;
        }
        out.push_str(&lookup(action, data)?);
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(action: &str, data: &Value) -> Result<String, MatchboxApiError> {
    let unsupported = || MatchboxApiError::Template {
        reason: format!(
            "{{{{{action}}}}} is not supported: only {{{{.key}}}} and {{{{.a.b}}}} are substituted"
        ),
    };
    let path = action.strip_prefix('.').ok_or_else(unsupported)?;
    if path.is_empty() {
        return Err(unsupported());
    }
    let mut value = data;
    for part in path.split('.') {
        if part.is_empty()
            || !part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(unsupported());
        }
        value = value.get(part).ok_or_else(|| MatchboxApiError::Template {
            reason: format!("{{{{{action}}}}}: no {part:?} in the group's metadata"),
        })?;
    }
    Ok(match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// matchbox's `/metadata` text: `KEY=value` lines, keys upper-cased and
/// nested keys joined with `_`, sorted.
pub fn metadata_text(data: &Value) -> String {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.to_ascii_uppercase()
                    } else {
                        format!("{prefix}_{}", k.to_ascii_uppercase())
                    };
                    walk(&key, v, out);
                }
            }
            Value::String(s) => out.push(format!("{prefix}={s}")),
            other => out.push(format!("{prefix}={other}")),
        }
    }
    let mut lines = Vec::new();
    walk("", data, &mut lines);
    lines.sort();
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn group(id: &str, selector: &[(&str, &str)]) -> Group {
        Group {
            id: id.into(),
            profile: "p".into(),
            selector: selector
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Group::default()
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn most_specific_group_wins() {
        let groups = [
            group("default", &[]),
            group("install", &[("mac", "52:54:00:00:00:01")]),
            group(
                "installed",
                &[("mac", "52:54:00:00:00:01"), ("os", "installed")],
            ),
            group("other", &[("mac", "52:54:00:00:00:02")]),
        ];
        let pick = |l: &[(&str, &str)]| select(&groups, &labels(l)).map(|g| g.id.as_str());
        assert_eq!(pick(&[("mac", "52:54:00:00:00:01")]), Some("install"));
        assert_eq!(
            pick(&[("mac", "52:54:00:00:00:01"), ("os", "installed")]),
            Some("installed")
        );
        assert_eq!(pick(&[("mac", "52:54:00:00:00:09")]), Some("default"));
        assert_eq!(pick(&[]), Some("default"));
        assert_eq!(select(&groups[1..], &labels(&[])), None);
        // Equal specificity: the larger selector string first.
        let tie = [
            group("a", &[("x", "1")]),
            group("b", &[("x", "1"), ("y", "2")]),
        ];
        let tie2 = [group("c", &[("a", "1")]), group("d", &[("b", "1")])];
        assert_eq!(
            select(&tie, &labels(&[("x", "1"), ("y", "2")])).unwrap().id,
            "b"
        );
        assert_eq!(
            select(&tie2, &labels(&[("a", "1"), ("b", "1")]))
                .unwrap()
                .id,
            "d"
        );
    }

    #[test]
    fn metadata_selectors_and_request_are_substituted() {
        let mut g = group("n", &[("mac", "52:54:00:00:00:01")]);
        g.metadata = json!({"hostname": "node-1", "ssh": {"port": 22}, "tags": ["a"]})
            .as_object()
            .unwrap()
            .clone();
        let data = template_data(
            &g,
            &labels(&[("mac", "52:54:00:00:00:01"), ("foo", "bar")]),
            "mac=52-54-00-00-00-01&foo=bar",
        );
        let t = "h={{.hostname}} m={{ .mac }} p={{.ssh.port}} t={{.tags}} q={{.request.query.foo}} r={{.request.raw_query}}\n  {{- /* c */ -}}  x";
        assert_eq!(
            render(t, &data).unwrap(),
            "h=node-1 m=52:54:00:00:00:01 p=22 t=[\"a\"] q=bar r=mac=52-54-00-00-00-01&foo=bar\nx"
                .replace("\nx", "x")
        );
        assert!(
            render("{{.missing}}", &data)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
        assert!(render("{{if .mac}}x{{end}}", &data).is_err());
        assert!(render("{{.mac", &data).is_err());
        assert_eq!(render("no actions }}", &data).unwrap(), "no actions }}");
        let md = metadata_text(&data);
        assert!(md.contains("HOSTNAME=node-1\n"), "{md}");
        assert!(md.contains("SSH_PORT=22\n"), "{md}");
        assert!(md.contains("REQUEST_QUERY_FOO=bar\n"), "{md}");
    }

    proptest! {
        #[test]
        fn render_never_panics(t in ".{0,64}") {
            let _ = render(&t, &json!({"a": "b"}));
        }

        #[test]
        fn text_without_actions_is_unchanged(t in "[^{]{0,64}") {
            prop_assert_eq!(render(&t, &json!({})).unwrap(), t);
        }
    }
}
