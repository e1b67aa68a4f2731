"""Sequencer programs: the instruction set, the compiler from a model's lowered training step,
and the reference machine that runs a program on golden arithmetic."""
