"""Quill: the shared code of the Quill functions (settings, storage, auth, HTTP, domain)."""

__version__ = "0.1.0"
