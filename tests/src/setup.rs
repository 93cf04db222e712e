//! The config a test writes and the `voicehost` process it starts: [`Setup`] builds the
//! config file section by section, [`HostProc`] is the running host.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{artefact, free_port, target_dir};

/// A config file plus the directory it lives in.
#[derive(Debug)]
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub admin_port: u16,
    pub logger_port: u16,
    sections: String,
    system: String,
    loader: String,
    env: Vec<(String, String)>,
}

impl Setup {
    /// The real logger on a free port; add more sections with [`Setup::section`].
    pub fn new() -> Self {
        let logger_port = free_port();
        let mut setup = Self {
            dir: tempfile::tempdir().unwrap(),
            admin_port: free_port(),
            logger_port,
            sections: String::new(),
            system: String::new(),
            loader: String::new(),
            env: Vec::new(),
        };
        setup.section("logger", &[("port", &logger_port.to_string())]);
        setup
    }

    /// Appends `[name]` with `keys`, where `overrides` replace keys of the same name (or
    /// are added).
    pub fn section_with(
        &mut self,
        name: &str,
        mut keys: Vec<(String, String)>,
        overrides: &[(&str, &str)],
    ) -> &mut Self {
        for (k, v) in overrides {
            keys.retain(|(key, _)| key != k);
            keys.push(((*k).to_owned(), (*v).to_owned()));
        }
        let refs: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.section(name, &refs)
    }

    /// Adds `key = value` to `[system]`.
    pub fn system(&mut self, key: &str, value: &str) -> &mut Self {
        writeln!(self.system, "{key} = {value}").unwrap();
        self
    }

    /// Adds `key = value` to `[loader]`.
    pub fn loader(&mut self, key: &str, value: &str) -> &mut Self {
        writeln!(self.loader, "{key} = {value}").unwrap();
        self
    }

    /// Sets an environment variable for the host process.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Appends `[name]` with `keys`.
    pub fn section(&mut self, name: &str, keys: &[(&str, &str)]) -> &mut Self {
        writeln!(self.sections, "[{name}]").unwrap();
        for (k, v) in keys {
            writeln!(self.sections, "{k} = {v}").unwrap();
        }
        self
    }

    /// Adds the misbehaving fixture in the `[tts]` slot with `mode`; returns its port.
    pub fn fixture(&mut self, mode: &str, extra: &[(&str, &str)]) -> u16 {
        let port = free_port();
        let port_s = port.to_string();
        let mut keys: Vec<(&str, &str)> = vec![
            ("library", "libvoicehost_fixture_misbehave.so"),
            ("port", &port_s),
            ("x_fixture_mode", mode),
        ];
        keys.extend_from_slice(extra);
        self.section("tts", &keys);
        port
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// Writes the config file and returns its path.
    pub fn write(&self) -> PathBuf {
        let text = format!(
            "[system]\nlog_dir = {}\n{}[loader]\nplugin_dir = {}\nadmin_port = {}\nstop_timeout_ms = 2000\n{}{}",
            self.log_dir().display(),
            self.system,
            target_dir().display(),
            self.admin_port,
            self.loader,
            self.sections
        );
        let path = self.dir.path().join("config.txt");
        fs::write(&path, text).unwrap();
        path
    }

    /// Starts `voicehost run` on this config.
    pub fn spawn(&self) -> HostProc {
        self.spawn_command("run")
    }

    /// Starts `voicehost SUBCOMMAND --config <this config>`, output to files in the dir.
    fn spawn_command(&self, subcommand: &str) -> HostProc {
        let config = self.write();
        let out = self.dir.path().join(format!("{subcommand}.err"));
        let child = Command::new(artefact("voicehost"))
            .args([subcommand, "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.dir.path().join(format!("{subcommand}.out"))).unwrap())
            .stderr(fs::File::create(&out).unwrap())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .spawn()
            .unwrap();
        HostProc { child, out }
    }

    /// Runs `voicehost SUBCOMMAND --config <this config>` to completion (at most `timeout`).
    pub fn run_to_exit(&self, subcommand: &str, timeout: Duration) -> (ExitStatus, String) {
        let mut host = self.spawn_command(subcommand);
        let status = host.wait_exit(timeout).unwrap_or_else(|| {
            host.kill();
            panic!(
                "voicehost {subcommand} did not exit within {timeout:?}; output:\n{}",
                host.output()
            )
        });
        (status, host.output())
    }
}

impl Default for Setup {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `voicehost` process; killed if still running when dropped.
#[derive(Debug)]
pub struct HostProc {
    pub child: Child,
    out: PathBuf,
}

impl HostProc {
    /// Everything the host printed on stderr so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until the output contains `needle`; panics with the output on timeout or exit.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.output().contains(needle) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "voicehost exited ({status}) before printing {needle:?}:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {timeout:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits for `host_ready`.
    pub fn wait_ready(&mut self) {
        self.wait_for("host_ready", Duration::from_secs(20));
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        self.wait_exit(Duration::from_secs(15)).unwrap_or_else(|| {
            self.kill();
            panic!("voicehost did not exit on SIGTERM:\n{}", self.output())
        })
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
