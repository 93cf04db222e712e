//! A real sound server for tests and the acoustic benchmark: a PulseAudio server of its own
//! (Debian `pulseaudio`; no system daemon, a private directory, stopped when dropped) with
//! clocked null devices, as in a room:
//!
//! - `speaker`: what the assistant plays to (the default sink);
//! - `mic`: what reaches the microphone; the default source (`microphone`) is what it
//!   carries. The user's speech is played into it, and an acoustic echo path
//!   (`module-loopback`, tens of ms of device latency, [`ECHO_GAIN_DB`]) carries the
//!   speaker's sound into it too.
//!
//! Both are channels of one stereo null sink, [`PROBE`] (the microphone left, the speaker
//! right), so one recording of its monitor holds what the microphone heard and what the
//! speaker played on one clock: the acoustic benchmark measures from it.
//!
//! Programs started with [`SoundServer::env`] find it as their sound server, and ALSA's
//! default device is PulseAudio while one runs (Debian's `libasound2-plugins` hook), so the
//! assistant opens it through cpal with no flags, exactly as on a desktop. `paplay` and
//! `parecord` (`pulseaudio-utils`) speak into the microphone and record the speaker, on the
//! server's clock.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to install when a tool is missing.
const INSTALL: &str = "apt-get install pulseaudio pulseaudio-utils libasound2-plugins \
                       (scripts/setup.sh does)";

/// The sink the assistant plays to; its `.monitor` is what it played.
pub const SPEAKER: &str = "speaker";
/// The sink whose sound is the microphone's.
pub const MIC: &str = "mic";
/// The stereo sink under both: the microphone's sound is its left channel, the speaker's
/// its right; `probe.monitor` records both on one clock.
pub const PROBE: &str = "probe";
/// The echo path's gain: the speaker's sound reaches the microphone 6 dB down, as from a
/// speaker beside it (the WAV tests' simulated echo path, `input_echo = 0.5@80`, is the
/// same).
pub const ECHO_GAIN_DB: f32 = -6.0;
/// The echo path's device latency in the acoustic benchmark (ms).
pub const ECHO_MS: u32 = 40;

/// A running PulseAudio server of its own; stopped and its directory removed when dropped.
#[derive(Debug)]
pub struct SoundServer {
    daemon: Child,
    dir: tempfile::TempDir,
    client: Client,
}

/// How programs reach a sound server: its address, as `PULSE_SERVER` gives it. `paplay`,
/// `parecord` and `pactl` run with it.
#[derive(Debug, Clone)]
pub struct Client {
    server: String,
}

impl SoundServer {
    /// Starts a server with the speaker, the microphone and an echo path from one to the
    /// other of `echo_ms` device latency (0: no echo path).
    pub fn start(echo_ms: u32) -> Result<SoundServer, String> {
        for tool in ["pulseaudio", "pactl", "paplay", "parecord"] {
            if !on_path(tool) {
                return Err(format!("{tool} is not installed: {INSTALL}"));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("voicehost-pulse.")
            .tempdir()
            .map_err(|e| format!("cannot create the sound server's directory: {e}"))?;
        let socket = dir.path().join("native");
        // The microphone and the speaker are remapped channels of the probe; the default
        // source is the microphone's channel of the probe's monitor.
        let remap = |name: &str, channel: &str, description: &str| {
            format!(
                "load-module module-remap-sink sink_name={name} master={PROBE} channels=1 \
                 channel_map=mono master_channel_map={channel} remix=no \
                 sink_properties=device.description={description}\n"
            )
        };
        let mut script = format!(
            "load-module module-native-protocol-unix auth-anonymous=1 socket={}\n\
             load-module module-null-sink sink_name={PROBE} rate=48000 channels=2 \
             channel_map=front-left,front-right sink_properties=device.description=Probe\n\
             {}{}\
             load-module module-remap-source source_name=microphone master={PROBE}.monitor \
             channels=1 channel_map=mono master_channel_map=front-left remix=no \
             source_properties=device.description=Microphone\n\
             set-default-sink {SPEAKER}\n\
             set-default-source microphone\n",
            socket.display(),
            remap(MIC, "front-left", "Microphone"),
            remap(SPEAKER, "front-right", "Speaker"),
        );
        if echo_ms > 0 {
            script.push_str(&format!(
                "load-module module-loopback source={SPEAKER}.monitor sink={MIC} \
                 latency_msec={echo_ms} source_dont_move=true sink_dont_move=true\n"
            ));
        }
        let config = dir.path().join("default.pa");
        std::fs::write(&config, script).map_err(|e| format!("{}: {e}", config.display()))?;
        let log = dir.path().join("pulse.log");
        let daemon = Command::new("pulseaudio")
            .args(["-n", "--daemonize=no", "--exit-idle-time=-1", "--system=no"])
            .arg(format!("--file={}", config.display()))
            .arg(format!("--log-target=file:{}", log.display()))
            // Its state (cookie, runtime files) stays in the private directory.
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_RUNTIME_DIR", dir.path())
            .env("PULSE_RUNTIME_PATH", dir.path().join("run"))
            .env("PULSE_STATE_PATH", dir.path().join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start pulseaudio: {e}"))?;
        let mut server = SoundServer {
            daemon,
            dir,
            client: Client {
                server: format!("unix:{}", socket.display()),
            },
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = server.daemon.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("pulseaudio exited ({status}) at start:\n{log}"));
            }
            if server.client.pactl(&["info"]).is_ok() {
                if echo_ms > 0 {
                    server.attenuate_echo()?;
                }
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err("pulseaudio did not answer within 20 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sets the echo path's gain to [`ECHO_GAIN_DB`] (module-loopback has no gain of its
    /// own: its stream's volume is set).
    fn attenuate_echo(&self) -> Result<(), String> {
        let inputs = self.client.pactl(&["list", "short", "sink-inputs"])?;
        let loopback = inputs
            .lines()
            .find(|l| l.contains("module-loopback"))
            .and_then(|l| l.split_whitespace().next())
            .ok_or_else(|| format!("no loopback stream among the sink inputs:\n{inputs}"))?;
        self.client
            .pactl(&[
                "set-sink-input-volume",
                loopback,
                &format!("{ECHO_GAIN_DB}dB"),
            ])
            .map(drop)
    }

    /// The environment that makes a program (and ALSA's default device in it) use this
    /// server.
    pub fn env(&self) -> [(&'static str, String); 1] {
        self.client.env()
    }

    /// The server's private directory (its log is `pulse.log` there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How to play into and record from this server.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Client {
    /// The sound server this process was pointed at (`PULSE_SERVER`), e.g. by a parent that
    /// runs a [`SoundServer`]; `None` when unset.
    pub fn from_env() -> Option<Client> {
        let server = std::env::var("PULSE_SERVER").ok()?;
        (!server.is_empty()).then_some(Client { server })
    }

    /// The environment that makes a program use this server.
    pub fn env(&self) -> [(&'static str, String); 1] {
        [("PULSE_SERVER", self.server.clone())]
    }

    /// Runs `pactl` on this server; its output.
    pub fn pactl(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .tool("pactl")
            .args(args)
            .output()
            .map_err(|e| format!("pactl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "pactl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Starts playing `wav` into `sink` ([`MIC`]: as a person speaking in the room); the
    /// child `paplay` exits once it has played.
    pub fn play(&self, sink: &str, wav: &Path) -> Result<Child, String> {
        self.tool("paplay")
            .arg(format!("--device={sink}"))
            .arg(wav)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("paplay {}: {e}", wav.display()))
    }

    /// Starts recording what `source` carries (`speaker.monitor`: what was played;
    /// `mic.monitor`: what the microphone hears) into `wav`, 16 kHz mono 16-bit; the file is
    /// complete once the [`Recording`] is stopped or dropped.
    pub fn record(&self, source: &str, wav: &Path) -> Result<Recording, String> {
        self.record_as(source, wav, 16_000, 1)
    }

    /// Starts recording the microphone (left) and the speaker (right) on one clock into
    /// `wav`, stereo 16-bit at `rate`.
    pub fn record_probe(&self, wav: &Path, rate: u32) -> Result<Recording, String> {
        self.record_as(&format!("{PROBE}.monitor"), wav, rate, 2)
    }

    fn record_as(
        &self,
        source: &str,
        wav: &Path,
        rate: u32,
        channels: u16,
    ) -> Result<Recording, String> {
        let child = self
            .tool("parecord")
            .arg(format!("--device={source}"))
            .arg(format!("--rate={rate}"))
            .arg(format!("--channels={channels}"))
            .arg("--format=s16le")
            .args(["--file-format=wav", "--latency-msec=20"])
            .arg(wav)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("parecord: {e}"))?;
        Ok(Recording {
            child: Some(child),
            path: wav.to_owned(),
        })
    }

    fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(name);
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd
    }
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A `parecord` running; stopped (its WAV finished) by [`Recording::stop`] or on drop.
#[derive(Debug)]
pub struct Recording {
    child: Option<Child>,
    path: PathBuf,
}

impl Recording {
    /// Stops recording; returns the WAV's path.
    pub fn stop(mut self) -> Result<PathBuf, String> {
        self.finish()?;
        Ok(self.path.clone())
    }

    fn finish(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SIGINT: parecord writes the WAV header's sizes and exits.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "parecord did not stop; {} may be incomplete",
                        self.path.display()
                    ));
                }
            }
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}
