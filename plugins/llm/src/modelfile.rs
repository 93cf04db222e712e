//! The Modelfile (Ollama's syntax): `FROM`, `SYSTEM`, `PARAMETER`, `TEMPLATE`, `MESSAGE`.
//!
//! Values are bare words, `"quoted"` or `"""triple-quoted"""` (which may span lines);
//! `#` starts a comment line; instructions are case-insensitive. Every error names the line.

use std::fmt;
use std::path::{Path, PathBuf};

/// Sampling and length parameters (`PARAMETER name value`), with Ollama's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: i32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub repeat_last_n: i32,
    pub seed: u32,
    /// Context size in tokens.
    pub num_ctx: u32,
    /// Most tokens in a reply.
    pub num_predict: u32,
    /// Generation stops before any of these.
    pub stop: Vec<String>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            temperature: 0.8,
            top_p: 0.9,
            top_k: 40,
            min_p: 0.0,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            seed: 0,
            num_ctx: 2048,
            num_predict: 256,
            stop: Vec::new(),
        }
    }
}

/// A parsed Modelfile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Modelfile {
    /// `FROM` as written: a GGUF path (relative to the Modelfile) or an Ollama model name.
    pub from: String,
    pub system: Option<String>,
    /// `TEMPLATE`: a llama.cpp chat template (a built-in name such as `chatml`, or its
    /// Jinja text); empty means the GGUF's own.
    pub template: Option<String>,
    /// `MESSAGE role text`: example turns placed before the conversation.
    pub messages: Vec<(String, String)>,
    pub params: Params,
    /// The Modelfile's directory, which relative `FROM` paths start from.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelfileError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ModelfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

impl std::error::Error for ModelfileError {}

impl Modelfile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Modelfile, ModelfileError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelfileError {
            path: path.to_owned(),
            line: 0,
            message: format!("cannot read the Modelfile: {e}; set [llm] modelfile"),
        })?;
        let dir = path.parent().map(Path::to_owned).unwrap_or_default();
        Modelfile::parse(&text, path, dir)
    }

    /// `FROM` as a file: relative paths start at the Modelfile's directory.
    pub fn from_path(&self) -> PathBuf {
        let p = Path::new(&self.from);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.dir.join(p)
        }
    }

    pub fn parse(text: &str, path: &Path, dir: PathBuf) -> Result<Modelfile, ModelfileError> {
        let err = |line: usize, message: String| ModelfileError {
            path: path.to_owned(),
            line,
            message,
        };
        let mut m = Modelfile {
            dir,
            ..Modelfile::default()
        };
        let mut from_line = None;
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line_no = i + 1;
            let line = lines[i].trim();
            i += 1;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim_start();
            let instruction = word.to_ascii_uppercase();
            // A value: triple-quoted (possibly over several lines), quoted, or the rest.
            let mut value = |rest: &str| -> Result<String, ModelfileError> {
                if let Some(body) = rest.strip_prefix("\"\"\"") {
                    if let Some(end) = body.find("\"\"\"") {
                        return Ok(body[..end].to_owned());
                    }
                    let mut text = body.to_owned();
                    while i < lines.len() {
                        let l = lines[i];
                        i += 1;
                        if let Some(end) = l.find("\"\"\"") {
                            text.push('\n');
                            text.push_str(&l[..end]);
                            return Ok(text.trim_start_matches('\n').to_owned());
                        }
                        text.push('\n');
                        text.push_str(l);
                    }
                    Err(err(
                        line_no,
                        "\"\"\" is never closed; end the text with \"\"\"".into(),
                    ))
                } else if let Some(body) = rest.strip_prefix('"') {
                    body.strip_suffix('"').map(str::to_owned).ok_or_else(|| {
                        err(
                            line_no,
                            format!("unterminated quote in {rest:?}; close it with \""),
                        )
                    })
                } else {
                    Ok(rest.trim().to_owned())
                }
            };
            match instruction.as_str() {
                "FROM" => {
                    let v = value(rest)?;
                    if v.is_empty() {
                        return Err(err(
                            line_no,
                            "FROM needs a model: a .gguf path or an Ollama model name".into(),
                        ));
                    }
                    if let Some(first) = from_line {
                        return Err(err(
                            line_no,
                            format!("a second FROM (the first is on line {first}); keep one"),
                        ));
                    }
                    from_line = Some(line_no);
                    m.from = v;
                }
                "SYSTEM" => m.system = Some(value(rest)?),
                "TEMPLATE" => m.template = Some(value(rest)?),
                "MESSAGE" => {
                    let (role, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    let role = role.to_ascii_lowercase();
                    if !matches!(role.as_str(), "system" | "user" | "assistant") {
                        return Err(err(
                            line_no,
                            format!(
                                "MESSAGE role {role:?} is unknown; use system, user or assistant"
                            ),
                        ));
                    }
                    let text = value(text.trim_start())?;
                    m.messages.push((role, text));
                }
                "PARAMETER" => {
                    let (name, raw) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    let raw = value(raw.trim_start())?;
                    set_param(&mut m.params, name, &raw).map_err(|why| err(line_no, why))?;
                }
                "ADAPTER" | "LICENSE" => {
                    value(rest)?;
                }
                _ => {
                    return Err(err(
                        line_no,
                        format!(
                            "unknown instruction {word:?}; use FROM, SYSTEM, PARAMETER, TEMPLATE or MESSAGE"
                        ),
                    ));
                }
            }
        }
        if from_line.is_none() {
            return Err(err(
                lines.len().max(1),
                "no FROM line; add e.g. FROM ../models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            ));
        }
        Ok(m)
    }
}

fn set_param(p: &mut Params, name: &str, raw: &str) -> Result<(), String> {
    fn num<T: std::str::FromStr>(
        name: &str,
        raw: &str,
        range: &str,
        ok: impl Fn(&T) -> bool,
    ) -> Result<T, String> {
        raw.parse::<T>()
            .ok()
            .filter(|v| ok(v))
            .ok_or_else(|| format!("PARAMETER {name} {raw:?} is invalid; use {range}"))
    }
    match name {
        "temperature" => {
            p.temperature = num(name, raw, "a number from 0 to 2", |v: &f32| {
                (0.0..=2.0).contains(v)
            })?
        }
        "top_p" => {
            p.top_p = num(name, raw, "a number from 0 to 1", |v: &f32| {
                (0.0..=1.0).contains(v)
            })?
        }
        "min_p" => {
            p.min_p = num(name, raw, "a number from 0 to 1", |v: &f32| {
                (0.0..=1.0).contains(v)
            })?
        }
        "top_k" => {
            p.top_k = num(name, raw, "an integer from 0 to 1000", |v: &i32| {
                (0..=1000).contains(v)
            })?
        }
        "repeat_penalty" => {
            p.repeat_penalty = num(name, raw, "a number from 0 to 2", |v: &f32| {
                (0.0..=2.0).contains(v)
            })?
        }
        "repeat_last_n" => {
            p.repeat_last_n = num(name, raw, "an integer from -1 to 4096", |v: &i32| {
                (-1..=4096).contains(v)
            })?
        }
        "seed" => p.seed = num(name, raw, "an integer from 0 to 4294967295", |_: &u32| true)?,
        "num_ctx" => {
            p.num_ctx = num(name, raw, "an integer from 256 to 131072", |v: &u32| {
                (256..=131_072).contains(v)
            })?
        }
        "num_predict" => {
            p.num_predict = num(name, raw, "an integer from 1 to 8192", |v: &u32| {
                (1..=8192).contains(v)
            })?
        }
        "stop" => {
            if raw.is_empty() {
                return Err(
                    "PARAMETER stop needs a text, e.g. PARAMETER stop \"<|im_end|>\"".to_owned(),
                );
            }
            p.stop.push(raw.to_owned());
        }
        _ => {
            return Err(format!(
                "unknown PARAMETER {name:?}; use temperature, top_p, top_k, min_p, repeat_penalty, repeat_last_n, seed, num_ctx, num_predict or stop"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Modelfile, ModelfileError> {
        Modelfile::parse(text, Path::new("Modelfile"), PathBuf::from("/cfg"))
    }

    #[test]
    fn the_shipped_modelfile_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/Modelfile");
        let m = Modelfile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.from.ends_with(".gguf"));
        assert!(m.system.is_some_and(|s| s.contains("voice assistant")));
    }

    #[test]
    fn values_params_and_multiline_text() {
        let m = parse(
            "# a comment\nfrom ./m.gguf\nSYSTEM \"\"\"Line one.\nLine two.\"\"\"\nPARAMETER temperature 0.2\n\
             PARAMETER stop \"<|im_end|>\"\nPARAMETER stop User:\nPARAMETER num_ctx 4096\n\
             TEMPLATE chatml\nMESSAGE user Hi\nMESSAGE assistant \"Hello!\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.from_path(), Path::new("/cfg/./m.gguf"));
        assert_eq!(m.system.as_deref(), Some("Line one.\nLine two."));
        assert_eq!(m.params.temperature, 0.2);
        assert_eq!(m.params.num_ctx, 4096);
        assert_eq!(m.params.stop, ["<|im_end|>", "User:"]);
        assert_eq!(m.template.as_deref(), Some("chatml"));
        assert_eq!(m.messages[1], ("assistant".to_owned(), "Hello!".to_owned()));
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let cases = [
            (
                "FROM a.gguf\nPARAMETER temperature hot\n",
                2,
                "temperature \"hot\" is invalid",
            ),
            (
                "FROM a.gguf\nPARAMETER warmth 1\n",
                2,
                "unknown PARAMETER \"warmth\"",
            ),
            (
                "FROM a.gguf\n\nBOGUS x\n",
                3,
                "unknown instruction \"BOGUS\"",
            ),
            ("SYSTEM hi\n", 1, "no FROM line"),
            (
                "FROM a.gguf\nSYSTEM \"\"\"open\nnever closed\n",
                2,
                "never closed",
            ),
            ("FROM a.gguf\nFROM b.gguf\n", 2, "second FROM"),
            ("FROM a.gguf\nMESSAGE robot hi\n", 2, "role \"robot\""),
            ("FROM a.gguf\nPARAMETER num_ctx 10\n", 2, "256 to 131072"),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
            assert!(
                e.to_string().starts_with(&format!("Modelfile:{line}: ")),
                "{e}"
            );
        }
    }
}
