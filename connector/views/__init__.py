"""One blueprint per resource of the connector API; its schemas are in ``connector.schemas`` under the same name."""
