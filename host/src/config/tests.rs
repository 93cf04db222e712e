use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("cfg.txt"))
}

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
    let err = parse("[stt]\naec_enabled = true\nbogus = 1\n").unwrap_err();
    assert_eq!(err.0.len(), 1);
    let text = err.to_string();
    assert!(
        text.starts_with("cfg.txt:3: [stt] bogus: unknown key"),
        "{text}"
    );
    assert!(text.contains("aec_enabled"), "lists valid keys: {text}");
}

#[test]
fn all_errors_are_reported_at_once() {
    let err = parse(
        "[kwd]\nconfidence_threshold = 1.5\ncooldown_ms = -1\n[nope]\n[loader]\nstartup_mode = fast\n",
    )
    .unwrap_err();
    let lines: Vec<usize> = err.0.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 6]);
    assert!(err.0[0].message.contains("a number from 0 to 1"));
    assert!(err.0[3].message.contains("phased_parallel, sequential"));
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
        "[system]\nmodels_dir = {m}\n[stt]\nwhisper_model = {m}/ggml-tiny.en.bin\nvad_model = {m}/mine.onnx\n[tts]\nvoice = af_heart\nvoices_dir = {m}/kokoro/voices\n",
        m = models.display()
    );
    let config = parse(&text).unwrap();
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
    assert!(find("[tts] voice:").contains("--only kokoro-voices"));
    // Only keys in the file count: a third-party tts plugin does not need Kokoro's model.
    assert!(!all.iter().any(|e| e.contains("[tts] model:")), "{all:#?}");

    // Disabled plugins' models are not required.
    let config = parse("[stt]\nenabled = false\n").unwrap();
    assert!(config.check_model_files().is_empty());

    // Present files pass.
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(models.join("ggml-tiny.en.bin"), b"x").unwrap();
    let config = parse(&format!(
        "[stt]\nwhisper_model = {}/ggml-tiny.en.bin\n",
        models.display()
    ))
    .unwrap();
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
fn per_model_thresholds_are_checked() {
    parse("[kwd]\nmodel_thresholds = hey_jarvis_v0.1:0.5, alexa_v0.1:1\n").unwrap();
    parse("[kwd]\nmodel_thresholds =\n").unwrap();
    for bad in ["alexa_v0.1", "alexa_v0.1:1.5", ":0.5", "alexa_v0.1:x"] {
        let err = parse(&format!("[kwd]\nmodel_thresholds = {bad}\n")).unwrap_err();
        assert!(err.to_string().contains("name:score pairs"), "{bad}: {err}");
    }
}
