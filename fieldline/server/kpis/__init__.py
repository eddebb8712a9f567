"""Scores of crews, districts and task kinds: completion and on-time rates, response times."""
