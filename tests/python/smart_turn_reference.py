"""Pipecat 1.14.0's Smart Turn v3 feature extraction and model call, as the reference the
Rust features are checked against.

usage: smart_turn_reference.py PIPECAT_WHEEL MODEL OUT_DIR CLIP.wav...

For each clip (16 kHz mono 16-bit WAV) it writes OUT_DIR/<n>.f32 (the 80 x 800 features,
little-endian float32, row after row) and prints one JSON line: the probabilities the model
gives on those features. The feature code is Pipecat's own `_whisper_features.py`, read out
of the wheel (so the rest of Pipecat and its dependencies are not needed); the 8 s cut and
left padding are `LocalSmartTurnAnalyzerV3._predict_endpoint`'s.
"""

import json
import sys
import types
import wave
import zipfile

import numpy as np
import onnxruntime as ort

MEMBER = "pipecat/audio/turn/smart_turn/_whisper_features.py"


def load_features(wheel):
    source = zipfile.ZipFile(wheel).read(MEMBER).decode()
    module = types.ModuleType("_whisper_features")
    exec(compile(source, MEMBER, "exec"), module.__dict__)
    return module.compute_whisper_log_mel_features


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


def last_8s(audio, n=8 * 16000):
    if len(audio) > n:
        return audio[-n:]
    return np.pad(audio, (n - len(audio), 0), mode="constant", constant_values=0)


def main():
    wheel, model, out_dir, clips = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    features = load_features(wheel)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(model, sess_options=so)
    probabilities = []
    for i, clip in enumerate(clips):
        f = features(last_8s(read_wav(clip)), do_normalize=True)
        f.astype("<f4").tofile(f"{out_dir}/{i}.f32")
        p = session.run(None, {"input_features": f[None, :, :]})[0][0].item()
        probabilities.append(p)
    print(json.dumps({"probabilities": probabilities}))


if __name__ == "__main__":
    main()
