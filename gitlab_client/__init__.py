"""The only code that talks to GitLab's API: domain verbs with gradehook's own error types."""
