"""The review page: rate samples blind, one at a time, and compare two models A/B."""
