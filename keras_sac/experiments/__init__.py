"""Experiments built on the agent: a train.py run (its monitor, signals and resume), plots, videos, sweeps on
Ray and their reports."""
