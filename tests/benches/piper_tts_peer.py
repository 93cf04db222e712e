"""The Python peer for the piper benchmark: piper-tts with the same voice file and threads.

Usage: piper_tts_peer.py MODEL CONFIG CLAUSE PARAGRAPH RUNS THREADS

Prints one JSON line: the first clause's audio (median wall and CPU ms over RUNS after a
warm-up), the real-time factor on a paragraph (piper-tts synthesises it sentence by
sentence), and the phoneme ids it gave the model for the clause. Run by `cargo bench
--bench piper`.
"""
import json
import sys
import time

import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig

model, config, clause, paragraph, runs, threads = sys.argv[1:7]
runs, threads = int(runs), int(threads)

with open(config, encoding="utf-8") as f:
    piper_config = PiperConfig.from_dict(json.load(f))
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
session = onnxruntime.InferenceSession(
    model, sess_options=options, providers=["CPUExecutionProvider"]
)
voice = PiperVoice(session=session, config=piper_config)


def first_audio(text):
    """Wall and CPU seconds to the first audio chunk of `text`, and that chunk."""
    wall, cpu = time.perf_counter(), time.process_time()
    chunk = next(iter(voice.synthesize(text)))
    return time.perf_counter() - wall, time.process_time() - cpu, chunk


_, _, chunk = first_audio(clause)  # warm-up
ids = chunk.phoneme_ids
walls, cpus = [], []
for _ in range(runs):
    wall, cpu, _ = first_audio(clause)
    walls.append(wall)
    cpus.append(cpu)
walls.sort()
cpus.sort()

wall, cpu = time.perf_counter(), time.process_time()
samples = sum(len(c.audio_float_array) for c in voice.synthesize(paragraph))
elapsed, cpu_elapsed = time.perf_counter() - wall, time.process_time() - cpu
audio_s = samples / piper_config.sample_rate
print(json.dumps({
    "first_clause_ms": walls[runs // 2] * 1000,
    "first_clause_cpu_ms": cpus[runs // 2] * 1000,
    "rtf": elapsed / audio_s,
    "rtf_cpu": cpu_elapsed / audio_s,
    "audio_s": audio_s,
    "ids": ids,
}))
