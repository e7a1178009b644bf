"""Kinemo: local AI motion (in-betweening, text-to-motion, dance, retargeting) on the SMPL skeleton."""
__version__ = "0.1.0"
