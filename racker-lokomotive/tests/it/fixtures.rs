//! Racks, choices and helpers shared by the integration tests.

use std::path::PathBuf;

use racker_inventory::{
    AddressPlan, Inventory, LocalInterface, MacAddr, PlanOptions, Provision, PublicIps, Selection,
    SelectionOptions, StorageCount, StorageProvider, select,
};
use racker_lokomotive::{
    Backup, BackupCredentials, RenderOptions, Secret, Storage, Tree, render_cluster,
};
use serde::Deserialize;

pub(crate) const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfixturekeyfixturekeyfixturekeyfixtu racker@test";

/// The repository's `docs/examples/`.
pub(crate) fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/examples")
}

/// A generated rack: management node first, then `n` nodes whose types
/// cycle through red/blue/purple (rows deliberately not sorted).
pub(crate) fn generated_csv(n: usize) -> String {
    let mut csv = String::from(
        "Primary MAC address, BMC MAC address, Secondary MAC address, Node Type, Comments\n",
    );
    csv.push_str("02:00:00:ff:00:00, 02:00:00:ff:00:01, 02:00:00:ff:00:02, red, mgmt node\n");
    let types = ["red", "blue", "purple"];
    for i in (0..n).rev() {
        let (hi, lo) = (i / 256, i % 256);
        csv.push_str(&format!(
            "52:54:00:{hi:02x}:{lo:02x}:01, 52:54:00:{hi:02x}:{lo:02x}:02, 52:54:00:{hi:02x}:{lo:02x}:03, {}, rack slot {i}\n",
            types[i % 3]
        ));
    }
    csv
}

/// Static public addresses for every second generated node (the others
/// keep DHCP); gateway and DNS carry over from the first section.
pub(crate) fn generated_public_ini(n: usize) -> String {
    let mut ini = String::from("# generated\n");
    for i in (0..n).step_by(2) {
        let (hi, lo) = (i / 256, i % 256);
        ini.push_str(&format!(
            "[52:54:00:{hi:02x}:{lo:02x}:03]\nip_addr = 198.51.100.{}/24\n",
            10 + i
        ));
        if i == 0 {
            ini.push_str("gateway = 198.51.100.1\ndns = 198.51.100.53\n");
        }
        ini.push('\n');
    }
    ini
}

/// One rendering scenario (the files in `tests/inputs/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    /// `example` or `rack<N>`.
    pub(crate) rack: String,
    /// `flatcar` or `lokomotive`.
    pub(crate) provision: String,
    #[serde(default)]
    pub(crate) num_controllers: Option<usize>,
    #[serde(default = "any")]
    pub(crate) controller_type: String,
    #[serde(default = "none")]
    pub(crate) storage: String,
    #[serde(default = "any")]
    pub(crate) storage_node_type: String,
    #[serde(default)]
    pub(crate) storage_count: Option<usize>,
    #[serde(default)]
    pub(crate) web_ui: bool,
    #[serde(default)]
    pub(crate) backup: bool,
    #[serde(default)]
    pub(crate) public_ips: bool,
    #[serde(default)]
    pub(crate) exclude: Vec<String>,
    #[serde(default)]
    pub(crate) prefix_len: Option<u8>,
}

fn any() -> String {
    "any".into()
}
fn none() -> String {
    "none".into()
}

impl Scenario {
    pub(crate) fn flatcar(rack: &str) -> Self {
        Self {
            rack: rack.into(),
            provision: "flatcar".into(),
            num_controllers: None,
            controller_type: any(),
            storage: none(),
            storage_node_type: any(),
            storage_count: None,
            web_ui: false,
            backup: false,
            public_ips: false,
            exclude: vec![],
            prefix_len: None,
        }
    }

    pub(crate) fn lokomotive(rack: &str) -> Self {
        Self {
            provision: "lokomotive".into(),
            ..Self::flatcar(rack)
        }
    }
}

/// Everything a render needs.
pub(crate) struct Inputs {
    pub(crate) plan: AddressPlan,
    pub(crate) selection: Selection,
    pub(crate) options: RenderOptions,
    pub(crate) public: PublicIps,
}

pub(crate) fn rack_csv(rack: &str) -> (String, MacAddr, String) {
    if rack == "example" {
        let dir = examples_dir();
        let csv = std::fs::read_to_string(dir.join("nodes.csv")).unwrap();
        let ini = std::fs::read_to_string(dir.join("public-ips.ini")).unwrap();
        (csv, "00:11:22:33:44:30".parse().unwrap(), ini)
    } else {
        let n: usize = rack.trim_start_matches("rack").parse().unwrap();
        (
            generated_csv(n),
            "02:00:00:ff:00:02".parse().unwrap(),
            generated_public_ini(n),
        )
    }
}

pub(crate) fn inputs(s: &Scenario) -> Result<Inputs, Box<dyn std::error::Error>> {
    let (csv, pxe_mac, ini) = rack_csv(&s.rack);
    let inventory = Inventory::parse("nodes.csv", csv.as_bytes())?;
    let management = inventory.management(&[LocalInterface {
        name: "eth1".into(),
        mac: pxe_mac,
    }])?;
    let mut plan_options = PlanOptions::default();
    if let Some(len) = s.prefix_len {
        plan_options.prefix_len = len;
        plan_options.subnet_prefix = "172.24.208".into();
    }
    let plan = AddressPlan::new(&inventory, &management, &plan_options)?;
    let lokomotive = s.provision == "lokomotive";
    let storage = match s.storage.as_str() {
        "rook" => StorageProvider::Rook,
        "openebs" => StorageProvider::Openebs,
        _ => StorageProvider::None,
    };
    let selection = select(
        &plan,
        &SelectionOptions {
            provision: if lokomotive {
                Provision::Lokomotive
            } else {
                Provision::Flatcar
            },
            exclude: s
                .exclude
                .iter()
                .map(|m| m.parse())
                .collect::<Result<_, _>>()?,
            num_controllers: s.num_controllers,
            controller_type: s.controller_type.clone(),
            storage_provider: storage,
            storage_node_type: s.storage_node_type.clone(),
            storage_count: s
                .storage_count
                .map_or(StorageCount::All, StorageCount::Count),
            ..SelectionOptions::default()
        },
    )?;
    let public = if s.public_ips {
        PublicIps::parse("public-ips.ini", &ini)?
    } else {
        PublicIps::dhcp()
    };
    let mut options = RenderOptions::new(vec![SSH_KEY.to_owned()]);
    options.racker_version = "0.1.0-test".into();
    options.asset_dir = "/home/core/lokomotive/lokoctl-assets".into();
    options.web_ui = s.web_ui;
    options.storage = match storage {
        StorageProvider::Rook => Storage::Rook,
        StorageProvider::Openebs => Storage::Openebs,
        _ => Storage::None,
    };
    if s.backup {
        options.backup = Some((
            Backup {
                name: "lokomotive".into(),
                bucket: "rack-backups".into(),
                region: "eu-central-1".into(),
            },
            BackupCredentials {
                access_key_id: Secret::new("AKIAFIXTURE"),
                secret_access_key: Secret::new("fixture/secret+key"),
            },
        ));
    }
    Ok(Inputs {
        plan,
        selection,
        options,
        public,
    })
}

pub(crate) fn render_scenario(s: &Scenario) -> Tree {
    let i = inputs(s).unwrap();
    render_cluster(&i.plan, &i.selection, &i.options, &i.public).unwrap()
}

/// The whole tree as one text: a header per file with its mode, then the
/// contents. Ignition configs are shown with their `data:` URLs decoded
/// below the JSON (their raw bytes are checked by the validity tests), and
/// an install config's embedded OS config, identical to the node's
/// `-os.ign` (also checked there), is not repeated.
pub(crate) fn tree_text(tree: &Tree) -> String {
    let mut out = String::new();
    for (path, file) in tree.files() {
        out.push_str(&format!(
            "===== {} (mode {:o}) =====\n",
            path.display(),
            file.mode
        ));
        if path.to_string_lossy().ends_with(".ign") {
            out.push_str(&ignition_text(tree, file.text()));
            continue;
        }
        out.push_str(file.text());
        if !file.text().ends_with('\n') {
            out.push_str("\n[no trailing newline]\n");
        }
    }
    out
}

fn ignition_text(tree: &Tree, json: &str) -> String {
    let mut config: racker_lokomotive::ignition::Config = serde_json::from_str(json).unwrap();
    let mut decoded = Vec::new();
    if let Some(storage) = config.storage.as_mut() {
        for f in &mut storage.files {
            let c = f.contents.as_mut().unwrap();
            let bytes = racker_lokomotive::decode_data_url(&c.source).unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let same_as = tree
                .files()
                .find(|(p, other)| p.to_string_lossy().ends_with("-os.ign") && other.text() == text)
                .map(|(p, _)| p.display().to_string());
            c.source = format!("data:,<{} bytes, below>", text.len());
            decoded.push((
                f.path.clone(),
                same_as.map_or(text, |p| format!("<identical to {p}>\n")),
            ));
        }
    }
    let units: Vec<(String, String)> = config
        .systemd
        .as_mut()
        .map(|s| {
            s.units
                .iter_mut()
                .map(|u| {
                    let c = u.contents.take().unwrap_or_default();
                    u.contents = Some(format!("<{} bytes, below>", c.len()));
                    (u.name.clone(), c)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = config.to_json().unwrap();
    for (path, text) in decoded {
        out.push_str(&format!("--- file {path} ---\n{text}"));
    }
    for (name, text) in units {
        out.push_str(&format!("--- unit {name} ---\n{text}"));
    }
    out
}
