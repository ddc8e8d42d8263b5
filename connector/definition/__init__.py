"""The passes that turn flask-smorest's Swagger 2.0 into what Power Platform imports (run by ``connector.openapi``)."""
