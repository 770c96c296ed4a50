# Helpers of tools/make_speech_corpus.py: text sources (text.py), the intent and keyword
# benchmarks (benchmarks.py), synthesis and augmentation (audio.py). Standard library only.
