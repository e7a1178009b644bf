"""The wire protocol and client, copied verbatim from ``backend/kinemo/serve``.

``protocol.py`` and ``client.py`` here are GENERATED: never edit them; edit
the backend's and run ``python tools/build_extension.py --sync-wire``. The
extension ships alone (no ``kinemo`` package inside Blender), so it carries
its own copy; keeping the copy in the source tree (rather than only in the
built zip) means the tests exercise exactly the code that ships. A test and
the build both fail when the copy and the source differ.
"""
