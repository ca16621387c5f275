"""Ground floor: media shared by every domain (the hostile-URL image fetcher, decoding,
the image feature spaces and their embedding)."""
