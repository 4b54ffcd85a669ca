//! The template engine: minijinja in strict-undefined mode, templates
//! embedded from `templates/` at build time, and one formatter per target
//! language chosen by the template's file name:
//!
//! * `*.lokocfg.j2`, `*.vars.j2`, `*.tf.j2`, `*.tfvars.j2` (HCL): every
//!   `{{ value }}` becomes an HCL *literal*: strings quoted and escaped
//!   ([`hcl_string`]), lists `[...]`, maps `{ k = v }`, numbers and bools
//!   bare. A value can never end a string or start an interpolation.
//! * everything else (YAML, systemd units, hosts files, INI): every
//!   `{{ value }}` must be a *token* ([`is_token`]) or a string the renderer
//!   itself marked safe (pre-rendered unit files); anything else is an
//!   error, never output.

use std::sync::OnceLock;

use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};

use crate::error::RenderError;
use crate::escape::{hcl_string, is_token};

macro_rules! embed {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $name)))),*]
    };
}

/// Every template, by name (its path under `templates/`).
const TEMPLATES: &[(&str, &str)] = embed!(
    "units/10-priv-stable.network.j2",
    "units/10-public-stable.network.j2",
    "units/00-resolve.netdev.j2",
    "units/00-resolve.network.j2",
    "units/racker-resolved.conf.j2",
    "units/use-systemd-resolved.service.j2",
    "units/hosts.j2",
    "cl/node.yaml.j2",
    "cl/custom.yaml.j2",
    "lokomotive/baremetal.lokocfg.j2",
    "lokomotive/lokocfg.vars.j2",
    "lokomotive/web-ui.lokocfg.j2",
    "lokomotive/rook.lokocfg.j2",
    "lokomotive/openebs.lokocfg.j2",
    "lokomotive/velero.lokocfg.j2",
    "lokomotive/backup-credentials.j2",
    "flatcar/flatcar.tf.j2",
    "flatcar/variables.tf.j2",
    "flatcar/versions.tf.j2",
    "flatcar/terraform.tfvars.j2",
    "flatcar/base.yaml.tmpl.j2",
    "flatcar/install.yaml.tmpl.j2",
    "management-hosts.j2",
);

const HCL: &str = "hcl";
const TOKEN: &str = "token";

fn escape_mode(name: &str) -> AutoEscape {
    let name = name.strip_suffix(".j2").unwrap_or(name);
    if [".lokocfg", ".vars", ".tf", ".tfvars"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        AutoEscape::Custom(HCL.into())
    } else {
        AutoEscape::Custom(TOKEN.into())
    }
}

/// Write `value` as an HCL literal.
fn hcl_literal(value: &Value, out: &mut String) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool | ValueKind::Number => out.push_str(&value.to_string()),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            if value.is_safe() {
                out.push_str(s);
            } else {
                out.push_str(&hcl_string(s));
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, item) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                hcl_literal(&item, out)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            let mut first = true;
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                out.push_str(if first { " " } else { ", " });
                first = false;
                out.push_str(&hcl_string(&key.to_string()));
                out.push_str(" = ");
                hcl_literal(&item, out)?;
            }
            out.push_str(if first { "}" } else { " }" });
        }
        kind => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("a {kind} value cannot be written into HCL"),
            ));
        }
    }
    Ok(())
}

fn formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "undefined value"));
    }
    match state.auto_escape() {
        AutoEscape::Custom(mode) if mode == HCL => {
            let mut s = String::new();
            hcl_literal(value, &mut s)?;
            out.write_str(&s).map_err(Error::from)
        }
        _ => {
            let text = match value.kind() {
                ValueKind::String => value.as_str().unwrap_or_default().to_owned(),
                ValueKind::Number => value.to_string(),
                kind => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("a {kind} value cannot be written here"),
                    ));
                }
            };
            if value.is_safe() || is_token(&text) {
                out.write_str(&text).map_err(Error::from)
            } else {
                Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "refusing to write {text:?}: only letters, digits and . : / _ - + , = @ may appear here"
                    ),
                ))
            }
        }
    }
}

/// `{{ text | indent_block(n) }}`: indent every non-empty line of a
/// renderer-made (safe) text by `n` spaces, keeping it safe. Unsafe input is
/// refused.
fn indent_block(value: Value, width: usize) -> Result<Value, Error> {
    if !value.is_safe() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "indent_block only takes renderer-made text",
        ));
    }
    let pad = " ".repeat(width);
    let text = value.as_str().unwrap_or_default();
    let mut out = String::with_capacity(text.len() + 16 * width);
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(line.trim_start_matches(' '));
        } else {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    Ok(Value::from_safe_string(out))
}

/// `{{ value | hcl_key }}`: an HCL object key (quoted string literal).
fn hcl_key(value: String) -> Value {
    Value::from_safe_string(hcl_string(&value))
}

fn build() -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(escape_mode);
    env.set_formatter(formatter);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    env.add_filter("indent_block", indent_block);
    env.add_filter("hcl_key", hcl_key);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

static ENV: OnceLock<Result<Environment<'static>, Error>> = OnceLock::new();

/// Render template `name` with `ctx`.
pub(crate) fn render(name: &str, ctx: Value) -> Result<String, RenderError> {
    let wrap = |source| RenderError::Template {
        template: name.to_owned(),
        source,
    };
    let env = ENV
        .get_or_init(build)
        .as_ref()
        .map_err(|e| wrap(Error::new(ErrorKind::InvalidOperation, e.to_string())))?;
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(wrap)
}

/// A renderer-made text that may be written anywhere (it was produced by
/// templates whose values were all checked).
pub(crate) fn safe(text: String) -> Value {
    Value::from_safe_string(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn every_template_parses() {
        assert!(
            ENV.get_or_init(build).is_ok(),
            "{:?}",
            ENV.get_or_init(build).as_ref().err()
        );
    }

    #[test]
    fn hcl_formatter_writes_literals() {
        let mut s = String::new();
        let v = Value::from(minijinja::value::Serde(std::collections::BTreeMap::from([
            ("b", vec!["x\"${y}"]),
            ("a", vec![]),
        ])));
        hcl_literal(&v, &mut s).unwrap();
        assert_eq!(s, r#"{ "a" = [], "b" = ["x\"$${y}"] }"#);
    }

    #[test]
    fn token_formatter_refuses_injection() {
        let mut env = Environment::new();
        env.set_auto_escape_callback(escape_mode);
        env.set_formatter(formatter);
        env.add_template("t.yaml", "name: {{ v }}").unwrap();
        let t = env.get_template("t.yaml").unwrap();
        assert_eq!(
            t.render(context! { v => "node-1" }).unwrap(),
            "name: node-1"
        );
        for bad in ["a\nb: c", "x\"", "${x}", "a b", "#x"] {
            assert!(t.render(context! { v => bad }).is_err(), "{bad:?}");
        }
        assert_eq!(
            t.render(context! { v => safe("a b".into()) }).unwrap(),
            "name: a b"
        );
    }
}
