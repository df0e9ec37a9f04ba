"""How Quill is deployed: one spec per function, rendered to func.yaml and Knative Services."""
