//! kwd's `Detect`: wake words in audio the caller streams (as the Wyoming server does), on
//! the real plugin behind a host with the real stt (looping silence, so the local listener
//! is connected and hears nothing): "Alexa" clips from the project's tts and espeak-ng, the
//! JFK sample, two calls at once, bad requests, and the `max_detect_streams` cap. Detect's
//! detections must never reach `Events`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_proto::kwd::v1::{
    DetectRequest, Detection, DisableRequest, EnableRequest, EventsRequest, KwdEvent,
};
use voicehost_tests::{
    HostProc, Setup, channel, espeak, free_port, kwd_keys, model, read_wav_16k, scene, stt_keys,
    trim_silence, tts_speech, write_wav_16k,
};

/// `[kwd] max_detect_streams` in this test.
const MAX_STREAMS: usize = 2;
/// Samples per message: 80 ms, one engine chunk.
const MESSAGE: usize = 1280;

/// A host with stt on `silence` (looped) and kwd; returns kwd's port.
fn stt_and_kwd(setup: &mut Setup, silence: &Path) -> (HostProc, u16) {
    let (stt, kwd) = (free_port(), free_port());
    let looped = format!("{}:loop", silence.display());
    setup.section_with("stt", stt_keys(stt, Path::new(&looped)), &[]);
    setup.section_with(
        "kwd",
        kwd_keys(kwd),
        &[("max_detect_streams", &MAX_STREAMS.to_string())],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(120));
    (host, kwd)
}

fn pcm(samples: &[f32]) -> Vec<u8> {
    voicehost_audio::to_s16le(samples)
}

/// `audio` as Detect messages of 80 ms, the first naming `models`.
fn messages(models: &[&str], audio: &[f32]) -> Vec<DetectRequest> {
    audio
        .chunks(MESSAGE)
        .enumerate()
        .map(|(i, chunk)| DetectRequest {
            models: if i == 0 {
                models.iter().map(|m| (*m).to_owned()).collect()
            } else {
                Vec::new()
            },
            pcm_s16le: pcm(chunk),
        })
        .collect()
}

/// One whole Detect call: every message sent at once, every detection until the end.
async fn detect(
    kwd: &mut KwdServiceClient<Channel>,
    requests: Vec<DetectRequest>,
) -> Result<Vec<Detection>, Status> {
    let mut out = kwd.detect(tokio_stream::iter(requests)).await?.into_inner();
    let mut found = Vec::new();
    while let Some(d) = out.message().await? {
        found.push(d);
    }
    Ok(found)
}

/// A Detect call the test feeds message by message.
struct Open {
    tx: mpsc::Sender<DetectRequest>,
    rx: Streaming<Detection>,
}

async fn open(kwd: &mut KwdServiceClient<Channel>) -> Result<Open, Status> {
    let (tx, requests) = mpsc::channel(64);
    let rx = kwd
        .detect(ReceiverStream::new(requests))
        .await?
        .into_inner();
    Ok(Open { tx, rx })
}

impl Open {
    async fn send(&self, request: DetectRequest) {
        self.tx.send(request).await.unwrap();
    }

    /// Closes the input and collects every detection.
    async fn finish(self) -> Vec<Detection> {
        let Open { tx, mut rx } = self;
        drop(tx);
        let mut found = Vec::new();
        while let Some(d) = rx.message().await.unwrap() {
            found.push(d);
        }
        found
    }
}

fn ms(samples: usize) -> u64 {
    samples as u64 * 1000 / 16_000
}

/// Asserts one detection of alexa_v0.1, fired within 400 ms (5 chunks) of the end of the
/// word.
fn one_alexa(who: &str, found: &[Detection], word_ms: (u64, u64)) {
    assert_eq!(found.len(), 1, "{who}: {found:?}");
    let d = &found[0];
    eprintln!(
        "{who}: {} at audio_ms {} (the word spans {}–{} ms), confidence {:.3}",
        d.model, d.audio_ms, word_ms.0, word_ms.1, d.confidence
    );
    assert_eq!(d.model, "alexa_v0.1", "{who}");
    assert!(d.confidence >= 0.6, "{who}: {d:?}");
    assert!(
        d.audio_ms + 400 >= word_ms.1 && d.audio_ms <= word_ms.1 + 400,
        "{who}: fired at {} ms for a word at {}–{} ms",
        d.audio_ms,
        word_ms.0,
        word_ms.1
    );
}

async fn no_event(events: &mut Streaming<KwdEvent>, within: Duration) -> Option<KwdEvent> {
    tokio::time::timeout(within, events.next())
        .await
        .ok()
        .flatten()
        .map(Result::unwrap)
}

fn invalid(err: &Status, needle: &str) {
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains(needle),
        "{needle}: {}",
        err.message()
    );
    eprintln!("INVALID_ARGUMENT: {}", err.message());
}

#[test]
fn detect_hears_streamed_audio_apart_from_the_local_listener() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kokoro = trim_silence(&rt.block_on(tts_speech(&["Alexa."]))[0]);
    let espeak_alexa = trim_silence(&espeak("Alexa"));
    let jfk = read_wav_16k(&model("audio/jfk.wav"));

    let mut setup = Setup::new();
    let silence = setup.dir.path().join("silence.wav");
    write_wav_16k(&silence, &[0.0; 32_000]);
    let (mut host, port) = stt_and_kwd(&mut setup, &silence);

    rt.block_on(async {
        let mut kwd = KwdServiceClient::new(channel(port));
        let mut events = kwd.events(EventsRequest {}).await.unwrap().into_inner();

        // Disabled for the local dialog: Detect is not affected. A Wyoming-style name.
        kwd.disable(DisableRequest {
            reason: "dialog".into(),
        })
        .await
        .unwrap();
        let audio = scene(2.0 + kokoro.len() as f32 / 16_000.0, &[(1.0, &kokoro)]);
        let word = (1000, 1000 + ms(kokoro.len()));
        let started = Instant::now();
        let found = detect(&mut kwd, messages(&["Alexa"], &audio))
            .await
            .unwrap();
        eprintln!(
            "first call (loads an engine): {:?} for {} ms of audio",
            started.elapsed(),
            ms(audio.len())
        );
        one_alexa("kokoro", &found, word);
        kwd.enable(EnableRequest {
            reason: "dialog".into(),
        })
        .await
        .unwrap();

        // The same again on a reused engine: fresh state, the same result.
        let started = Instant::now();
        let again = detect(&mut kwd, messages(&[], &audio)).await.unwrap();
        eprintln!("second call (reused engine): {:?}", started.elapsed());
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(
            (&again[0].model, again[0].audio_ms),
            (&found[0].model, found[0].audio_ms)
        );
        assert!(
            (again[0].confidence - found[0].confidence).abs() < 1e-4,
            "{again:?}"
        );

        let started = Instant::now();
        let none = detect(&mut kwd, messages(&["alexa_v0.1"], &jfk))
            .await
            .unwrap();
        eprintln!(
            "jfk.wav: {} detections in {:?} for {} ms of audio",
            none.len(),
            started.elapsed(),
            ms(jfk.len())
        );
        assert!(none.is_empty(), "jfk.wav: {none:?}");

        // Two calls at once, their messages interleaved: each hears its own word.
        let a = scene(4.0, &[(1.0, &kokoro)]);
        let b = scene(4.5, &[(2.5, &espeak_alexa)]);
        let (first, second) = (open(&mut kwd).await.unwrap(), open(&mut kwd).await.unwrap());
        let (mut ma, mut mb) = (messages(&[], &a).into_iter(), messages(&[], &b).into_iter());
        loop {
            let (x, y) = (ma.next(), mb.next());
            if x.is_none() && y.is_none() {
                break;
            }
            if let Some(x) = x {
                first.send(x).await;
            }
            if let Some(y) = y {
                second.send(y).await;
            }
        }
        let (fa, fb) = tokio::join!(first.finish(), second.finish());
        one_alexa("stream 1 (kokoro at 1 s)", &fa, word);
        one_alexa(
            "stream 2 (espeak-ng at 2.5 s)",
            &fb,
            (2500, 2500 + ms(espeak_alexa.len())),
        );

        // Nothing of it reached the local listener's events.
        let leaked = no_event(&mut events, Duration::from_secs(1)).await;
        assert!(leaked.is_none(), "Detect leaked to Events: {leaked:?}");
    });
    let log = std::fs::read_to_string(setup.log_dir().join("app.log")).unwrap();
    assert!(log.contains("kwd_detect_fired"), "{log}");
    assert!(!log.contains("wake_detected"), "{log}");
    host.terminate();
}

#[test]
fn detect_refuses_bad_requests_and_more_than_max_detect_streams() {
    let mut setup = Setup::new();
    let silence = setup.dir.path().join("silence.wav");
    write_wav_16k(&silence, &[0.0; 32_000]);
    let (mut host, port) = stt_and_kwd(&mut setup, &silence);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut kwd = KwdServiceClient::new(channel(port));
        let second = pcm(&[0.0; MESSAGE]);

        let err = detect(&mut kwd, messages(&["alexa", "hey jarvis"], &[0.0; 3200]))
            .await
            .unwrap_err();
        invalid(&err, "\"hey jarvis\" is not loaded");
        assert!(err.message().contains("alexa_v0.1"), "{}", err.message());

        let odd = vec![
            DetectRequest {
                models: Vec::new(),
                pcm_s16le: second.clone(),
            },
            DetectRequest {
                models: Vec::new(),
                pcm_s16le: vec![0; 1001],
            },
        ];
        invalid(&detect(&mut kwd, odd).await.unwrap_err(), "has 1001 bytes");

        let late = vec![
            DetectRequest {
                models: Vec::new(),
                pcm_s16le: second.clone(),
            },
            DetectRequest {
                models: vec!["alexa".into()],
                pcm_s16le: second.clone(),
            },
        ];
        invalid(
            &detect(&mut kwd, late).await.unwrap_err(),
            "in the first message only",
        );

        // The cap: MAX_STREAMS calls hold engines; one more is refused at once.
        let mut held = Vec::new();
        for _ in 0..MAX_STREAMS {
            let call = open(&mut kwd).await.unwrap();
            call.send(DetectRequest {
                models: Vec::new(),
                pcm_s16le: second.clone(),
            })
            .await;
            held.push(call);
        }
        let err = match open(&mut kwd).await {
            Ok(_) => panic!("a call beyond max_detect_streams = {MAX_STREAMS} was accepted"),
            Err(e) => e,
        };
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert!(
            err.message().contains("max_detect_streams"),
            "{}",
            err.message()
        );
        eprintln!("RESOURCE_EXHAUSTED: {}", err.message());

        // A client that goes away gives its place back.
        drop(held.pop());
        let gone = Instant::now();
        let replacement = loop {
            match open(&mut kwd).await {
                Ok(call) => break call,
                Err(e) => {
                    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                    assert!(
                        gone.elapsed() < Duration::from_secs(5),
                        "the place of a client that left was not given back"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        eprintln!(
            "place given back {:?} after the client left",
            gone.elapsed()
        );
        replacement
            .send(DetectRequest {
                models: Vec::new(),
                pcm_s16le: second.clone(),
            })
            .await;
        assert!(replacement.finish().await.is_empty());
        for call in held {
            assert!(call.finish().await.is_empty());
        }
    });
    // Engines are reused: never more loaded than calls ran at once.
    let log = std::fs::read_to_string(setup.log_dir().join("app.log")).unwrap();
    let loaded = log.matches("kwd_detect_engine_loaded").count();
    assert!(
        (1..=MAX_STREAMS).contains(&loaded),
        "{loaded} engines loaded:\n{log}"
    );
    host.terminate();
}
