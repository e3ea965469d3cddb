package cmdlog

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// FuzzFormat: whatever the message and the values hold (text from a
// damaged dump, script output), a record is one line that starts with the
// program name.
func FuzzFormat(f *testing.F) {
	f.Add("found dump of {host}", "node\n1", "/dev/sdb1", "x: y")
	f.Add("{device}{err}{", "\x1b[2J", "", "a\r\nb")
	f.Fuzz(func(t *testing.T, msg, host, device, errText string) {
		h := New(nil, Options{Prog: "savecore", Journal: true})
		line := h.Format(slog.LevelWarn, msg, []slog.Attr{slog.String("host", host), slog.String("device", device),
			slog.Any("err", errors.New(errText))})
		assert.True(t, strings.HasPrefix(line, "<4>savecore: "), line)
		assert.Equal(t, 1, strings.Count(line, "\n"), "one line: %q", line)
		assert.True(t, strings.HasSuffix(line, "\n"))
	})
}
