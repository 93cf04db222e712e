//! CPU and peak resident memory of the host and every plugin process (pids from the
//! loader's admin API, figures from /proc), and peak GPU memory where NVML works, sampled on
//! a task while the benchmark runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use voicehost_proto::loader::v1::GetPidsRequest;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;

/// CPU and memory of one process over the run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(super) struct Usage {
    pub(super) cpu_percent: f64,
    pub(super) peak_rss_mb: f64,
    #[serde(skip)]
    first: Option<(Instant, u64)>,
    #[serde(skip)]
    last: Option<(Instant, u64)>,
}

/// What the sampler measured, by process name (`host` and each plugin service).
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct Sampled {
    pub(super) processes: BTreeMap<String, Usage>,
    /// Most GPU memory in use (MiB) during the run, where NVML works.
    pub(super) gpu_used_mb: Option<u64>,
}

/// The sampling task and the flag that stops it.
pub(super) struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Sampled>,
}

impl Sampler {
    /// Samples /proc for the host and every plugin process four times a second.
    pub(super) fn start(mut admin: LoaderServiceClient<tonic::transport::Channel>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut s = Sampled::default();
            let gpu = voicehost_loader::gpu::NvmlProbe;
            while !flag.load(Ordering::SeqCst) {
                if let Ok(pids) = admin.get_pids(GetPidsRequest {}).await {
                    let pids = pids.into_inner();
                    let mut all = vec![("host".to_owned(), pids.host_pid)];
                    all.extend(pids.services.into_iter().map(|p| (p.name, p.pid)));
                    for (name, pid) in all.into_iter().filter(|(_, pid)| *pid != 0) {
                        let u = s.processes.entry(name).or_default();
                        if let Some((ticks, rss)) = proc_stat(pid) {
                            let now = (Instant::now(), ticks);
                            u.first.get_or_insert(now);
                            u.last = Some(now);
                            u.peak_rss_mb = u.peak_rss_mb.max(rss);
                        }
                    }
                }
                if let Ok(Some(m)) = voicehost_loader::gpu::GpuProbe::memory(&gpu) {
                    let used = m.total_mb - m.free_mb;
                    s.gpu_used_mb = Some(s.gpu_used_mb.unwrap_or(0).max(used));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            for u in s.processes.values_mut() {
                if let (Some((t0, c0)), Some((t1, c1))) = (u.first, u.last) {
                    let secs = (t1 - t0).as_secs_f64().max(1e-3);
                    // SAFETY: sysconf only reads a constant.
                    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
                    u.cpu_percent = (c1 - c0) as f64 / hz / secs * 100.0;
                }
            }
            s
        });
        Sampler { stop, task }
    }

    /// Stops sampling and returns the figures (empty if the task failed).
    pub(super) async fn stop(self) -> Sampled {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap_or_default()
    }
}

/// utime + stime (clock ticks) and resident memory (MiB) of `pid`.
fn proc_stat(pid: u32) -> Option<(u64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks, rss_kb / 1024.0))
}
