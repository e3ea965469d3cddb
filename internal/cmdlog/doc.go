// Package cmdlog is the log/slog handler of dumpkit's commands: it prints
// each record as one plain line, "PROG: DEVICE: sentence", for a person at
// a console or for the systemd journal.
//
// The libraries log structured records (savecore.Options.Logger); this
// package decides only how a command shows them. A record's message is a
// sentence that may name its attributes in braces, "{need}", and each is
// replaced by the attribute's value; the attribute "device" becomes the
// line's DEVICE part; an "err" attribute not named in the message ends the
// line after a colon; other attributes not named in the message follow the
// sentence in parentheses. When standard error is the journal (see
// [IsJournal]), each line starts with the sd-daemon priority prefix "<N>"
// so that journalctl -p can filter by severity.
//
// Entry points: [New], [IsJournal], [Priority].
package cmdlog
