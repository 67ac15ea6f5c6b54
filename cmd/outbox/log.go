package main

import "log/slog"

// discard is the provider's logger here: the command prints its own results.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
