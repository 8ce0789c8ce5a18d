"""Built-in sweep files, addressable by name (`genbench run smoke`)."""
