"""Broadcast audio: text-to-speech, loudness measurement and broadcast-ready rendering.

Import the submodules directly (`audio.render`, `audio.speech`, `audio.tts`); this package module stays
empty so that importing `audio.cli` for the command line costs nothing.
"""
