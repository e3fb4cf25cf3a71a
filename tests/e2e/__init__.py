"""End-to-end tests: a push to the running service ends in feedback on GitLab."""
