"""TFX-style pipeline components that take raw data to a blessed, pushed SavedModel."""
