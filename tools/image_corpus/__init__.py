# Pieces of tools/make_image_corpus.py: IDX files, WordNet captions, the rendered shapes set.
