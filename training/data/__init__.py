"""Dataset preparation: bucket planning, captions, decoding media into training pixels."""
