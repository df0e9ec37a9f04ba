"""Quill's dev and ops tooling: ``quill dev`` (with the local broker and embedded servers),
``quill events``, ``quill bench`` and ``quill deploy``.

Installed with the package, never copied into the image. It imports ``quill``; ``quill``
never imports it (tests/unit/test_tooling_apart.py).
"""
