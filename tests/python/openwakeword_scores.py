"""Reference scores from openwakeword 0.4.0 for the kwd parity test and benchmark.

Usage: python openwakeword_scores.py [--realtime] CLIP.wav MODEL.onnx [MODEL.onnx ...]

Feeds the 16 kHz 16-bit mono clip to openwakeword.Model in 1280-sample chunks (as its
predict_clip does, without padding) and prints JSON: {"models": [...], "scores": [[...]
per chunk], "cpu_s": CPU seconds spent in predict, "audio_s": seconds of audio}. With
--realtime each chunk is given when it would have been recorded (every 80 ms), as a
microphone would, instead of all at once.
"""

import json
import sys
import time
import wave

import numpy as np
import openwakeword


def main():
    args = sys.argv[1:]
    realtime = args[0] == "--realtime"
    if realtime:
        args = args[1:]
    clip, models = args[0], args[1:]
    with wave.open(clip, "rb") as f:
        assert f.getframerate() == 16000 and f.getsampwidth() == 2 and f.getnchannels() == 1
        audio = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16)
    model = openwakeword.Model(wakeword_model_paths=models)
    names = list(model.models.keys())
    scores = []
    cpu = 0.0
    began = time.monotonic()
    for start in range(0, len(audio) - 1280 + 1, 1280):
        chunk = audio[start : start + 1280]
        if realtime:
            time.sleep(max(0.0, began + (start + 1280) / 16000 - time.monotonic()))
        before = time.process_time()
        prediction = model.predict(chunk)
        cpu += time.process_time() - before
        scores.append([float(prediction[n]) for n in names])
    json.dump(
        {"models": names, "scores": scores, "cpu_s": cpu, "audio_s": len(audio) / 16000},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
