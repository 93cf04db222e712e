"""Reference features from pymicro-features 2.0.2 for the kwd micro frontend parity test.

Usage: python micro_features.py CLIP.wav

Feeds the 16 kHz 16-bit mono clip to pymicro_features.MicroFrontend 160 samples (320
bytes) at a time, moving on by the samples it reports read, as pymicro-wakeword's
MicroWakeWordFeatures does, and prints JSON: {"frames": [[40 floats] per 10 ms frame]}.
"""

import json
import sys
import wave

from pymicro_features import MicroFrontend

BYTES_PER_SAMPLE = 2
BYTES_PER_CHUNK = 160 * BYTES_PER_SAMPLE


def main():
    with wave.open(sys.argv[1], "rb") as f:
        assert f.getframerate() == 16000 and f.getsampwidth() == 2 and f.getnchannels() == 1
        audio = f.readframes(f.getnframes())
    frontend = MicroFrontend()
    frames = []
    at = 0
    while at + BYTES_PER_CHUNK <= len(audio):
        result = frontend.process_samples(audio[at : at + BYTES_PER_CHUNK])
        at += result.samples_read * BYTES_PER_SAMPLE
        if result.features:
            frames.append(result.features)
    json.dump({"frames": frames}, sys.stdout)


if __name__ == "__main__":
    main()
