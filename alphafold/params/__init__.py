"""DeepMind params files: presets, loading into the torch model, random parameters in the same layout."""
