use voicehost_plugin_runtime::keys::{Key, Kind};

use super::plugins::Declared;
use super::schema::SECTIONS;
use super::*;
use crate::worker::SectionProblem;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("cfg.txt"))
}

/// What a library in `service`'s slot would declare (the host gets it from a worker).
fn declares(service: Service, keys: &[Key]) -> Declared {
    Declared {
        service,
        plugin: format!("test-{service}"),
        keys: Some(keys.iter().map(Key::to_abi).collect()),
        problems: Vec::new(),
    }
}

/// `text` parsed, then its plugin sections checked against `declared`: every error, by
/// line, as `Config::load` reports them.
fn check(text: &str, declared: &[Declared]) -> (Config, Vec<ConfigError>) {
    let (mut config, mut errors) = Config::parse_all(text, Path::new("cfg.txt"));
    errors.extend(config.check_plugin_keys(declared));
    errors.sort_by_key(|e| e.line);
    (config, errors)
}

const KWD_KEYS: &[Key] = &[
    Key::new(
        "confidence_threshold",
        Kind::Float { min: 0.0, max: 1.0 },
        "0.6",
        "",
    ),
    Key::new(
        "cooldown_ms",
        Kind::Int {
            min: 0,
            max: 3_600_000,
        },
        "1000",
        "",
    ),
    Key::new("model_thresholds", Kind::NamedScores, "", ""),
];

#[test]
fn defaults_apply_and_only_present_plugins_are_enabled() {
    let c = parse("[logger]\n[loader]\nplugin_dir = /opt/vh\n").unwrap();
    let logger = c.plugin(Service::Logger).unwrap();
    assert!(logger.enabled);
    assert_eq!(logger.port, 5001);
    assert_eq!(
        logger.library,
        Path::new("/opt/vh/libvoicehost_plugin_logger.so")
    );
    assert!(!c.plugin(Service::Stt).unwrap().enabled);
    assert_eq!(c.loader.restart_backoff.len(), 3);
    assert_eq!(c.dialog.warmup_greeting, "Hi, Master!");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let stt = declares(
        Service::Stt,
        &[Key::new("aec_enabled", Kind::Bool, "true", "")],
    );
    let (_, errors) = check("[stt]\naec_enabled = true\nbogus = 1\n", &[stt]);
    assert_eq!(errors.len(), 1);
    let text = errors[0].to_string();
    assert!(
        text.starts_with("cfg.txt:3: [stt] bogus: unknown key"),
        "{text}"
    );
    assert!(text.contains("aec_enabled"), "lists valid keys: {text}");
    assert!(text.contains("test-stt"), "names the plugin: {text}");
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = "[kwd]\nconfidence_threshold = 1.5\ncooldown_ms = -1\n[nope]\n[loader]\nstartup_mode = fast\n";
    let host_errors = parse(text).unwrap_err();
    let lines: Vec<usize> = host_errors.0.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        vec![4, 6],
        "the host's own keys, without any library"
    );
    assert!(
        host_errors.0[1]
            .message
            .contains("phased_parallel, sequential")
    );
    let (_, errors) = check(text, &[declares(Service::Kwd, KWD_KEYS)]);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 6]);
    assert!(errors[0].message.contains("a number from 0 to 1"));
    assert!(errors[1].message.contains("an integer from 0 to 3600000"));
}

#[test]
fn a_plugin_that_declares_nothing_gets_only_slot_and_x_keys() {
    let old = Declared {
        service: Service::Tts,
        plugin: "old-tts".to_owned(),
        keys: None,
        problems: Vec::new(),
    };
    let (_, errors) = check("[tts]\nport = 7006\nx_anything = 1\nspeed = 1.0\n", &[old]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.starts_with("cfg.txt:4: [tts] speed: unknown key: old-tts declares no config keys"),
        "{text}"
    );
    // Undeclared x_ keys pass a declaring plugin too: another plugin's settings.
    let (_, errors) = check("[kwd]\nx_other = 1\n", &[declares(Service::Kwd, KWD_KEYS)]);
    assert!(errors.is_empty(), "{errors:?}");
}

/// What the plugin's own check of a section found is reported at the key's line, else at
/// the section header, with the other errors of the file.
#[test]
fn section_problems_are_reported_at_their_keys() {
    let problem = |key: &str, message: &str| SectionProblem {
        key: key.to_owned(),
        message: message.to_owned(),
    };
    let mut kwd = declares(Service::Kwd, KWD_KEYS);
    kwd.problems = vec![
        problem("cooldown_ms", "too short with this threshold"),
        problem("model_thresholds", "needed with two models"),
        problem("", "the check failed"),
    ];
    let text = "[loader]
startup_mode = fast

[kwd]
confidence_threshold = 0.1
cooldown_ms = 10
";
    let (_, errors) = check(text, &[kwd]);
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        all[1..],
        [
            "cfg.txt:4: [kwd] model_thresholds: needed with two models",
            "cfg.txt:4: [kwd]: the check failed",
            "cfg.txt:6: [kwd] cooldown_ms: too short with this threshold",
        ],
        "{all:#?}"
    );
    assert!(
        all[0].starts_with("cfg.txt:2: [loader] startup_mode"),
        "{all:#?}"
    );
}

#[test]
fn duplicate_ports_and_non_loopback_are_errors() {
    let err = parse("[logger]\nport = 5002\n[loader]\nbind_addr = 0.0.0.0\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("also used by [loader]"), "{text}");
    assert!(text.contains("not a loopback address"), "{text}");
}

#[test]
fn shipped_config_is_valid_and_documents_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/config.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    parse(&text).unwrap();
    for def in SECTIONS {
        assert!(
            text.contains(&format!("[{}]", def.name)),
            "section [{}] missing",
            def.name
        );
        for key in def.key_names() {
            assert!(
                text.contains(&format!("{key} =")) || text.contains(&format!("# {key} =")),
                "key {key} of [{}] is not documented in config/config.txt",
                def.name
            );
        }
    }
}

#[test]
fn crate_name_from_library() {
    assert_eq!(
        crate_name_of(Path::new("target/release/libvoicehost_plugin_stt.so")),
        "voicehost-plugin-stt"
    );
}

#[test]
fn missing_model_files_name_the_fetch_command() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let text = format!(
        "[system]\nmodels_dir = {m}\n[stt]\nwhisper_model = {m}/ggml-tiny.en.bin\nvad_model = {m}/mine.onnx\n[tts]\n",
        m = models.display()
    );
    let stt = declares(
        Service::Stt,
        &[
            Key::new("whisper_model", Kind::ModelFile, "", ""),
            Key::new("vad_model", Kind::ModelFile, "", ""),
        ],
    );
    let tts = declares(Service::Tts, &[Key::new("model", Kind::ModelFile, "", "")]);
    let declared = [stt, tts];
    let (config, errors) = check(&text, &declared);
    assert!(errors.is_empty(), "{errors:?}");
    let errors = config.check_model_files();
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let find = |needle: &str| {
        all.iter()
            .find(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("no error about {needle}: {all:#?}"))
            .clone()
    };
    let whisper = find("[stt] whisper_model");
    assert!(whisper.starts_with("cfg.txt:4:"), "{whisper}");
    assert!(
        whisper.contains("fetch it with `voicehost models fetch --only whisper-tiny.en`"),
        "{whisper}"
    );
    assert!(find("[stt] vad_model").contains("point [stt] vad_model at an existing file"));
    // Only keys in the file count: a third-party tts plugin does not need Kokoro's model.
    assert!(!all.iter().any(|e| e.contains("[tts] model:")), "{all:#?}");

    // Present files pass.
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(models.join("ggml-tiny.en.bin"), b"x").unwrap();
    let (config, _) = check(
        &format!(
            "[stt]\nwhisper_model = {}/ggml-tiny.en.bin\n",
            models.display()
        ),
        &declared,
    );
    assert!(
        !config
            .check_model_files()
            .iter()
            .any(|e| e.place == "[stt] whisper_model")
    );
}

#[test]
fn kwd_listens_to_the_stt_slot_and_stt_to_the_tts_slot() {
    let c = parse("[tts]\nport = 7006\n[stt]\nport = 7004\n[kwd]\n").unwrap();
    let value = |slot: Service, key: &str| {
        c.plugin(slot)
            .unwrap()
            .section
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        value(Service::Kwd, "audio_source").as_deref(),
        Some("127.0.0.1:7004")
    );
    assert_eq!(
        value(Service::Stt, "render_reference").as_deref(),
        Some("127.0.0.1:7006")
    );
    // A section that names its own address keeps it.
    let c = parse("[kwd]\naudio_source = 127.0.0.1:9000\n").unwrap();
    let kwd = c.plugin(Service::Kwd).unwrap();
    let sources: Vec<_> = kwd
        .section
        .iter()
        .filter(|(k, _)| k == "audio_source")
        .collect();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].1, "127.0.0.1:9000");
}

#[test]
fn the_wyoming_server_is_pointed_at_the_enabled_kwd_stt_and_tts() {
    let c = parse(
        "[tts]\nport = 7006\n[stt]\nport = 7004\n[kwd]\nenabled = false\n[wyoming]\n\
         stt_address = 127.0.0.1:9004\n",
    )
    .unwrap();
    let wyoming = &c.plugin(Service::Wyoming).unwrap().section;
    let value = |key: &str| {
        let found: Vec<&str> = wyoming
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{key}: {found:?}");
        found[0].to_owned()
    };
    assert_eq!(value("tts_address"), "127.0.0.1:7006");
    assert_eq!(
        value("stt_address"),
        "127.0.0.1:9004",
        "its own address is kept"
    );
    assert_eq!(
        value("kwd_address"),
        "",
        "kwd is disabled: no wake word served"
    );
}

#[test]
fn per_model_thresholds_are_checked() {
    let kwd = [declares(Service::Kwd, KWD_KEYS)];
    for good in ["hey_jarvis_v0.1:0.5, alexa_v0.1:1", ""] {
        let (_, errors) = check(&format!("[kwd]\nmodel_thresholds = {good}\n"), &kwd);
        assert!(errors.is_empty(), "{good}: {errors:?}");
    }
    for bad in ["alexa_v0.1", "alexa_v0.1:1.5", ":0.5", "alexa_v0.1:x"] {
        let (_, errors) = check(&format!("[kwd]\nmodel_thresholds = {bad}\n"), &kwd);
        assert_eq!(errors.len(), 1, "{bad}");
        assert!(
            errors[0].message.contains("name:score pairs"),
            "{bad}: {errors:?}"
        );
    }
}
