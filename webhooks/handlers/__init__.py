"""Pure decisions from a GitLab event to the jobs it asks for, one module per event kind."""
