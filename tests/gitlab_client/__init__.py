"""Tests of gitlab_client and of the GitLab API stand-in."""
