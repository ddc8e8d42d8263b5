"""Request and response schemas, one module per resource beside its view in ``connector.views``."""
