"""A Wyoming client built on the `wyoming` package (the library Home Assistant uses), for
the Wyoming server's tests. Each command prints one JSON object.

    describe HOST PORT
    transcribe HOST PORT WAV [--rate R --channels C]   (resampled/duplicated by the test)
    synthesize HOST PORT TEXT OUT_WAV [--voice NAME] [--stream]
    detect HOST PORT WAV [--name NAME]
"""

import argparse
import asyncio
import json
import time
import wave

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)
from wyoming.wake import Detect, Detection, NotDetected

SAMPLES_PER_CHUNK = 1024


async def read_until(client, done, timeout=60.0):
    """Events until `done(event)` is true (that one included)."""
    events = []
    while True:
        event = await asyncio.wait_for(client.read_event(), timeout)
        if event is None:
            events.append(None)
            return events
        events.append(event)
        if done(event) or Error.is_type(event.type):
            return events


def types(events):
    return [e.type if e is not None else None for e in events]


async def describe(args):
    async with AsyncTcpClient(args.host, args.port) as client:
        started = time.monotonic()
        await client.write_event(Describe().event())
        events = await read_until(client, lambda e: Info.is_type(e.type), timeout=5.0)
        info = Info.from_event(events[-1])
        return {
            "ms": (time.monotonic() - started) * 1000,
            "types": types(events),
            "info": info.to_dict(),
        }


async def send_wav(client, path, start_event):
    with wave.open(path, "rb") as wav:
        rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    await client.write_event(start_event.event()) if start_event else None
    await client.write_event(AudioStart(rate=rate, width=width, channels=channels, timestamp=0).event())
    step = SAMPLES_PER_CHUNK * width * channels
    at = 0
    for i in range(0, len(frames), step):
        chunk = frames[i : i + step]
        await client.write_event(
            AudioChunk(rate=rate, width=width, channels=channels, audio=chunk, timestamp=at).event()
        )
        at += len(chunk) // (width * channels) * 1000 // rate
    stopped = time.monotonic()
    await client.write_event(AudioStop(timestamp=at).event())
    return stopped


async def transcribe(args):
    async with AsyncTcpClient(args.host, args.port) as client:
        stopped = await send_wav(client, args.wav, Transcribe(language="en"))
        events = await read_until(client, lambda e: e.type == "transcript-stop")
        text = None
        for e in events:
            if e is not None and Transcript.is_type(e.type):
                text = Transcript.from_event(e).text
        chunks = "".join(
            e.data.get("text", "") for e in events if e is not None and e.type == "transcript-chunk"
        )
        return {
            "types": types(events),
            "text": text,
            "chunks": chunks,
            "stop_to_transcript_ms": (time.monotonic() - stopped) * 1000,
            "errors": [e.data for e in events if e is not None and Error.is_type(e.type)],
        }


async def synthesize(args):
    voice = SynthesizeVoice(name=args.voice) if args.voice else None
    async with AsyncTcpClient(args.host, args.port) as client:
        started = time.monotonic()
        first_audio = None
        if args.stream:
            await client.write_event(SynthesizeStart(voice=voice).event())
            # As an LLM would: a few characters at a time.
            for i in range(0, len(args.text), 7):
                await client.write_event(SynthesizeChunk(text=args.text[i : i + 7]).event())
            # The whole text again, for servers that do not stream: must not be spoken twice.
            await client.write_event(Synthesize(text=args.text, voice=voice).event())
            await client.write_event(SynthesizeStop().event())
            done = lambda e: SynthesizeStopped.is_type(e.type)
        else:
            await client.write_event(Synthesize(text=args.text, voice=voice).event())
            done = lambda e: AudioStop.is_type(e.type)
        events = []
        audio = bytearray()
        rate = None
        while True:
            event = await asyncio.wait_for(client.read_event(), 60.0)
            if event is None:
                events.append(None)
                break
            events.append(event)
            if AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                if first_audio is None:
                    first_audio = (time.monotonic() - started) * 1000
                rate = rate or chunk.rate
                audio.extend(chunk.audio)
            if done(event) or Error.is_type(event.type):
                break
        if rate:
            with wave.open(args.out, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(rate)
                wav.writeframes(bytes(audio))
        return {
            "types": [t for t in types(events) if t != "audio-chunk"],
            "chunks": sum(1 for t in types(events) if t == "audio-chunk"),
            "rate": rate,
            "audio_ms": len(audio) // 2 * 1000 // rate if rate else 0,
            "first_audio_ms": first_audio,
            "errors": [e.data for e in events if e is not None and Error.is_type(e.type)],
        }


async def detect(args):
    async with AsyncTcpClient(args.host, args.port) as client:
        names = [args.name] if args.name else None
        await send_wav(client, args.wav, Detect(names=names))
        # Home Assistant stops at the first detection; not-detected comes after audio-stop.
        done = lambda e: NotDetected.is_type(e.type) or Detection.is_type(e.type)
        events = await read_until(client, done, timeout=20.0)
        detections = [
            {"name": d.name, "timestamp": d.timestamp}
            for d in (Detection.from_event(e) for e in events if e is not None and Detection.is_type(e.type))
        ]
        return {"types": types(events), "detections": detections}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["describe", "transcribe", "synthesize", "detect"])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--voice")
    parser.add_argument("--name")
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    if args.command in ("transcribe", "detect"):
        args.wav = args.rest[0]
    if args.command == "synthesize":
        args.text, args.out = args.rest[0], args.rest[1]
    run = {"describe": describe, "transcribe": transcribe, "synthesize": synthesize, "detect": detect}
    print(json.dumps(asyncio.run(run[args.command](args))))


if __name__ == "__main__":
    main()
