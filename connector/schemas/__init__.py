"""Request and response schemas, one module per resource named as its view in ``connector.views``."""
