"""The training corpus: motion sources -> canonical SMPL clips, cached, with labels, captions and splits."""
