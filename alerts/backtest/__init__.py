"""Backtests and offline detection: the live alert engine on history, on a simulated clock."""
