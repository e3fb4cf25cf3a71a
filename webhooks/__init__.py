"""Flask side of gradehook: webhook receiver, REST API, result pages and badges."""
