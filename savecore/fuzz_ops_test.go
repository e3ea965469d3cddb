package savecore

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzParseDirName: any name parses or is refused without panicking; a
// name accepted is exactly the one DirName gives for its time (plus the
// suffix), so PruneDumps never takes a look-alike for a dump.
func FuzzParseDirName(f *testing.F) {
	for _, s := range []string{"127.0.0.1-2009-06-29-16:00", "127.0.0.1-2009-06-29-16:00.12", "127.0.0.1-2009-13-01-10:00",
		"127.0.0.1-2009-06-29-16:00-old", "lost+found", "127.0.0.1-0000-01-01-00:00.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, n, ok := ParseDirName(s, time.UTC)
		if !ok {
			return
		}
		want := DirName(tm, time.UTC)
		if n > 0 || strings.HasPrefix(s[len(want):], ".") {
			require.True(t, strings.HasPrefix(s, want+"."), s)
			return
		}
		assert.Equal(t, want, s)
	})
}

// FuzzParseMinFree: any MINFREE value parses to a non-negative size or is
// refused.
func FuzzParseMinFree(f *testing.F) {
	for _, s := range []string{"0", "2048", "512Mi", "1.5Gi", "2GiB", "-1", "1M", "1e400Ki", "NaNKi"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMinFree(s)
		if err == nil {
			assert.GreaterOrEqual(t, n, int64(0))
		}
	})
}
