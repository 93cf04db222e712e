//! `voicehost plugin info FILE`: what a plugin library says about itself and whether this
//! host would load it.
//!
//! The library is loaded here, in the CLI process, exactly as the loader loads it
//! ([`PluginLibrary::load`]: ABI version, then the layout of every ABI type, then `info()`);
//! it is never started. Libraries are never unloaded; the process exits right after.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use voicehost_plugin_api::ABI_VERSION;
use voicehost_plugin_api::abi::PLUGIN_API_VERSION;

use crate::plugin::{PluginLibrary, TEST_KIND, declared_abi_version};
use crate::service::Service;
use crate::worker::{KeySpec, LibInfo};

#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load a plugin library as the loader does (without starting it) and print its name,
    /// kind, versions, proto package, features and whether this host can load it. Exits 0
    /// when it is loadable, 1 when it is not.
    Info {
        /// The plugin library (.so).
        file: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Everything `plugin info` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file: String,
    pub loadable: bool,
    /// Why it is not loadable: the loader's own message.
    pub error: Option<String>,
    /// The ABI version the library declares (known even for most refused libraries).
    pub abi_version: Option<String>,
    pub host: HostVersions,
    /// What the plugin says about itself; `None` when it could not be loaded.
    pub plugin: Option<PluginFacts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostVersions {
    pub abi_version: &'static str,
    pub plugin_api_version: &'static str,
    /// The service slots this host has.
    pub slots: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PluginFacts {
    pub name: String,
    pub kind: String,
    pub version: String,
    /// The voicehost-plugin-api version it was built with (from its root module's layout);
    /// `None` when that layout is not voicehost-plugin-api's.
    pub plugin_api_version: Option<String>,
    pub proto_package: String,
    pub features: Vec<String>,
    /// Whether `kind` is one of this host's slots.
    pub kind_is_slot: bool,
    /// The package this host speaks to a service of this kind (`voicehost.<kind>.v1`);
    /// `None` when the kind is not a slot.
    pub host_proto_package: Option<String>,
    pub proto_package_matches: bool,
    /// The keys its config section takes (kind, bounds, default, doc); `None` when it
    /// declares none (then only the slot keys and `x_` keys reach it).
    pub config_keys: Option<Vec<KeySpec>>,
}

/// Runs `voicehost plugin …`.
pub fn main(args: PluginArgs) -> ExitCode {
    match args.command {
        PluginCommand::Info { file, json } => {
            let report = inspect(&file);
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("voicehost plugin info: cannot write JSON: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", render(&report));
            }
            if report.loadable {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn slots() -> Vec<&'static str> {
    Service::ALL.iter().map(|s| s.name()).collect()
}

/// Loads `file` as the loader would and describes it.
pub fn inspect(file: &Path) -> Report {
    // dlopen searches the library path for a name without a slash: give it the real path.
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    let host = HostVersions {
        abi_version: ABI_VERSION,
        plugin_api_version: PLUGIN_API_VERSION,
        slots: slots(),
    };
    match PluginLibrary::load(&path) {
        Ok(library) => {
            let plugin = facts(&library, &host.slots);
            Report {
                file: path.display().to_string(),
                loadable: true,
                error: None,
                abi_version: Some(library.info.abi_version.to_string()),
                host,
                plugin: Some(plugin),
            }
        }
        Err(error) => Report {
            file: path.display().to_string(),
            loadable: false,
            abi_version: path
                .is_file()
                .then(|| declared_abi_version(&path))
                .flatten(),
            error: Some(error.reason()),
            host,
            plugin: None,
        },
    }
}

fn facts(library: &PluginLibrary, slots: &[&str]) -> PluginFacts {
    let info = &library.info;
    let kind = info.kind.to_string();
    let kind_is_slot = slots.contains(&kind.as_str());
    let host_proto_package = kind
        .parse::<Service>()
        .ok()
        .map(|svc| svc.proto_package().to_owned());
    let proto_package = info.proto_package.to_string();
    PluginFacts {
        name: info.name.to_string(),
        version: info.version.to_string(),
        plugin_api_version: library.api_version.clone(),
        proto_package_matches: host_proto_package.as_deref() == Some(proto_package.as_str()),
        proto_package,
        features: info.features.iter().map(|f| f.to_string()).collect(),
        kind_is_slot,
        host_proto_package,
        kind,
        config_keys: LibInfo::of(library).config_keys,
    }
}

/// The text form: one `label: value` line each.
pub fn render(report: &Report) -> String {
    let mut lines: Vec<(&str, String)> = vec![("file", report.file.clone())];
    let host = &report.host;
    if let Some(p) = &report.plugin {
        lines.push(("name", p.name.clone()));
        lines.push(("kind", kind_line(p, &host.slots)));
        lines.push(("version", p.version.clone()));
    }
    lines.push((
        "ABI",
        format!(
            "{} (host: {})",
            report.abi_version.as_deref().unwrap_or("unknown"),
            host.abi_version
        ),
    ));
    if let Some(p) = &report.plugin {
        let api = match &p.plugin_api_version {
            Some(v) => v.clone(),
            None => "unknown (its root module is not voicehost-plugin-api's)".to_owned(),
        };
        lines.push((
            "plugin-api",
            format!("{api} (host: {})", host.plugin_api_version),
        ));
        lines.push(("proto package", proto_line(p)));
        let features = if p.features.is_empty() {
            "none".to_owned()
        } else {
            p.features.join(", ")
        };
        lines.push(("features", features));
        lines.push(("config keys", keys_text(p.config_keys.as_deref())));
    } else {
        lines.push((
            "plugin-api",
            format!("unknown (host: {})", host.plugin_api_version),
        ));
    }
    lines.push((
        "loadable",
        match &report.error {
            None => "yes".to_owned(),
            Some(why) => format!("no — {why}"),
        },
    ));
    lines
        .iter()
        .map(|(label, value)| format!("{:<14} {value}\n", format!("{label}:")))
        .collect()
}

/// One line per declared key: `name = default  (kind) doc`.
fn keys_text(keys: Option<&[KeySpec]>) -> String {
    match keys {
        None => "none declared (only the slot keys and x_ keys reach it)".to_owned(),
        Some([]) => "none".to_owned(),
        Some(keys) => keys
            .iter()
            .map(|k| format!("\n  {} = {}  ({}) {}", k.name, k.default, k.kind, k.doc))
            .collect(),
    }
}

fn kind_line(p: &PluginFacts, slots: &[&str]) -> String {
    if p.kind_is_slot {
        format!("{} (a slot of this host)", p.kind)
    } else if p.kind == TEST_KIND {
        format!(
            "{} (a test fixture; the host accepts it in any slot)",
            p.kind
        )
    } else {
        format!(
            "{} (not a slot of this host, which has {}; no config section can load it)",
            p.kind,
            slots.join(", ")
        )
    }
}

fn proto_line(p: &PluginFacts) -> String {
    match &p.host_proto_package {
        Some(_) if p.proto_package_matches => {
            format!("{} (what this host speaks to {})", p.proto_package, p.kind)
        }
        Some(host) => format!(
            "{} (this host speaks {host} to {}: it cannot talk to this plugin)",
            p.proto_package, p.kind
        ),
        None => format!("{} (no slot of this host speaks it)", p.proto_package),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: &str, proto: &str, api: Option<&str>) -> Report {
        let host = HostVersions {
            abi_version: "1.0.0",
            plugin_api_version: "0.1.1",
            slots: vec![Service::Logger.name(), Service::Tts.name()],
        };
        let library_kind_is_slot = host.slots.contains(&kind);
        let host_proto_package = library_kind_is_slot.then(|| format!("voicehost.{kind}.v1"));
        Report {
            file: "/p/lib.so".to_owned(),
            loadable: true,
            error: None,
            abi_version: Some("1.0.0".to_owned()),
            plugin: Some(PluginFacts {
                name: "n".to_owned(),
                kind: kind.to_owned(),
                version: "0.3.0".to_owned(),
                plugin_api_version: api.map(str::to_owned),
                proto_package: proto.to_owned(),
                features: vec![],
                kind_is_slot: library_kind_is_slot,
                proto_package_matches: host_proto_package.as_deref() == Some(proto),
                host_proto_package,
                config_keys: None,
            }),
            host,
        }
    }

    #[test]
    fn text_names_versions_and_compatibility() {
        let text = render(&report("tts", "voicehost.tts.v1", Some("0.1.1")));
        assert!(
            text.contains("kind:          tts (a slot of this host)\n"),
            "{text}"
        );
        assert!(
            text.contains("ABI:           1.0.0 (host: 1.0.0)\n"),
            "{text}"
        );
        assert!(
            text.contains("plugin-api:    0.1.1 (host: 0.1.1)\n"),
            "{text}"
        );
        assert!(text.contains("features:      none\n"), "{text}");
        assert!(text.ends_with("loadable:      yes\n"), "{text}");

        let text = render(&report("tts", "voicehost.tts.v2", None));
        assert!(text.contains("plugin-api:    unknown"), "{text}");
        assert!(
            text.contains("this host speaks voicehost.tts.v1 to tts"),
            "{text}"
        );

        let text = render(&report("asr", "x.v1", None));
        assert!(
            text.contains("asr (not a slot of this host, which has logger, tts;"),
            "{text}"
        );
    }

    #[test]
    fn refused_library_shows_why() {
        let mut r = report("tts", "voicehost.tts.v1", None);
        r.plugin = None;
        r.loadable = false;
        r.error = Some("it implements plugin ABI 2.0.0".to_owned());
        let text = render(&r);
        assert!(
            text.ends_with("loadable:      no — it implements plugin ABI 2.0.0\n"),
            "{text}"
        );
        assert!(!text.contains("name:"), "{text}");
    }
}
