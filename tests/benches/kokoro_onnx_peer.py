"""The Python peer for the tts benchmark: kokoro-onnx with the same int8 model and voice.

Prints one JSON line: time to the audio of the first clause (median over runs, after a
warm-up) and the real-time factor on a paragraph. Run by `cargo bench --bench tts`.
"""
import json
import sys
import tempfile
import time

import numpy as np
import onnxruntime
from kokoro_onnx import Kokoro

model, voice_bin, clause, paragraph, runs = sys.argv[1:6]
runs = int(runs)

voice = np.fromfile(voice_bin, dtype="<f4").reshape(510, 1, 256)
with tempfile.NamedTemporaryFile(suffix=".npz") as voices:
    np.savez(voices.name, af_heart=voice)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(model, sess_options=options)
    kokoro = Kokoro.from_session(session, voices.name)

kokoro.create(clause, voice="af_heart", speed=1.0, lang="en-us")  # warm-up
times = []
for _ in range(runs):
    t = time.perf_counter()
    kokoro.create(clause, voice="af_heart", speed=1.0, lang="en-us")
    times.append(time.perf_counter() - t)
times.sort()
t = time.perf_counter()
audio, rate = kokoro.create(paragraph, voice="af_heart", speed=1.0, lang="en-us")
elapsed = time.perf_counter() - t
print(json.dumps({
    "first_clause_ms": times[len(times) // 2] * 1000,
    "rtf": elapsed / (len(audio) / rate),
    "audio_s": len(audio) / rate,
}))
