"""The local broker of ``quill dev``: Knative Broker semantics from the same YAML, on PostgreSQL."""
