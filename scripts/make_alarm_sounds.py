"""Write the map's alarm sounds (dashboards/static/sounds/*.wav), one per priority, with the standard library.

The sounds ship with the page so the duty room hears alarms without a network. Each is short (the page
repeats it until silenced or acknowledged) and small (8-bit mono, 8,000 Hz: a few KB). The patterns
follow the IEC 60601-1-8 idea that urgency is heard in the rhythm: urgent a fast two-tone warble, high
three pulses, medium two, low one soft chime.

    python scripts/make_alarm_sounds.py   # rewrites the four files
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

RATE = 8_000
OUT = Path(__file__).resolve().parent.parent / "dashboards" / "static" / "sounds"

# priority → [(frequency Hz or 0 for silence, seconds)], then a volume (0..1)
PATTERNS: dict[str, tuple[list[tuple[float, float]], float]] = {
    "urgent": ([(988, 0.09), (784, 0.09)] * 4 + [(0, 0.18)], 0.9),
    "high": ([(880, 0.12), (0, 0.08)] * 3 + [(0, 0.3)], 0.75),
    "medium": ([(660, 0.16), (0, 0.1)] * 2 + [(0, 0.4)], 0.6),
    "low": ([(523, 0.3), (0, 0.5)], 0.4),
}


def samples(pattern: list[tuple[float, float]], volume: float) -> bytes:
    """8-bit unsigned PCM of the pattern, each tone with a 10 ms fade in and out (no clicks)."""
    out = bytearray()
    for freq, seconds in pattern:
        n = int(RATE * seconds)
        fade = int(RATE * 0.01)
        for i in range(n):
            envelope = min(1.0, i / fade, (n - 1 - i) / fade) if freq else 0.0
            value = volume * envelope * math.sin(2 * math.pi * freq * i / RATE)
            out.append(128 + int(127 * value))
    return bytes(out)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (pattern, volume) in PATTERNS.items():
        with wave.open(str(OUT / f"alarm-{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(1)
            w.setframerate(RATE)
            w.writeframes(samples(pattern, volume))


if __name__ == "__main__":
    main()
