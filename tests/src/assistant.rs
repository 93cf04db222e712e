//! The whole assistant as a user meets it: [`Assistant`] starts the five real plugins
//! (tts, llm on SmolLM2, stt with a simulated speaker → microphone echo path, kwd, the
//! logger) with a dialog section, and plays the user's side as WAV files switched into
//! stt's capture (`SetInput`). What the assistant says goes to a WAV file
//! ([`Assistant::said`]); playback events, app.log events and the dialog's transcript are
//! read with the helpers beside it. One assistant at a time: hold [`SERIAL`].
//!
//! [`Assistant::on_sound_server`] runs it on real sound devices instead: a PulseAudio
//! server of its own ([`SoundServer`]) whose default devices it opens through cpal with
//! `input = auto` and `output = auto`, as on a user's machine, with the shipped voice
//! (Piper) rather than Kokoro; the user's side is played
//! into the microphone, and what it said is recorded from the speaker.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use voicehost_bench::sound_server::{MIC, Recording, SPEAKER, SoundServer};
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::stt::v1::SetInputRequest;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind};

use crate::{
    AppLine, HostProc, Setup, app_events, channel, free_port, kwd_micro_keys, model, piper_keys,
    resample_16k, scene, stt_keys, tts_keys, words, write_wav_16k,
};

/// The Modelfile's instructions for the usual tests: a one-sentence answer.
pub const SHORT_ANSWERS: &str = "SYSTEM \"\"\"You are a helpful voice assistant. Answer in one \
                                 short sentence.\"\"\"\nPARAMETER temperature 0\n";

/// One assistant at a time: each runs five plugins in real time on two cores.
pub static SERIAL: Mutex<()> = Mutex::const_new(());

/// A running assistant: its config, its host, the ports of the services a test talks to,
/// and the WAV file tts writes what it says to.
#[derive(Debug)]
pub struct Assistant {
    pub setup: Setup,
    pub host: HostProc,
    pub stt: u16,
    pub tts: u16,
    pub llm: u16,
    pub out: PathBuf,
    sound: Option<Sound>,
}

/// The sound server an assistant runs on, and the recording of its speaker.
#[derive(Debug)]
struct Sound {
    server: SoundServer,
    speaker: std::sync::Mutex<Option<Recording>>,
}

impl Assistant {
    /// All five plugins; stt hears silence until the test switches its input.
    pub fn start(greeting: &str, stt_extra: &[(&str, &str)]) -> Assistant {
        Self::start_with(greeting, stt_extra, &[])
    }

    /// [`Assistant::start`] with `[loader]` keys.
    pub fn start_with(
        greeting: &str,
        stt_extra: &[(&str, &str)],
        loader: &[(&str, &str)],
    ) -> Assistant {
        Self::start_full(greeting, SHORT_ANSWERS, stt_extra, loader)
    }

    /// [`Assistant::start_with`] with the Modelfile's lines after `FROM` (how it answers).
    pub fn start_full(
        greeting: &str,
        answers: &str,
        stt_extra: &[(&str, &str)],
        loader: &[(&str, &str)],
    ) -> Assistant {
        Self::build(greeting, answers, stt_extra, loader, None)
    }

    /// The assistant on a sound server of its own with an acoustic echo path of `echo_ms`:
    /// stt and tts (Piper) on the default devices (`input = auto`, `output = auto`), the
    /// speaker recorded from the greeting on. stt logs at debug: a failure shows the echo guard's
    /// verdict on every window the VAD called speech while the assistant spoke.
    pub fn on_sound_server(greeting: &str, answers: &str, echo_ms: u32) -> Assistant {
        let server = SoundServer::start(echo_ms).unwrap();
        Self::build(
            greeting,
            answers,
            &[("log_level", "debug")],
            &[],
            Some(server),
        )
    }

    fn build(
        greeting: &str,
        answers: &str,
        stt_extra: &[(&str, &str)],
        loader: &[(&str, &str)],
        server: Option<SoundServer>,
    ) -> Assistant {
        let mut setup = Setup::new();
        for (k, v) in loader {
            setup.loader(k, v);
        }
        let (tts, llm, stt, kwd) = (free_port(), free_port(), free_port(), free_port());
        let out = setup.dir.path().join("assistant.wav");
        let mf = setup.dir.path().join("Modelfile");
        std::fs::write(
            &mf,
            format!(
                "FROM {}\n{answers}",
                model("SmolLM2-135M-Instruct.Q4_1.gguf").display()
            ),
        )
        .unwrap();
        let on_devices = server.is_some();
        let tts_over: &[(&str, &str)] = if on_devices {
            &[("output", "auto")]
        } else {
            &[]
        };
        // On sound devices the shipped voice (Piper): as a user hears it, and fast enough on
        // two cores that a long reply plays without gaps while the llm generates. Into a WAV
        // file Kokoro, whose first words Whisper tiny reads back reliably ("Hi, Master!"
        // from Piper came back as "I master" in CI).
        let keys = if on_devices {
            piper_keys(tts, &out)
        } else {
            tts_keys(tts, &out)
        };
        setup.section_with("tts", keys, tts_over);
        setup.section(
            "llm",
            &[
                ("port", &llm.to_string()),
                ("start_timeout_ms", "120000"),
                ("modelfile", mf.to_str().unwrap()),
            ],
        );
        let mut stt_keys = stt_keys(stt, Path::new("unused"));
        stt_keys.retain(|(k, _)| k != "render_reference" && k != "input");
        let mut stt_over = if on_devices {
            vec![("input", "auto")]
        } else {
            vec![("input", "null"), ("input_echo", "0.5@80")]
        };
        stt_over.extend_from_slice(stt_extra);
        setup.section_with("stt", stt_keys, &stt_over);
        setup.section_with("kwd", kwd_micro_keys(kwd), &[]);
        setup.section(
            "dialog",
            &[("warmup_greeting", greeting), ("followup_ms", "4000")],
        );
        let sound = server.map(|server| {
            for (k, v) in server.env() {
                setup.env(k, &v);
            }
            let speaker = server
                .client()
                .record(&format!("{SPEAKER}.monitor"), &out)
                .unwrap();
            Sound {
                server,
                speaker: std::sync::Mutex::new(Some(speaker)),
            }
        });
        let mut host = setup.spawn();
        host.wait_for("host_ready", Duration::from_secs(240));
        Assistant {
            setup,
            host,
            stt,
            tts,
            llm,
            out,
            sound,
        }
    }

    /// The sound server it runs on, if it does.
    pub fn sound_server(&self) -> Option<&SoundServer> {
        self.sound.as_ref().map(|s| &s.server)
    }

    /// The host's app.log.
    pub fn log(&self) -> PathBuf {
        self.setup.log_dir().join("app.log")
    }

    /// Plays `samples` (16 kHz) into the assistant's microphone: on a sound server into the
    /// microphone's sink, in the background (as a person talks), else as stt's input.
    pub async fn say(&self, name: &str, samples: &[f32]) {
        let path = self.setup.dir.path().join(format!("{name}.wav"));
        write_wav_16k(&path, samples);
        if let Some(sound) = &self.sound {
            let mut player = sound.server.client().play(MIC, &path).unwrap();
            std::thread::spawn(move || player.wait());
            return;
        }
        SttServiceClient::new(channel(self.stt))
            .set_input(SetInputRequest {
                input: format!("wav:{}", path.display()),
            })
            .await
            .unwrap();
    }

    /// Says the wake word and waits until the acknowledgement (no dialog id) has played and
    /// stt listens: a person answers the acknowledgement, and on a busy machine stt's start
    /// can come after the acknowledgement's end.
    pub async fn wake(&self, playback: &mut tonic::Streaming<PlaybackEvent>, alexa: &[f32]) {
        let listening = || {
            app_events(&self.log())
                .iter()
                .filter(|e| e.event == "stt_started")
                .count()
        };
        let before = listening();
        self.say("wake", &scene(2.0, &[(0.3, alexa)])).await;
        next_event(
            playback,
            PlaybackEventKind::Finished,
            false,
            Duration::from_secs(10),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while listening() == before {
            assert!(Instant::now() < deadline, "stt did not start listening");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// tts's playback events, of every dialog and of none.
    pub async fn playback(&self) -> tonic::Streaming<PlaybackEvent> {
        TtsServiceClient::new(channel(self.tts))
            .playback_events(DialogRef {
                dialog_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// What the assistant said (tts's WAV file, or on a sound server the speaker's
    /// recording, which ends here), 16 kHz mono: transcribe it to check it.
    pub fn said(&self) -> Vec<f32> {
        if let Some(sound) = &self.sound {
            let recording = sound.speaker.lock().unwrap().take();
            if let Some(recording) = recording {
                recording.stop().unwrap();
            }
        }
        let mut r = hound::WavReader::open(&self.out).unwrap();
        let rate = r.spec().sample_rate;
        let pcm: Vec<f32> = r
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect();
        resample_16k(&pcm, rate)
    }

    /// The dialog's transcript (the logger's file for `dialog`), line by line: `ROLE: text`.
    pub fn transcript_lines(&self, dialog: &str) -> Vec<String> {
        let path = std::fs::read_dir(self.setup.log_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains(dialog))
            .unwrap();
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Assistant {
    /// A failing test shows the end of the assistant's app.log: what it heard, said and did.
    /// With `VOICEHOST_KEEP_LOGS=DIR` every assistant's log directory is copied into DIR.
    fn drop(&mut self) {
        if let Some(keep) = std::env::var_os("VOICEHOST_KEEP_LOGS") {
            let to = Path::new(&keep).join(format!(
                "assistant-{}-{}",
                std::process::id(),
                self.setup.dir.path().file_name().unwrap().to_string_lossy()
            ));
            let _ = std::fs::create_dir_all(&to);
            for entry in std::fs::read_dir(self.setup.log_dir())
                .into_iter()
                .flatten()
            {
                let path = entry.unwrap().path();
                let _ = std::fs::copy(&path, to.join(path.file_name().unwrap()));
            }
            eprintln!("logs kept in {}", to.display());
        }
        if !std::thread::panicking() {
            return;
        }
        let events = app_events(&self.log());
        eprintln!("--- the last {} app.log events ---", events.len().min(120));
        for e in events.iter().skip(events.len().saturating_sub(120)) {
            eprintln!("{} {} {}: {}", e.ts, e.svc, e.event, e.fields);
        }
    }
}

/// Waits for the next playback event of `kind`, in a dialog or not (`in_dialog`: whether
/// it has a dialog id).
pub async fn next_event(
    events: &mut tonic::Streaming<PlaybackEvent>,
    kind: PlaybackEventKind,
    in_dialog: bool,
    timeout: Duration,
) -> PlaybackEvent {
    tokio::time::timeout(timeout, async {
        loop {
            let ev = events.message().await.unwrap().unwrap();
            if ev.kind() == kind && ev.dialog_id.is_empty() != in_dialog {
                return ev;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind:?} (in a dialog: {in_dialog}) within {timeout:?}"))
}

/// The events named `name`, in order.
pub fn events_named<'a>(events: &'a [AppLine], name: &str) -> Vec<&'a AppLine> {
    events.iter().filter(|e| e.event == name).collect()
}

/// The event's field `key` as a number.
pub fn num(e: &AppLine, key: &str) -> f64 {
    e.field(key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {}", e.fields))
}

/// The transcript is USER, ASSISTANT, USER, ASSISTANT, the user's lines holding `first`
/// and `second`.
pub fn assert_two_turns(lines: &[String], first: &str, second: &str) {
    let roles: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(roles, ["USER", "ASSISTANT", "USER", "ASSISTANT"]);
    for (line, word) in [(&lines[0], first), (&lines[2], second)] {
        assert!(words(line).contains(&word.to_owned()), "{line}");
    }
}
