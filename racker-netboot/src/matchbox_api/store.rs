//! The stored profiles, groups and templates: in memory for lookups, each
//! object also a file under the store directory (written atomically), so
//! they survive a restart. The layout is matchbox's data directory:
//! `profiles/<id>.json`, `groups/<id>.json`, `ignition/<name>`,
//! `generic/<name>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use racker_inventory::MacAddr;

use super::MatchboxApiError;
use super::model::{Group, Profile};
use super::select::{metadata_text, render, select, template_data};
use crate::http::{BootHook, HookReply};
use crate::matchbox::{Boot, ipxe_script};

/// The two kinds of named templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TemplateKind {
    /// Ignition configs and Container Linux Config templates.
    Ignition,
    /// Generic templates.
    Generic,
}

impl TemplateKind {
    fn dir(self) -> &'static str {
        match self {
            TemplateKind::Ignition => "ignition",
            TemplateKind::Generic => "generic",
        }
    }
}

/// Everything stored, as plain data (what the sans-IO lookups work on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// Profiles by id.
    pub profiles: BTreeMap<String, Profile>,
    /// Groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Ignition configs / templates by name.
    pub ignition: BTreeMap<String, Vec<u8>>,
    /// Generic templates by name.
    pub generic: BTreeMap<String, Vec<u8>>,
}

/// The persistent store behind the gRPC API and the HTTP hook.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    contents: Mutex<Contents>,
}

/// Check an id or template name: it becomes a file name.
pub fn check_name(what: &'static str, name: &str) -> Result<(), MatchboxApiError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(MatchboxApiError::Invalid {
            what,
            value: name.to_owned(),
            reason: "use 1 to 200 letters, digits, '.', '_' or '-', not starting with '.'",
        })
    }
}

/// Normalise a group's `mac` selector (any form matchbox accepts).
pub fn normalize_group(mut group: Group) -> Result<Group, MatchboxApiError> {
    check_name("group id", &group.id)?;
    if let Some(mac) = group.selector.get_mut("mac") {
        let parsed: MacAddr = mac.parse().map_err(|_| MatchboxApiError::Invalid {
            what: "group selector mac",
            value: mac.clone(),
            reason: "not a MAC address",
        })?;
        *mac = parsed.to_string();
    }
    Ok(group)
}

impl Store {
    /// Open (creating) the store in `dir`, loading what is there. A broken
    /// file is an error naming it, not skipped.
    pub fn open(dir: &Path) -> Result<Self, MatchboxApiError> {
        let mut contents = Contents::default();
        for sub in ["profiles", "groups", "ignition", "generic"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| MatchboxApiError::io("creating", &d, e))?;
            for (name, path) in files(&d)? {
                let bytes =
                    std::fs::read(&path).map_err(|e| MatchboxApiError::io("reading", &path, e))?;
                let json_err = |source| MatchboxApiError::Json {
                    path: path.clone(),
                    source,
                };
                match sub {
                    "profiles" => {
                        let p: Profile = serde_json::from_slice(&bytes).map_err(json_err)?;
                        contents.profiles.insert(p.id.clone(), p);
                    }
                    "groups" => {
                        let g: Group = serde_json::from_slice(&bytes).map_err(json_err)?;
                        contents.groups.insert(g.id.clone(), g);
                    }
                    "ignition" => {
                        contents.ignition.insert(name, bytes);
                    }
                    _ => {
                        contents.generic.insert(name, bytes);
                    }
                }
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            contents: Mutex::new(contents),
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Contents> {
        // A panic while holding the lock leaves consistent data (every
        // change is a single insert or remove after its file is written).
        self.contents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of everything stored.
    pub fn contents(&self) -> Contents {
        self.lock().clone()
    }

    /// Create or replace a profile.
    pub fn put_profile(&self, profile: Profile) -> Result<(), MatchboxApiError> {
        check_name("profile id", &profile.id)?;
        let path = self
            .dir
            .join("profiles")
            .join(format!("{}.json", profile.id));
        let mut c = self.lock();
        write_atomic(&path, &json_bytes(&profile)?, 0o644)?;
        c.profiles.insert(profile.id.clone(), profile);
        Ok(())
    }

    /// Create or replace a group (its `mac` selector normalised).
    pub fn put_group(&self, group: Group) -> Result<(), MatchboxApiError> {
        let group = normalize_group(group)?;
        let path = self.dir.join("groups").join(format!("{}.json", group.id));
        let mut c = self.lock();
        write_atomic(&path, &json_bytes(&group)?, 0o644)?;
        c.groups.insert(group.id.clone(), group);
        Ok(())
    }

    /// Create or replace a template.
    pub fn put_template(
        &self,
        kind: TemplateKind,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), MatchboxApiError> {
        check_name("template name", name)?;
        let path = self.dir.join(kind.dir()).join(name);
        let mut c = self.lock();
        // Templates hold SSH keys and cluster secrets: owner-only.
        write_atomic(&path, &bytes, 0o600)?;
        match kind {
            TemplateKind::Ignition => c.ignition.insert(name.to_owned(), bytes),
            TemplateKind::Generic => c.generic.insert(name.to_owned(), bytes),
        };
        Ok(())
    }

    /// A profile by id.
    pub fn profile(&self, id: &str) -> Option<Profile> {
        self.lock().profiles.get(id).cloned()
    }

    /// A group by id.
    pub fn group(&self, id: &str) -> Option<Group> {
        self.lock().groups.get(id).cloned()
    }

    /// A template by name.
    pub fn template(&self, kind: TemplateKind, name: &str) -> Option<Vec<u8>> {
        let c = self.lock();
        match kind {
            TemplateKind::Ignition => c.ignition.get(name).cloned(),
            TemplateKind::Generic => c.generic.get(name).cloned(),
        }
    }

    /// Delete a profile; `false` when there was none.
    pub fn delete_profile(&self, id: &str) -> Result<bool, MatchboxApiError> {
        check_name("profile id", id)?;
        let mut c = self.lock();
        remove(&self.dir.join("profiles").join(format!("{id}.json")))?;
        Ok(c.profiles.remove(id).is_some())
    }

    /// Delete a group; `false` when there was none.
    pub fn delete_group(&self, id: &str) -> Result<bool, MatchboxApiError> {
        check_name("group id", id)?;
        let mut c = self.lock();
        remove(&self.dir.join("groups").join(format!("{id}.json")))?;
        Ok(c.groups.remove(id).is_some())
    }

    /// Delete a template; `false` when there was none.
    pub fn delete_template(
        &self,
        kind: TemplateKind,
        name: &str,
    ) -> Result<bool, MatchboxApiError> {
        check_name("template name", name)?;
        let mut c = self.lock();
        remove(&self.dir.join(kind.dir()).join(name))?;
        Ok(match kind {
            TemplateKind::Ignition => c.ignition.remove(name).is_some(),
            TemplateKind::Generic => c.generic.remove(name).is_some(),
        })
    }

    /// All profiles, by id.
    pub fn profiles(&self) -> Vec<Profile> {
        self.lock().profiles.values().cloned().collect()
    }

    /// All groups, by id.
    pub fn groups(&self) -> Vec<Group> {
        self.lock().groups.values().cloned().collect()
    }
}

impl Contents {
    /// The group (and its profile, when stored) selected by `labels`.
    pub fn select(&self, labels: &BTreeMap<String, String>) -> Option<(&Group, Option<&Profile>)> {
        let group = select(self.groups.values(), labels)?;
        Some((group, self.profiles.get(&group.profile)))
    }

    /// What matchbox answers on `endpoint` (`/ipxe`, `/ignition`,
    /// `/generic`, `/metadata`) for `labels` (with `mac` normalised), or
    /// `None` when no stored group matches (racker's own content answers
    /// then).
    pub fn answer(
        &self,
        endpoint: &str,
        labels: &BTreeMap<String, String>,
        raw_query: &str,
    ) -> Option<HookReply> {
        let (group, profile) = self.select(labels)?;
        let reply = |status, content_type, body: Vec<u8>| {
            Some(HookReply {
                status,
                content_type,
                body,
            })
        };
        let text =
            |status, body: String| reply(status, "text/plain; charset=utf-8", body.into_bytes());
        let Some(profile) = profile else {
            return text(
                404,
                format!(
                    "racker: group {:?} references profile {:?}, which is not stored\n",
                    group.id, group.profile
                ),
            );
        };
        let data = || template_data(group, labels, raw_query);
        match endpoint {
            "/ipxe" => {
                let boot = profile.boot.clone().unwrap_or_default();
                let p = crate::matchbox::Profile {
                    id: profile.id.clone(),
                    boot: Boot {
                        kernel: boot.kernel,
                        initrd: boot.initrd,
                        args: boot.args,
                    },
                    ..crate::matchbox::Profile::default()
                };
                text(200, ipxe_script(&p))
            }
            "/ignition" => {
                let id = &profile.ignition_id;
                let Some(bytes) = self.ignition.get(id).filter(|_| !id.is_empty()) else {
                    return text(
                        404,
                        format!("racker: profile {:?} has no Ignition config\n", profile.id),
                    );
                };
                if id.ends_with(".ign") || id.ends_with(".ignition") {
                    // Raw Ignition is served as stored, as matchbox does.
                    return reply(200, "application/json", bytes.clone());
                }
                let rendered = String::from_utf8_lossy(bytes);
                match render(&rendered, &data()) {
                    Ok(out) if serde_json::from_str::<serde_json::Value>(&out).is_ok() => {
                        reply(200, "application/json", out.into_bytes())
                    }
                    Ok(_) => text(
                        500,
                        format!(
                            "racker: {id:?} is a Container Linux Config; racker serves Ignition \
                             JSON (templates or raw), it does not transpile Container Linux \
                             Configs (store the config transpiled, e.g. with raw_ignition)\n"
                        ),
                    ),
                    Err(e) => text(500, format!("racker: rendering {id:?}: {e}\n")),
                }
            }
            "/generic" => {
                let id = &profile.generic_id;
                let Some(bytes) = self.generic.get(id).filter(|_| !id.is_empty()) else {
                    return text(
                        404,
                        format!("racker: profile {:?} has no generic config\n", profile.id),
                    );
                };
                match render(&String::from_utf8_lossy(bytes), &data()) {
                    Ok(out) => text(200, out),
                    Err(e) => text(500, format!("racker: rendering {id:?}: {e}\n")),
                }
            }
            "/metadata" => text(200, metadata_text(&data())),
            _ => None,
        }
    }
}

impl BootHook for Store {
    fn answer(
        &self,
        endpoint: &str,
        labels: &BTreeMap<String, String>,
        raw_query: &str,
    ) -> Option<HookReply> {
        let mut labels = labels.clone();
        if let Some(mac) = labels.get_mut("mac") {
            // An unparsable MAC falls through to racker's 400 answer.
            *mac = mac.parse::<MacAddr>().ok()?.to_string();
        }
        self.lock().answer(endpoint, &labels, raw_query)
    }
}

fn json_bytes<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, MatchboxApiError> {
    let mut v = serde_json::to_vec_pretty(value).map_err(|source| MatchboxApiError::Json {
        path: PathBuf::new(),
        source,
    })?;
    v.push(b'\n');
    Ok(v)
}

fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, MatchboxApiError> {
    let entries = std::fs::read_dir(dir).map_err(|e| MatchboxApiError::io("reading", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| MatchboxApiError::io("reading", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Leftover temporary files of an interrupted write start with '.'.
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        out.push((name, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Write `bytes` to `path` atomically and durably (`racker_fsutil`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), MatchboxApiError> {
    racker_fsutil::write_atomic(path, bytes, mode)
        .map_err(|e| MatchboxApiError::io("writing", path, e))
}

fn remove(path: &Path) -> Result<(), MatchboxApiError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(MatchboxApiError::io("removing", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matchbox_api::model::NetBoot;

    fn store_with_node(dir: &Path) -> Store {
        let s = Store::open(dir).unwrap();
        s.put_profile(Profile {
            id: "install-node1".into(),
            boot: Some(NetBoot {
                kernel: "/assets/flatcar/current/flatcar_production_pxe.vmlinuz".into(),
                initrd: vec!["/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz".into()],
                args: vec!["initrd=flatcar_production_pxe_image.cpio.gz".into()],
            }),
            ignition_id: "install-node1.ign.tmpl".into(),
            ..Profile::default()
        })
        .unwrap();
        s.put_template(
            TemplateKind::Ignition,
            "install-node1.ign.tmpl",
            br#"{"ignition":{"version":"3.3.0"},"x":"{{.hostname}}"}"#.to_vec(),
        )
        .unwrap();
        s.put_group(Group {
            id: "install-node1".into(),
            profile: "install-node1".into(),
            selector: [("mac".to_owned(), "52-54-00-AA-BB-01".to_owned())].into(),
            metadata: serde_json::json!({"hostname": "node1"})
                .as_object()
                .unwrap()
                .clone(),
            ..Group::default()
        })
        .unwrap();
        s
    }

    #[test]
    fn stored_objects_survive_a_restart_and_are_served() {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with_node(dir.path()));
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(
            s.group("install-node1").unwrap().selector["mac"],
            "52:54:00:aa:bb:01"
        );
        let labels: BTreeMap<String, String> =
            [("mac".to_owned(), "52-54-00-aa-bb-01".to_owned())].into();
        let r = BootHook::answer(&s, "/ignition", &labels, "mac=52-54-00-aa-bb-01").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"ignition":{"version":"3.3.0"},"x":"node1"}"#
        );
        let r = BootHook::answer(&s, "/ipxe", &labels, "").unwrap();
        assert!(String::from_utf8(r.body).unwrap().starts_with("#!ipxe\nkernel /assets/flatcar/current/flatcar_production_pxe.vmlinuz initrd=flatcar_production_pxe_image.cpio.gz\n"));
        let other: BTreeMap<String, String> =
            [("mac".to_owned(), "52:54:00:aa:bb:02".to_owned())].into();
        assert!(BootHook::answer(&s, "/ignition", &other, "").is_none());
        assert!(s.delete_group("install-node1").unwrap());
        assert!(!s.delete_group("install-node1").unwrap());
        let s = Store::open(dir.path()).unwrap();
        assert!(s.groups().is_empty());
        assert_eq!(s.profiles().len(), 1);
    }

    #[test]
    fn names_that_are_not_file_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(
                s.put_template(TemplateKind::Generic, bad, vec![]).is_err(),
                "{bad}"
            );
        }
        let g = Group {
            id: "g".into(),
            selector: [("mac".to_owned(), "zz".to_owned())].into(),
            ..Group::default()
        };
        assert!(s.put_group(g).is_err());
    }
}
