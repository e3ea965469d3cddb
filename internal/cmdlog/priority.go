package cmdlog

import "log/slog"

// LevelNotice sits between info and warning: a normal but significant event
// (journal priority 5).
const LevelNotice = slog.LevelInfo + 2

// Priority maps a slog level to a syslog priority, as the sd-daemon prefix
// "<N>" carries it: 3 error, 4 warning, 5 notice, 6 info, 7 debug.
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= LevelNotice:
		return 5
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}
