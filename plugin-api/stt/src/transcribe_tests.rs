//! Tests of `Transcribe` and `GetInfo` (transcribe.rs): the arguments checked, the language
//! chosen, and requests answered on a real recognition thread.

use voicehost_audio::Pacing;
use voicehost_plugin_runtime::{BoxError, EngineMeta, PluginConfig, PluginError};

use super::super::recognize::{Judge, spawn};
use super::*;

/// What the first sample says [`Parrot`] does with the audio.
const SILENT: i16 = 0;
const PANICS: i16 = i16::MIN;

/// Text: how many samples it heard and in which language; nothing for audio that starts
/// silent; a panic for audio that starts at full scale down.
#[derive(Debug)]
struct Parrot;

impl Transcriber for Parrot {
    type Config = ();
    const META: EngineMeta = EngineMeta {
        name: "parrot",
        version: "1.2.3",
        features: &[],
    };

    fn configure(_: &PluginConfig) -> Result<(), PluginError> {
        Ok(())
    }

    fn load(_: &()) -> Result<Self, BoxError> {
        Ok(Parrot)
    }

    fn transcribe(&mut self, samples: &[f32]) -> Result<Option<Transcript>, BoxError> {
        self.transcribe_in(samples, "")
    }

    fn transcribe_in(
        &mut self,
        samples: &[f32],
        language: &str,
    ) -> Result<Option<Transcript>, BoxError> {
        match samples.first() {
            Some(s) if *s == 0.0 => Ok(None),
            Some(s) if *s == -1.0 => panic!("parrot fell off its perch"),
            _ => Ok(Some(Transcript {
                text: format!("{} samples in {language:?}", samples.len()),
                no_speech_prob: 0.0,
            })),
        }
    }

    fn model_name(_: &()) -> String {
        "parrot-small".to_owned()
    }

    fn languages(_: &()) -> Vec<String> {
        vec!["en".to_owned(), "de".to_owned()]
    }
}

/// An engine that says nothing about its model or languages (the trait's defaults).
#[derive(Debug)]
struct Quiet;

impl Transcriber for Quiet {
    type Config = ();
    const META: EngineMeta = EngineMeta {
        name: "quiet",
        version: "0",
        features: &[],
    };

    fn configure(_: &PluginConfig) -> Result<(), PluginError> {
        Ok(())
    }

    fn load(_: &()) -> Result<Self, BoxError> {
        Ok(Quiet)
    }

    fn transcribe(&mut self, samples: &[f32]) -> Result<Option<Transcript>, BoxError> {
        Ok(Some(Transcript {
            text: format!("{} samples", samples.len()),
            no_speech_prob: 0.0,
        }))
    }
}

/// `samples` 16-bit samples, the first `first`, the rest quiet noise.
fn pcm(samples: usize, first: i16) -> Vec<u8> {
    let mut audio = vec![100i16; samples];
    audio[0] = first;
    audio.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn request(pcm_s16le: Vec<u8>, sample_rate: u32, language: &str) -> TranscribeRequest {
    TranscribeRequest {
        pcm_s16le,
        sample_rate,
        language: language.to_owned(),
    }
}

/// The `Transcribe` of `T`, taking at most 2 s, and its recognition thread.
fn serving<T: Transcriber<Config = ()>>(engine: T) -> (Transcribe, Arc<Shared>) {
    let shared = Arc::new(Shared::new(Pacing::Fast, None));
    let _jobs = spawn(engine, Judge::Text, Arc::clone(&shared));
    (Transcribe::new::<T>(&(), 2000), shared)
}

#[track_caller]
fn assert_invalid(result: Result<impl std::fmt::Debug, Status>, names: &[&str]) {
    let status = result.expect_err("INVALID_ARGUMENT");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    for name in names {
        assert!(status.message().contains(name), "{name:?} in {status:?}");
    }
}

#[test]
fn get_info_names_the_engine_its_model_and_languages() {
    let info = Transcribe::new::<Parrot>(&(), 30_000).info();
    assert_eq!(
        info,
        SttInfo {
            engine: "parrot".into(),
            engine_version: "1.2.3".into(),
            model: "parrot-small".into(),
            languages: vec!["en".into(), "de".into()],
        }
    );
    let quiet = Transcribe::new::<Quiet>(&(), 30_000).info();
    assert!(
        quiet.model.is_empty() && quiet.languages.is_empty(),
        "{quiet:?}"
    );
}

#[test]
fn every_bad_argument_is_named_with_what_to_send() {
    let t = Transcribe::new::<Parrot>(&(), 2000);
    assert_invalid(
        t.check(request(pcm(160, 1), 44_100, "")),
        &["sample_rate = 44100", "resample to 16000 Hz"],
    );
    assert_invalid(t.check(request(pcm(160, 1), 0, "")), &["sample_rate = 0"]);
    assert_invalid(
        t.check(request(Vec::new(), 16_000, "")),
        &["pcm_s16le is empty"],
    );
    assert_invalid(
        t.check(request(vec![0; 321], 16_000, "")),
        &["321 bytes", "odd", "2 bytes each"],
    );
    assert_invalid(
        t.check(request(pcm(32_016, 1), 16_000, "")),
        &["2001 ms", "max_transcribe_ms = 2000"],
    );
    assert_invalid(
        t.check(request(pcm(160, 1), 16_000, "fr")),
        &["\"fr\"", "parrot-small", "one of en, de"],
    );
    assert_invalid(
        t.check(request(pcm(160, 1), 16_000, "en\nde")),
        &["not a language code"],
    );
    // The limit itself is fine.
    assert!(t.check(request(pcm(32_000, 1), 16_000, "")).is_ok());
}

#[test]
fn the_language_is_a_listed_one_or_the_configured_one() {
    let t = Transcribe::new::<Parrot>(&(), 2000);
    let lang = |asked: &str| t.language(asked).map_err(|s| s.message().to_owned());
    assert_eq!(lang(""), Ok((String::new(), "en".to_owned())), "configured");
    assert_eq!(lang("de"), Ok(("de".to_owned(), "de".to_owned())));
    assert_eq!(
        lang("EN"),
        Ok(("en".to_owned(), "en".to_owned())),
        "any case"
    );
    assert_eq!(
        lang("de-AT"),
        Ok(("de".to_owned(), "de".to_owned())),
        "a region"
    );
    assert_eq!(lang("en_US"), Ok(("en".to_owned(), "en".to_owned())));
    assert!(lang("fr-FR").is_err());
    // An engine that cannot tell takes any code, and reports nothing of its own.
    let q = Transcribe::new::<Quiet>(&(), 2000);
    assert_eq!(
        q.language("fr").ok(),
        Some(("fr".to_owned(), "fr".to_owned()))
    );
    assert_eq!(q.language("").ok(), Some((String::new(), String::new())));
}

#[test]
fn the_largest_message_fits_twice_the_longest_audio() {
    assert_eq!(
        Transcribe::new::<Quiet>(&(), 300_000).max_message_bytes(),
        300_000 * 32 * 2
    );
    assert_eq!(
        Transcribe::new::<Quiet>(&(), 1000).max_message_bytes(),
        MAX_DECODING_MESSAGE_BYTES
    );
}

#[tokio::test]
async fn a_request_is_transcribed_on_the_recognition_thread() {
    let (t, shared) = serving(Parrot);
    let r = t
        .run(&shared, request(pcm(8000, 1), 16_000, "de"))
        .await
        .unwrap();
    assert_eq!(r.text, "8000 samples in \"de\"");
    assert_eq!((r.audio_ms, r.language.as_str()), (500, "de"));
    // No language: the engine is asked for its configured one, the first listed reported.
    let r = t
        .run(&shared, request(pcm(1600, 1), 16_000, ""))
        .await
        .unwrap();
    assert_eq!(
        (r.text.as_str(), r.language.as_str()),
        ("1600 samples in \"\"", "en")
    );
}

#[tokio::test]
async fn no_speech_is_empty_text() {
    let (t, shared) = serving(Parrot);
    let r = t
        .run(&shared, request(pcm(1600, SILENT), 16_000, ""))
        .await
        .unwrap();
    assert_eq!((r.text.as_str(), r.audio_ms), ("", 100));
}

#[tokio::test]
async fn a_panicking_engine_fails_the_request_not_the_thread() {
    let (t, shared) = serving(Parrot);
    let failed = t
        .run(&shared, request(pcm(1600, PANICS), 16_000, ""))
        .await
        .expect_err("INTERNAL");
    assert_eq!(failed.code(), tonic::Code::Internal);
    assert!(failed.message().contains("perch"), "{failed:?}");
    let r = t
        .run(&shared, request(pcm(1600, 1), 16_000, ""))
        .await
        .unwrap();
    assert_eq!(r.text, "1600 samples in \"\"", "the thread still serves");
}

#[tokio::test]
async fn without_a_recognition_thread_the_call_is_unavailable() {
    let shared = Arc::new(Shared::new(Pacing::Fast, None));
    let t = Transcribe::new::<Parrot>(&(), 2000);
    let req = || request(pcm(1600, 1), 16_000, "");
    let status = t.run(&shared, req()).await.expect_err("not loaded yet");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    // Stopped: requests are no longer taken.
    let (t, shared) = serving(Parrot);
    shared.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    shared.close_requests();
    let status = t.run(&shared, req()).await.expect_err("stopped");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
}
