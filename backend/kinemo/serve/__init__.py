"""The backend server (``kinemo serve``) and its client, over ZeroMQ + msgpack.

``protocol`` is the wire schema; ``client`` and ``protocol`` import without
numpy or torch so the Blender add-on can vendor them.
"""
