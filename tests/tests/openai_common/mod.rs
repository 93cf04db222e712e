//! What the tests of the llm plugin's `backend = openai` share (`openai.rs` against a real
//! llama-server, `openai_protocol.rs` against a scripted one): the host config and the
//! requests.

use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use voicehost_proto::llm::v1::llm_service_client::LlmServiceClient;
use voicehost_proto::llm::v1::{CompleteRequest, LlmChunk};
use voicehost_tests::{Setup, free_port, model};

/// The Modelfile's system prompt.
pub const SYSTEM: &str = "You are a helpful voice assistant. Answer in one short sentence.";
/// The model asked for by default: the name llama-server gives SmolLM2 (`--alias`).
pub const MODEL: &str = "smollm2";

/// A host with the logger and the llm plugin on `backend = openai` at `url`, plus `keys`.
pub fn openai_setup(url: &str, keys: &[(&str, &str)], modelfile_extra: &str) -> (Setup, u16) {
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100");
    let port = free_port();
    let modelfile = setup.dir.path().join("Modelfile");
    std::fs::write(
        &modelfile,
        format!(
            "FROM {}\nSYSTEM \"\"\"{SYSTEM}\"\"\"\nPARAMETER temperature 0\n{modelfile_extra}",
            model("SmolLM2-135M-Instruct.Q4_1.gguf").display()
        ),
    )
    .unwrap();
    let base = [
        ("port", port.to_string()),
        ("start_timeout_ms", "120000".to_owned()),
        ("backend", "openai".to_owned()),
        ("modelfile", modelfile.to_str().unwrap().to_owned()),
        ("openai_url", url.to_owned()),
        ("openai_model", MODEL.to_owned()),
    ];
    let base = base.map(|(k, v)| (k.to_owned(), v)).to_vec();
    setup.section_with("llm", base, keys);
    (setup, port)
}

pub fn ask(text: &str, dialog: &str, turn: u32) -> CompleteRequest {
    CompleteRequest {
        text: text.into(),
        dialog_id: dialog.into(),
        turn,
        max_tokens: 0,
        context: String::new(),
        prefill_only: false,
    }
}

/// Every chunk of a reply, and when the first came.
pub async fn reply(
    llm: &mut LlmServiceClient<tonic::transport::Channel>,
    req: CompleteRequest,
) -> (Vec<LlmChunk>, Duration) {
    let asked = Instant::now();
    let mut stream = llm.complete(req).await.unwrap().into_inner();
    let (mut chunks, mut first) = (Vec::new(), Duration::ZERO);
    while let Some(c) = stream.next().await {
        if chunks.is_empty() {
            first = asked.elapsed();
        }
        chunks.push(c.unwrap());
    }
    (chunks, first)
}

pub fn text(chunks: &[LlmChunk]) -> String {
    chunks.iter().map(|c| c.text.as_str()).collect()
}

/// `voicehost run` to its exit (the llm never serves): what it printed.
pub async fn run_output(setup: Setup) -> String {
    let out =
        tokio::task::spawn_blocking(move || setup.run_to_exit("run", Duration::from_secs(120)).1)
            .await
            .unwrap();
    let said = out
        .lines()
        .rfind(|l| l.starts_with("voicehost:"))
        .unwrap_or_default();
    eprintln!("{said}");
    out
}
