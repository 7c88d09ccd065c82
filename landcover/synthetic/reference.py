def synthesize_reference(): pass
