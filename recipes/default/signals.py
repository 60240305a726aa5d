"""Generated noises (coloured, hum, engine, music) and simulated room impulse responses, all at 48 kHz.

Each function is a pure function of its random generator, so build_corpus.py stays deterministic.
"""

from __future__ import annotations

import numpy as np

SR = 48_000
CHORDS = ([0, 4, 7], [0, 3, 7], [0, 4, 7, 11], [0, 3, 7, 10], [0, 5, 7], [0, 7])  # semitones above the root
RIR_TAIL_RT60 = 1.5  # RIRs are cut at 1.5 x RT60 (+ 0.1 s): the rest is > 90 dB down


def colored_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    exponent = rng.uniform(-2.0, 2.0)  # spectral slope: brown (-2) .. violet (+2), per power
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    x = np.fft.irfft(spec * f ** (exponent / 2), n)
    if rng.random() < 0.5:  # slow amplitude modulation (wind, traffic)
        t = np.arange(n) / SR
        x *= 1 + rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * rng.uniform(0.05, 2) * t + rng.uniform(0, 6.3))
    return x


def hum(rng: np.random.Generator, n: int, f0: float | None = None) -> np.ndarray:
    """Harmonics of `f0` (default: mains, 50/60/100/120 Hz +-1 %) over a faint noise floor."""
    if f0 is None:
        f0 = rng.choice([50.0, 60.0, 100.0, 120.0]) * rng.uniform(0.99, 1.01)
    t = np.arange(n) / SR
    x = sum(rng.uniform(0, 1) / k**rng.uniform(0.3, 1.5) * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3))
            for k in range(1, int(rng.integers(3, 40))))
    return x + rng.uniform(0, 0.1) * np.std(x) * rng.standard_normal(n)


def engine(rng: np.random.Generator, n: int) -> np.ndarray:
    """An engine or machine: firing pulses (8-80 per second, the rate swaying +-10 %) through a
    decaying resonance (80-1500 Hz), over low rumble."""
    t = np.arange(n) / SR
    rate = rng.uniform(8.0, 80.0) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6.3)))
    phase = np.cumsum(rate) / SR
    pulses = np.zeros(n)
    fired = np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1
    pulses[fired] = rng.uniform(0.7, 1.3, fired.size)
    tr = np.arange(int(0.1 * SR)) / SR
    ring = np.sin(2 * np.pi * np.exp(rng.uniform(np.log(80.0), np.log(1500.0))) * tr) * np.exp(-tr / rng.uniform(0.005, 0.03))
    size = n + ring.size
    x = np.fft.irfft(np.fft.rfft(pulses, size) * np.fft.rfft(ring, size), size)[:n]
    spec = np.fft.rfft(rng.standard_normal(n)) * np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0) ** rng.uniform(-1.0, -0.5)
    rumble = np.fft.irfft(spec, n)
    return x / (np.std(x) + 1e-9) + rng.uniform(0.1, 1.0) * rumble / (np.std(rumble) + 1e-9)


def music(rng: np.random.Generator, n: int) -> np.ndarray:
    out, t0 = np.zeros(n), 0
    while t0 < n:
        dur = int(SR * rng.uniform(0.2, 1.5))
        t = np.arange(dur) / SR
        root = 110 * 2 ** (rng.integers(0, 24) / 12)
        env = np.minimum(t / rng.uniform(0.005, 0.1), 1) * np.exp(-t / rng.uniform(0.2, 2.0))
        chord = CHORDS[int(rng.integers(len(CHORDS)))]
        note = sum(np.sin(2 * np.pi * root * 2 ** (s / 12) * h * t) / h**rng.uniform(0.7, 2)
                   for s in chord for h in range(1, int(rng.integers(2, 9))))
        seg = (note * env)[: n - t0]
        out[t0 : t0 + len(seg)] += seg
        t0 += int(dur * rng.uniform(0.5, 1.0))
    return out


def shoebox_rir(rng: np.random.Generator, max_order_cap: int) -> np.ndarray:
    """A random shoebox room (3-12 x 2.5-10 x 2.4-4.5 m, RT60 0.2-1.0 s), random source and mic.

    Image sources up to the order Sabine's formula needs (capped), with randomized ISM to avoid
    the sweeping echoes of a perfectly regular image grid.
    """
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(3, 12), rng.uniform(2.5, 10), rng.uniform(2.4, 4.5)])
    rt60 = rng.uniform(0.2, 1.0)
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=SR, materials=pra.Material(absorption),
                       max_order=min(max_order, max_order_cap), use_rand_ism=True)
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    pra.random.seed(int(rng.integers(2**31)))  # randomized ISM: pyroomacoustics seeds numpy and C++ generators
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)[: int(RIR_TAIL_RT60 * rt60 * SR) + SR // 10]
