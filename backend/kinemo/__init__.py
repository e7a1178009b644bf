"""Kinemo: local AI motion (in-betweening, text-to-motion, dance, retargeting) on the SMPL skeleton."""
import os

__version__ = "0.1.0"

# numba (librosa's JIT, for beat tracking) compiles for the host CPU by default. Segfaults on AVX-512 AMD EPYC
# hosts were first blamed on that host code; the ones reproduced since (2026-12-07) came from two corpus workers
# writing one numba cache at once (kinemo.data.cache), and host code then ran every dance song twice from an
# empty cache. Generic x86-64 code is kept: it is fast enough for beat tracking and one less host-specific path.
# Set before anything imports numba, which reads it once; a user's own setting wins.
os.environ.setdefault("NUMBA_CPU_NAME", "generic")
