"""The Teams bot: reference capture, surfaces, stores and the delivery engine (never imports connector)."""
