"""One blueprint per resource of the connector API."""
