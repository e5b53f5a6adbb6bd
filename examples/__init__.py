"""Runnable examples of benchmarking your own blocking code; run offbench from the repository root."""
