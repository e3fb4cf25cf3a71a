"""Security checks: webhook signatures, secrets kept out of logs, injections refused before git."""
