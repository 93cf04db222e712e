//! Parsing the `output = …` / `input = …` / `audio_device_probe = …` config values.

use std::path::PathBuf;

use crate::AudioError;

/// Where audio goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// The sound card when one really plays, else `wav:` at this path (with a warning).
    Auto(PathBuf),
    /// A cpal output device: `None` = the default one.
    Device(Option<String>),
    Wav(PathBuf),
    Null,
}

/// Where audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// The default capture device when one opens, else silence (with a warning).
    Auto,
    Device(Option<String>),
    /// Silence in real time: a microphone that hears nothing.
    Null,
    /// A WAV file read in real time; `looped` starts it again at the end.
    Wav {
        path: PathBuf,
        looped: bool,
    },
}

/// How file and null outputs (and WAV inputs) are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// As fast as a device would play or record.
    Realtime,
    /// As fast as possible (tests, batch rendering).
    Fast,
}

/// `audio_device_probe`: how hard a device is checked before the plugin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeMode {
    /// The device must really play (or record) in real time, else the plugin is NOT_SERVING.
    Strict,
    /// Problems are logged; the plugin serves anyway.
    Lenient,
    Off,
}

impl OutputSpec {
    /// `auto`, `device`, `device:NAME`, `wav:PATH`, `null`. `auto_wav` is the file `auto`
    /// falls back to.
    pub fn parse(value: &str, auto_wav: PathBuf) -> Result<OutputSpec, AudioError> {
        let value = value.trim();
        Ok(match value.split_once(':') {
            None if value == "auto" => OutputSpec::Auto(auto_wav),
            None if value == "device" || value == "default" => OutputSpec::Device(None),
            None if value == "null" => OutputSpec::Null,
            Some(("device", name)) if !name.is_empty() => OutputSpec::Device(Some(name.to_owned())),
            Some(("wav", path)) if !path.is_empty() => OutputSpec::Wav(PathBuf::from(path)),
            _ => {
                return Err(AudioError::Spec(format!(
                    "output {value:?}: expected auto, device, device:NAME, wav:PATH or null"
                )));
            }
        })
    }
}

impl InputSpec {
    /// `auto`, `device`, `device:NAME`, `wav:PATH`, `wav:PATH:loop`, `null`.
    pub fn parse(value: &str) -> Result<InputSpec, AudioError> {
        let value = value.trim();
        Ok(match value.split_once(':') {
            None if value == "auto" => InputSpec::Auto,
            None if value == "null" => InputSpec::Null,
            None if value == "device" || value == "default" => InputSpec::Device(None),
            Some(("device", name)) if !name.is_empty() => InputSpec::Device(Some(name.to_owned())),
            Some(("wav", rest)) if !rest.is_empty() => match rest.strip_suffix(":loop") {
                Some(path) => InputSpec::Wav {
                    path: PathBuf::from(path),
                    looped: true,
                },
                None => InputSpec::Wav {
                    path: PathBuf::from(rest),
                    looped: false,
                },
            },
            _ => {
                return Err(AudioError::Spec(format!(
                    "input {value:?}: expected auto, device, device:NAME, wav:PATH, wav:PATH:loop or null"
                )));
            }
        })
    }
}

impl std::str::FromStr for Pacing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "realtime" => Ok(Pacing::Realtime),
            "fast" => Ok(Pacing::Fast),
            _ => Err("expected realtime or fast".to_owned()),
        }
    }
}

impl std::str::FromStr for ProbeMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(ProbeMode::Strict),
            "lenient" => Ok(ProbeMode::Lenient),
            "off" => Ok(ProbeMode::Off),
            _ => Err("expected strict, lenient or off".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_input_specs() {
        let auto = PathBuf::from("logs/out.wav");
        assert_eq!(
            OutputSpec::parse("wav:/tmp/a.wav", auto.clone()).unwrap(),
            OutputSpec::Wav(PathBuf::from("/tmp/a.wav"))
        );
        assert_eq!(
            OutputSpec::parse("device:hw:1,0", auto.clone()).unwrap(),
            OutputSpec::Device(Some("hw:1,0".to_owned()))
        );
        assert_eq!(
            OutputSpec::parse("auto", auto.clone()).unwrap(),
            OutputSpec::Auto(auto.clone())
        );
        let err = OutputSpec::parse("speaker", auto).unwrap_err().to_string();
        assert!(
            err.contains("\"speaker\"") && err.contains("wav:PATH"),
            "{err}"
        );
        assert_eq!(
            InputSpec::parse("wav:in.wav:loop").unwrap(),
            InputSpec::Wav {
                path: PathBuf::from("in.wav"),
                looped: true
            }
        );
        assert!(InputSpec::parse("wav:").is_err());
    }
}
