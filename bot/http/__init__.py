"""HTTP routes of `memberbot serve`: ops (health, metrics), operator API, shop orders."""
