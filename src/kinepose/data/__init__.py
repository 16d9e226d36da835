"""Motion data: ``formats/`` (one reader/writer per file format), ``sources/`` (a registry of data sets with
clip-level splits), ``motion`` (the Motion type), ``datasets`` (frame windows, augmentation, normalization) and
``transforms`` (mirroring, noise). ``data`` never imports ``models``."""
