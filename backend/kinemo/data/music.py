"""Music features per motion frame (librosa), and motion-derived pseudo-beats.

``music_features(path, fps=30)`` / ``features_from_samples(y, sr, fps=30)`` give a
:class:`MusicFeatures` whose ``matrix`` ``(T, MUSIC_DIM)`` float32 is what the model
reads; frame ``j`` describes audio time ``start_s + j / fps``. Columns:

====== ======= ===========================================================
cols   name    meaning
====== ======= ===========================================================
0      onset   onset strength envelope, divided by the song's 99th percentile
1      beat    1 on the frame nearest each tracked beat, else 0
2-3    phase   sin, cos of 2 pi * beat phase (0 at a beat, 0.5 halfway)
4      tempo   local tempo from the spacing of the beats around the frame, bpm / 120
5-16   chroma  12 pitch classes (C, C#, ..., B), each frame's maximum = 1
17-36  mfcc    20 MFCCs / 100 (fixed scale, no per-song statistics)
====== ======= ===========================================================

Analysis runs on the whole song at 22050 Hz with a 512-sample hop (43 frames/s), the
spectrogram and tempo curve 20 s at a time so that memory does not grow with the song;
features are then linearly interpolated to the motion's frame times, so any fps
works. Beats come from librosa's dynamic-programming tracker driven by a
time-varying tempo estimate, so a song that speeds up keeps its beats.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

MUSIC_DIM = 37
BEAT_COLUMN = 1          # the column layout of the table above, for code that reads single channels
PHASE_COLUMNS = (2, 3)
TEMPO_COLUMN = 4
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class MusicConfig:
    sr: int = 22050           # analysis sample rate (audio is resampled to it)
    hop: int = 512            # analysis hop in samples
    n_fft: int = 2048
    n_mfcc: int = 20
    silence_rms: float = 1e-4  # RMS below this over the whole song counts as silent
    chunk_s: float = 20.0     # spectrogram analysed this much at a time (memory flat in song length)
    tuning_s: float = 30.0    # chroma's tuning is estimated on this much of the song's start
    tempo_ac_s: float = 8.0   # tempogram window, seconds (librosa's default)


@dataclass(eq=False)
class MusicFeatures:
    """Per-frame features at ``fps``; T frames, frame j at audio time ``start_s + j / fps``."""

    fps: float
    start_s: float
    tempo: float              # the song's overall tempo, bpm (mean beat rate)
    onset: np.ndarray         # (T,)
    beats: np.ndarray         # (T,) 0/1
    beat_frames: np.ndarray   # (K,) int, frames holding a beat
    beat_phase: np.ndarray    # (T,) in [0, 1)
    local_tempo: np.ndarray   # (T,) bpm
    chroma: np.ndarray        # (T, 12)
    mfcc: np.ndarray          # (T, 20)

    @property
    def num_frames(self) -> int:
        return len(self.onset)

    @property
    def matrix(self) -> np.ndarray:
        """``(T, MUSIC_DIM)`` float32, columns as in the module docstring."""
        ang = 2 * np.pi * self.beat_phase
        m = np.concatenate([self.onset[:, None], self.beats[:, None], np.sin(ang)[:, None], np.cos(ang)[:, None],
                            self.local_tempo[:, None] / 120.0, self.chroma, self.mfcc / 100.0], axis=1)
        assert m.shape[1] == MUSIC_DIM
        return m.astype(np.float32)


def load_audio(path: str | Path, sr: int = MusicConfig.sr) -> np.ndarray:
    """Mono samples at ``sr`` from a wav/flac/ogg/mp3 file; UserError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file {path} does not exist")
    import librosa
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # librosa warns when it falls back to audioread
            y, _ = librosa.load(str(path), sr=sr, mono=True)
    except Exception as e:  # noqa: BLE001 - soundfile, audioread and decoders raise many types
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"cannot read audio file {path}: {msg}") from None
    if y.size == 0:
        raise UserError(f"audio file {path} holds no samples")
    return y


def _interp(times: np.ndarray, src_times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values (K, ...)`` at ``src_times (K,)`` to ``times (T,)``."""
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(times, src_times, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    return out.reshape((len(times),) + values.shape[1:])


def _beat_grid(beat_times: np.ndarray, times: np.ndarray, tempo: float) -> tuple[np.ndarray, np.ndarray]:
    """Beat phase in [0, 1) and local tempo (bpm) at ``times`` from beat times (extrapolated at the ends)."""
    if len(beat_times) < 2:
        period = 60.0 / tempo
        b0 = beat_times[0] if len(beat_times) else 0.0
        return np.mod((times - b0) / period, 1.0), np.full(len(times), tempo)
    gaps = np.diff(beat_times)
    k = np.clip(np.searchsorted(beat_times, times, side="right") - 1, 0, len(gaps) - 1)
    phase = np.mod((times - beat_times[k]) / gaps[k], 1.0)
    return phase, 60.0 / gaps[k]


def _chunk_frames(sr: int, cfg: MusicConfig) -> int:
    """Analysis frames per chunk of ``cfg.chunk_s`` seconds."""
    return max(1, int(cfg.chunk_s * sr / cfg.hop))


def _power(y: np.ndarray, k0: int, k1: int, cfg: MusicConfig) -> np.ndarray:
    """Power spectrogram frames ``k0..k1-1`` ``(1 + n_fft/2, k1 - k0)`` of ``y`` zero-padded by ``n_fft/2`` on
    both sides: the same numbers as librosa's centred STFT of the whole signal, from a slice of it."""
    import librosa
    seg = y[k0 * cfg.hop:(k1 - 1) * cfg.hop + cfg.n_fft]
    return np.abs(librosa.stft(seg, n_fft=cfg.n_fft, hop_length=cfg.hop, center=False)) ** 2


def _spectral(y: np.ndarray, sr: int, cfg: MusicConfig) -> tuple[np.ndarray, np.ndarray]:
    """Mel power ``(128, K)`` and chroma ``(12, K)`` of mono ``y`` at the analysis hop (K = 1 + len(y) // hop).

    Computed ``cfg.chunk_s`` at a time, so the spectrogram of a long song is never held whole and memory stays
    flat in song length. The tuning that chroma needs is estimated once, on the song's first ``tuning_s``.
    """
    import librosa
    padded = np.pad(y, cfg.n_fft // 2)
    K = 1 + len(y) // cfg.hop
    step = _chunk_frames(sr, cfg)
    first = min(K, int(cfg.tuning_s * sr / cfg.hop))
    tuning = librosa.estimate_tuning(S=_power(padded, 0, first, cfg), sr=sr, n_fft=cfg.n_fft, bins_per_octave=12)
    mel, chroma = [], []
    for k0 in range(0, K, step):
        power = _power(padded, k0, min(K, k0 + step), cfg)
        mel.append(librosa.feature.melspectrogram(S=power, sr=sr, n_fft=cfg.n_fft, hop_length=cfg.hop))
        chroma.append(librosa.feature.chroma_stft(S=power, sr=sr, n_fft=cfg.n_fft, hop_length=cfg.hop, tuning=tuning))
    return np.concatenate(mel, 1), np.concatenate(chroma, 1)


def _tempo_curve(onset: np.ndarray, sr: int, cfg: MusicConfig) -> np.ndarray:
    """Per-frame tempo (bpm) ``(K,)`` of an onset envelope ``(K,)``, by librosa's local tempogram, a chunk at a
    time: each frame's estimate reads only ``tempo_ac_s`` of onsets around it, so chunks with that margin give
    the whole song's numbers without its whole tempogram (~0.7 MB per second of music) in memory."""
    import librosa
    K = len(onset)
    margin = int(librosa.time_to_frames(cfg.tempo_ac_s, sr=sr, hop_length=cfg.hop)) // 2 + 1
    step = _chunk_frames(sr, cfg)
    out = np.empty(K)
    for k0 in range(0, K, step):
        k1 = min(K, k0 + step)
        a, b = max(0, k0 - margin), min(K, k1 + margin)
        t = librosa.feature.tempo(onset_envelope=onset[a:b], sr=sr, hop_length=cfg.hop, aggregate=None,
                                  ac_size=cfg.tempo_ac_s)
        out[k0:k1] = t[k0 - a:k1 - a]
    return out


def features_from_samples(y: np.ndarray, sr: int, fps: float = 30.0, *, start_s: float = 0.0,
                          frames: int | None = None, name: str = "<samples>",
                          cfg: MusicConfig = MusicConfig()) -> MusicFeatures:
    """Features of mono samples ``y (S,)`` at ``sr`` for ``frames`` frames from ``start_s`` (default: to the end).

    The whole signal is analysed (beat tracking needs context); frames past its end repeat
    the last analysis frame. UserError if the signal is silent.
    """
    import librosa
    y = np.asarray(y, np.float32)
    if y.ndim != 1:
        raise UserError(f"{name}: expected mono samples (S,), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise UserError(f"{name}: audio holds NaN or infinite samples")
    if y.size < cfg.n_fft or float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) < cfg.silence_rms:
        raise UserError(f"{name}: the audio is silent (or shorter than {cfg.n_fft / sr:.2f} s); "
                        "music features need sound")
    if sr != cfg.sr:
        y = librosa.resample(y, orig_sr=sr, target_sr=cfg.sr)
        sr = cfg.sr
    duration = len(y) / sr
    if frames is None:
        frames = max(int(np.floor((duration - start_s) * fps)), 0)
    times = start_s + np.arange(frames) / fps

    mel, chroma = _spectral(y, sr, cfg)
    onset = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=cfg.hop)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=cfg.n_mfcc)
    # a time-varying tempo curve lets the tracker follow accelerating or slowing music
    tempo_curve = _tempo_curve(onset, sr, cfg)
    _, beat_idx = librosa.beat.beat_track(onset_envelope=onset, sr=sr, hop_length=cfg.hop, bpm=tempo_curve,
                                          units="frames")
    src_times = librosa.frames_to_time(np.arange(onset.shape[0]), sr=sr, hop_length=cfg.hop)
    beat_times = src_times[beat_idx]

    scale = float(np.percentile(onset, 99)) or 1.0
    if len(beat_times) >= 2:   # mean beat rate: beat times are quantised to the hop, single gaps jitter
        tempo = float(60.0 * (len(beat_times) - 1) / (beat_times[-1] - beat_times[0]))
    else:
        tempo = float(np.median(tempo_curve))
    phase, local = _beat_grid(beat_times, times, tempo)
    beats = np.zeros(frames, np.float32)
    bf = np.round((beat_times - start_s) * fps).astype(np.int64)
    bf = np.unique(bf[(bf >= 0) & (bf < frames)])
    beats[bf] = 1.0
    return MusicFeatures(
        fps=float(fps), start_s=float(start_s), tempo=tempo,
        onset=(_interp(times, src_times, onset[:, None])[:, 0] / scale).astype(np.float32),
        beats=beats, beat_frames=bf, beat_phase=phase.astype(np.float32), local_tempo=local.astype(np.float32),
        chroma=_interp(times, src_times, chroma.T).astype(np.float32),
        mfcc=_interp(times, src_times, mfcc.T).astype(np.float32))


def music_features(path: str | Path, fps: float = 30.0, *, start_s: float = 0.0, frames: int | None = None,
                   cfg: MusicConfig = MusicConfig()) -> MusicFeatures:
    """Features of an audio file (wav/flac/ogg/mp3) for ``frames`` frames from ``start_s``."""
    y = load_audio(path, cfg.sr)
    return features_from_samples(y, cfg.sr, fps, start_s=start_s, frames=frames, name=str(path), cfg=cfg)


def click_track(times, seconds: float, sr: int = MusicConfig.sr) -> np.ndarray:
    """A metronome: mono samples ``(seconds * sr,)`` float32 with short 1 kHz clicks at ``times`` (seconds)
    over a quiet 220 Hz tone. Known beats, for calibrating and testing anything that listens to music."""
    n = int(seconds * sr)
    y = 0.02 * np.sin(2 * np.pi * 220 * np.arange(n) / sr)
    k = np.arange(int(0.02 * sr))
    click = np.sin(2 * np.pi * 1000 * k / sr) * np.exp(-k / (0.004 * sr))
    for t in times:
        i = int(round(t * sr))
        y[i:i + len(k)] += click[: n - i]
    return y.astype(np.float32)


def kinematic_beats(positions: np.ndarray, fps: float, min_spacing_s: float = 0.25,
                    smooth_s: float = 0.05, prominence: float = 0.1) -> np.ndarray:
    """Motion-derived pseudo-beats: frames where the mean joint speed has a local minimum.

    positions: ``(T, J, 3)``. The speed is lightly smoothed (Gaussian, ``smooth_s``); a minimum
    must dip by ``prominence`` times the speed's 5-95 percentile range below its surroundings
    (flat stretches give none), and minima closer than ``min_spacing_s`` keep only the slower
    one. Returns ``(K,)`` int frames.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks
    p = np.asarray(positions, np.float64)
    if p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"positions must be (T, J, 3), got {p.shape}")
    if len(p) < 3:
        return np.zeros(0, np.int64)
    v = np.linalg.norm(np.diff(p, axis=0), axis=-1).mean(axis=1) * fps      # (T-1,) between frames
    speed = np.concatenate([[v[0]], (v[1:] + v[:-1]) / 2, [v[-1]]])       # (T,) at frames
    if smooth_s > 0:
        speed = gaussian_filter1d(speed, smooth_s * fps, mode="nearest")
    spread = float(np.percentile(speed, 95) - np.percentile(speed, 5))
    peaks, _ = find_peaks(-speed, distance=max(1, int(round(min_spacing_s * fps))),
                          prominence=max(prominence * spread, 1e-9))
    return peaks.astype(np.int64)


def pseudo_music(beat_frames: np.ndarray, frames: int, fps: float = 30.0) -> np.ndarray:
    """A music matrix ``(frames, MUSIC_DIM)`` holding only a beat grid (beat, phase, tempo columns).

    Built from a motion's own kinematic beats, it lets every clip, with or without a song,
    teach the model to put its movement accents on the beat channels; onset, chroma and MFCC
    stay zero, which is how the model can tell such a grid from real music.
    """
    out = np.zeros((frames, MUSIC_DIM), np.float32)
    bf = np.asarray(beat_frames, np.int64)
    bf = bf[(bf >= 0) & (bf < frames)]
    if frames == 0 or len(bf) == 0:
        return out
    times = np.arange(frames) / fps
    bt = bf / fps
    tempo = 60.0 * (len(bt) - 1) / (bt[-1] - bt[0]) if len(bt) >= 2 else 120.0
    phase, local = _beat_grid(bt, times, tempo)
    out[bf, BEAT_COLUMN] = 1.0
    out[:, PHASE_COLUMNS[0]], out[:, PHASE_COLUMNS[1]] = np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)
    out[:, TEMPO_COLUMN] = local / 120.0
    return out
