//! The installer definition: a TOML file naming the release version and the
//! modules (assets + build steps) that make up the release tree. The schema
//! is documented in `docs/installer.md`.

use std::path::{Path, PathBuf};

use semver::Version;
use serde::Deserialize;
use url::Url;

use crate::archive::check_entry_path;
use crate::digest::Sha256Digest;
use crate::error::{Error, IoContext, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    version: String,
    min_compatible_version: Option<String>,
    mtime: Option<u64>,
    #[serde(default, rename = "module")]
    modules: Vec<RawModule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    name: String,
    #[serde(default)]
    optional: bool,
    #[serde(default, rename = "asset")]
    assets: Vec<RawAsset>,
    #[serde(default, rename = "step")]
    steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsset {
    path: Option<String>,
    url: Option<String>,
    sha256: Option<String>,
    git: Option<String>,
    tag: Option<String>,
    commit: Option<String>,
    target: String,
    #[serde(default)]
    scratch: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    argv: Vec<String>,
}

/// A validated installer definition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Definition {
    /// The release version.
    pub version: Version,
    /// Oldest installed version `racker update` may replace with this one.
    pub min_compatible_version: Version,
    /// Modification time stamped on every archive entry (seconds since the
    /// epoch).
    pub mtime: u64,
    /// Modules in definition order.
    pub modules: Vec<Module>,
    /// Directory of the definition file; relative asset paths start here.
    pub base_dir: PathBuf,
}

/// A named group of assets and build steps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Module {
    /// Unique name.
    pub name: String,
    /// Only built when asked for (`--with NAME`).
    pub optional: bool,
    /// Placed in order before the steps run.
    pub assets: Vec<Asset>,
    /// Run in order, in the release root.
    pub steps: Vec<Step>,
}

/// One input file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Asset {
    /// Where it comes from.
    pub source: AssetSource,
    /// Relative path inside the release root (or the scratch folder).
    pub target: PathBuf,
    /// Place it in the scratch folder (`{work}`), which is not archived.
    pub scratch: bool,
}

/// Where an asset comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssetSource {
    /// A file or folder of the repository (absolute after loading).
    Path(PathBuf),
    /// A download pinned by SHA-256.
    Url {
        /// The URL.
        url: Url,
        /// The pinned digest.
        sha256: Sha256Digest,
    },
    /// A git repository at a tag (shallow clone, `.git` removed).
    Git {
        /// Clone URL (anything `git clone` accepts).
        url: String,
        /// Tag (or branch) to check out.
        tag: String,
        /// Optional commit the tag must point at.
        commit: Option<String>,
    },
}

/// A build step: an argument vector, never a shell string. `{root}`,
/// `{work}`, `{source}`, `{version}` and `{arch}` are substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    /// Program and arguments.
    pub argv: Vec<String>,
}

impl Definition {
    /// Read and validate the definition at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).ctx("read", path)?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        Self::parse(path, &text, &base)
    }

    /// Parse definition `text` (named `path` in errors) whose relative
    /// asset paths start at `base_dir`.
    pub fn parse(path: &Path, text: &str, base_dir: &Path) -> Result<Self> {
        let raw: RawDefinition = toml::from_str(text).map_err(|e| Error::DefinitionParse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |reason: String| Error::DefinitionInvalid {
            path: path.to_path_buf(),
            reason,
        };
        let version: Version = raw
            .version
            .parse()
            .map_err(|e| invalid(format!("version {:?}: {e}", raw.version)))?;
        let min_compatible_version = match &raw.min_compatible_version {
            Some(text) => text
                .parse()
                .map_err(|e| invalid(format!("min_compatible_version {text:?}: {e}")))?,
            None => Version::new(version.major, 0, 0),
        };
        if min_compatible_version > version {
            return Err(invalid(format!(
                "min_compatible_version {min_compatible_version} is newer than version {version}"
            )));
        }
        let mut modules = Vec::new();
        for raw_module in raw.modules {
            let name = raw_module.name;
            if name.is_empty() || modules.iter().any(|m: &Module| m.name == name) {
                return Err(invalid(format!(
                    "module name {name:?} is empty or repeated"
                )));
            }
            let mut assets = Vec::new();
            for (i, a) in raw_module.assets.into_iter().enumerate() {
                let here = |what: String| invalid(format!("module {name} asset {}: {what}", i + 1));
                let target = check_entry_path(Path::new(&a.target))
                    .map_err(|e| here(format!("target {:?}: {e}", a.target)))?;
                let source = match (a.path, a.url, a.git) {
                    (Some(p), None, None) => {
                        if a.sha256.is_some() || a.tag.is_some() || a.commit.is_some() {
                            return Err(here("`path` takes no sha256/tag/commit".into()));
                        }
                        AssetSource::Path(base_dir.join(p))
                    }
                    (None, Some(u), None) => {
                        let url = crate::fetch::parse_url(&u).map_err(|e| here(e.to_string()))?;
                        let sha256 = a
                            .sha256
                            .ok_or_else(|| here("`url` needs a `sha256` pin".into()))?
                            .parse()
                            .map_err(|e: Error| here(e.to_string()))?;
                        if a.tag.is_some() || a.commit.is_some() {
                            return Err(here("`url` takes no tag/commit".into()));
                        }
                        AssetSource::Url { url, sha256 }
                    }
                    (None, None, Some(g)) => {
                        let tag = a.tag.ok_or_else(|| here("`git` needs a `tag`".into()))?;
                        if a.sha256.is_some() {
                            return Err(here("`git` takes no sha256 (pin with `commit`)".into()));
                        }
                        if let Some(c) = &a.commit
                            && (c.len() != 40 || !c.bytes().all(|b| b.is_ascii_hexdigit()))
                        {
                            return Err(here(format!("commit {c:?} is not 40 hex digits")));
                        }
                        AssetSource::Git {
                            url: g,
                            tag,
                            commit: a.commit.map(|c| c.to_ascii_lowercase()),
                        }
                    }
                    _ => return Err(here("needs exactly one of `path`, `url`, `git`".into())),
                };
                assets.push(Asset {
                    source,
                    target,
                    scratch: a.scratch,
                });
            }
            let mut steps = Vec::new();
            for (i, s) in raw_module.steps.into_iter().enumerate() {
                if s.argv.first().is_none_or(String::is_empty) {
                    return Err(invalid(format!(
                        "module {name} step {}: argv needs a program",
                        i + 1
                    )));
                }
                steps.push(Step { argv: s.argv });
            }
            modules.push(Module {
                name,
                optional: raw_module.optional,
                assets,
                steps,
            });
        }
        Ok(Self {
            version,
            min_compatible_version,
            mtime: raw.mtime.unwrap_or(crate::archive::DEFAULT_MTIME),
            modules,
            base_dir: base_dir.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Definition> {
        Definition::parse(Path::new("racker.toml"), text, Path::new("/src/installer"))
    }

    #[test]
    fn full_definition() {
        let sha = Sha256Digest::of(b"tool");
        let def = parse(&format!(
            r#"
            version = "1.2.3"
            min_compatible_version = "1.1.0"
            [[module]]
            name = "racker"
            [[module.asset]]
            path = "../target/release/racker"
            target = "bin/racker"
            [[module.asset]]
            url = "https://example.com/tool.tar.gz"
            sha256 = "{sha}"
            target = "tool.tar.gz"
            scratch = true
            [[module.asset]]
            git = "https://example.com/repo.git"
            tag = "v1"
            target = "share/repo"
            [[module.step]]
            argv = ["tar", "-xzf", "{{work}}/tool.tar.gz", "-C", "bin"]
            [[module]]
            name = "lokomotive"
            optional = true
            "#
        ))
        .unwrap();
        assert_eq!(def.version, Version::new(1, 2, 3));
        assert_eq!(def.min_compatible_version, Version::new(1, 1, 0));
        assert_eq!(def.modules.len(), 2);
        assert!(def.modules[1].optional);
        let m = &def.modules[0];
        assert_eq!(
            m.assets[0].source,
            AssetSource::Path(PathBuf::from("/src/installer/../target/release/racker"))
        );
        assert!(matches!(&m.assets[1].source, AssetSource::Url { sha256, .. } if *sha256 == sha));
        assert!(m.assets[1].scratch);
        assert!(matches!(&m.assets[2].source, AssetSource::Git { tag, .. } if tag == "v1"));
        assert_eq!(m.steps[0].argv[0], "tar");
    }

    #[test]
    fn defaults() {
        let def = parse("version = \"2.5.0\"").unwrap();
        assert_eq!(def.min_compatible_version, Version::new(2, 0, 0));
        assert_eq!(def.mtime, crate::archive::DEFAULT_MTIME);
    }

    #[test]
    fn rejects_mistakes() {
        let bad = [
            "version = \"x\"",
            "version = \"1.0.0\"\nmin_compatible_version = \"2.0.0\"",
            "version = \"1.0.0\"\nunknown = 1",
            "version = \"1.0.0\"\n[[module]]\nname = \"a\"\n[[module.asset]]\nurl = \"https://x/y\"\ntarget = \"y\"",
            "version = \"1.0.0\"\n[[module]]\nname = \"a\"\n[[module.asset]]\npath = \"x\"\ntarget = \"../y\"",
            "version = \"1.0.0\"\n[[module]]\nname = \"a\"\n[[module.asset]]\npath = \"x\"\nurl = \"https://x/y\"\ntarget = \"y\"",
            "version = \"1.0.0\"\n[[module]]\nname = \"a\"\n[[module.asset]]\ngit = \"x\"\ntarget = \"y\"",
            "version = \"1.0.0\"\n[[module]]\nname = \"a\"\n[[module.step]]\nargv = []",
            "version = \"1.0.0\"\n[[module]]\nname = \"a\"\n[[module]]\nname = \"a\"",
        ];
        for text in bad {
            assert!(parse(text).is_err(), "accepted: {text}");
        }
    }
}
