"""SQL migrations of the tooling's own tables, applied by ``quill dev`` after the runtime's."""
