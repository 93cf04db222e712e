//! Checking transcriptions: the thread count of the tests' own Whisper runs, and
//! transcripts compared as words and by word error rate.

/// Threads for the tests' own Whisper transcriptions: one. whisper.cpp's thread pool spins
/// at its barriers, so two threads on a busy 2-core machine took minutes for one clip
/// (one thread: seconds).
pub const WHISPER_THREADS: usize = 1;

/// Lower case, letters, digits and apostrophes only, split into words.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Word error rate of `hypothesis` against `reference`, after [`words`].
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (words(reference), words(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rw != hw);
            row[j + 1] = sub.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}
