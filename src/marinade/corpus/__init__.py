"""Corpora: archives -> clean, de-duplicated documents in the store."""
