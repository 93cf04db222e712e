//! The VRAM guardrail: free GPU memory is checked at boot and between startup phases.
//!
//! Rules (`[system]` keys): before phase 1 (tts + llm) at least `min_vram_mb` must be free;
//! before phase 2 (stt) and phase 3 (kwd) at least `phase_vram_mb`, what is left after the
//! earlier phases took theirs. `gpu = auto` skips the check with a notice where no NVIDIA
//! driver exists, `required` makes a missing driver FATAL, `off` never checks.
//!
//! The probe is a trait so the rules are tested with a simulated GPU;
//! `VOICEHOST_SIMULATED_GPU_FREE_MB` selects the simulation at run time (for trying the
//! guard on a machine without a GPU).

use crate::settings::GpuMode;

/// Memory of the GPU with the most free memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuMemory {
    pub name: String,
    pub free_mb: u64,
    pub total_mb: u64,
}

/// Reads free GPU memory. `Ok(None)`: no NVIDIA driver on this machine.
pub trait GpuProbe: Send + Sync + std::fmt::Debug {
    fn memory(&self) -> Result<Option<GpuMemory>, String>;
}

/// NVML through nvml-wrapper (the library is loaded at run time, so machines without a
/// driver run fine).
#[derive(Debug, Default)]
pub struct NvmlProbe;

impl GpuProbe for NvmlProbe {
    fn memory(&self) -> Result<Option<GpuMemory>, String> {
        use nvml_wrapper::error::NvmlError;
        let nvml = match nvml_wrapper::Nvml::init() {
            Ok(nvml) => nvml,
            Err(NvmlError::LibloadingError(_) | NvmlError::DriverNotLoaded) => return Ok(None),
            Err(e) => return Err(format!("NVML: {e}")),
        };
        let count = nvml.device_count().map_err(|e| format!("NVML: {e}"))?;
        let mut best: Option<GpuMemory> = None;
        for i in 0..count {
            let device = nvml.device_by_index(i).map_err(|e| format!("NVML: {e}"))?;
            let mem = device.memory_info().map_err(|e| format!("NVML: {e}"))?;
            let gpu = GpuMemory {
                name: device.name().unwrap_or_else(|_| format!("GPU {i}")),
                free_mb: mem.free >> 20,
                total_mb: mem.total >> 20,
            };
            if best.as_ref().is_none_or(|b| gpu.free_mb > b.free_mb) {
                best = Some(gpu);
            }
        }
        Ok(best)
    }
}

/// A GPU with a fixed amount of free memory.
#[derive(Debug, Clone)]
pub struct SimulatedGpu {
    pub free_mb: u64,
}

impl GpuProbe for SimulatedGpu {
    fn memory(&self) -> Result<Option<GpuMemory>, String> {
        Ok(Some(GpuMemory {
            name: "simulated GPU".to_owned(),
            free_mb: self.free_mb,
            total_mb: self.free_mb,
        }))
    }
}

/// The simulated GPU when `VOICEHOST_SIMULATED_GPU_FREE_MB` is set, NVML otherwise.
pub fn probe_from_env() -> Box<dyn GpuProbe> {
    match std::env::var("VOICEHOST_SIMULATED_GPU_FREE_MB")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        Some(free_mb) => Box::new(SimulatedGpu { free_mb }),
        None => Box::new(NvmlProbe),
    }
}

/// What a check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    Ok {
        gpu: String,
        free_mb: u64,
        needed_mb: u64,
    },
    Skipped(String),
    Fatal(String),
}

/// Checks that `needed_mb` MiB are free (`key` names the config key for the message).
pub fn check(probe: &dyn GpuProbe, mode: GpuMode, needed_mb: u64, key: &str) -> Guard {
    if mode == GpuMode::Off {
        return Guard::Skipped("gpu = off".to_owned());
    }
    match (probe.memory(), mode) {
        (Ok(Some(m)), _) if m.free_mb >= needed_mb => Guard::Ok {
            gpu: m.name,
            free_mb: m.free_mb,
            needed_mb,
        },
        (Ok(Some(m)), _) => Guard::Fatal(format!(
            "only {} MiB of GPU memory is free on {} ({} MiB total), {needed_mb} MiB needed \
             ([system] {key}); close what uses the GPU, or lower {key}",
            m.free_mb, m.name, m.total_mb
        )),
        (Ok(None), GpuMode::Required) => Guard::Fatal(
            "gpu = required, but no NVIDIA driver was found; install the driver, or set \
             [system] gpu = auto to run on the CPU"
                .to_owned(),
        ),
        (Ok(None), _) => Guard::Skipped(
            "no NVIDIA driver found; gpu = auto skips the VRAM check (CPU only)".to_owned(),
        ),
        (Err(e), GpuMode::Required) => Guard::Fatal(format!(
            "gpu = required, but the GPU cannot be queried: {e}"
        )),
        (Err(e), _) => Guard::Skipped(format!(
            "the GPU cannot be queried ({e}); gpu = auto skips the VRAM check"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct NoDriver;

    impl GpuProbe for NoDriver {
        fn memory(&self) -> Result<Option<GpuMemory>, String> {
            Ok(None)
        }
    }

    #[test]
    fn enough_memory_passes_too_little_is_fatal() {
        let gpu = SimulatedGpu { free_mb: 10_000 };
        assert!(matches!(
            check(&gpu, GpuMode::Auto, 8000, "min_vram_mb"),
            Guard::Ok {
                free_mb: 10_000,
                needed_mb: 8000,
                ..
            }
        ));
        let Guard::Fatal(why) = check(&gpu, GpuMode::Required, 64_000, "min_vram_mb") else {
            panic!("64000 MiB cannot be free");
        };
        assert!(
            why.contains("only 10000 MiB") && why.contains("min_vram_mb"),
            "{why}"
        );
    }

    #[test]
    fn no_driver_skips_in_auto_and_is_fatal_when_required() {
        assert!(matches!(
            check(&NoDriver, GpuMode::Auto, 8000, "min_vram_mb"),
            Guard::Skipped(_)
        ));
        assert!(matches!(
            check(&NoDriver, GpuMode::Required, 8000, "min_vram_mb"),
            Guard::Fatal(_)
        ));
        assert!(matches!(
            check(
                &SimulatedGpu { free_mb: 0 },
                GpuMode::Off,
                8000,
                "min_vram_mb"
            ),
            Guard::Skipped(_)
        ));
    }

    #[test]
    fn nvml_without_a_driver_reports_none() {
        // These machines have no NVIDIA driver; where one exists this reads real memory.
        match NvmlProbe.memory() {
            Ok(None) => {}
            Ok(Some(m)) => assert!(m.total_mb >= m.free_mb),
            Err(e) => panic!("NVML must not fail without a driver: {e}"),
        }
    }
}
