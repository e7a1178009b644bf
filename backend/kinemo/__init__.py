"""Kinemo: local AI motion (in-betweening, text-to-motion, dance, retargeting) on the SMPL skeleton."""
import os

__version__ = "0.1.0"

# numba (librosa's JIT, for beat tracking) compiles for the host CPU by default, and on AVX-512 AMD EPYC hosts
# the beat tracker's compiled code segfaults (numba 0.68.0, llvmlite 0.50). Generic x86-64 code runs there and is
# fast enough for it. Set before anything imports numba, which reads it once; a user's own setting wins.
os.environ.setdefault("NUMBA_CPU_NAME", "generic")
