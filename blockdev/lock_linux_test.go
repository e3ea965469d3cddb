package blockdev

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenLocked(t *testing.T) {
	img := filepath.Join(t.TempDir(), "part.img")
	require.NoError(t, os.WriteFile(img, make([]byte, 1<<16), 0o600))
	tests := []struct {
		name          string
		first, second bool // shared
		locked        bool
	}{
		{"exclusive blocks exclusive", false, false, true},
		{"exclusive blocks shared", false, true, true},
		{"shared blocks exclusive", true, false, true},
		{"shared with shared", true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := OpenLocked(img, ReadOnly, tc.first, 0)
			require.NoError(t, err)
			start := time.Now()
			b, err := OpenLocked(img, ReadWrite, tc.second, 150*time.Millisecond)
			if !tc.locked {
				require.NoError(t, err)
				b.Close()
				a.Close()
				return
			}
			assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
			var le *LockedError
			require.ErrorAs(t, err, &le)
			require.ErrorIs(t, err, ErrLocked)
			assert.Contains(t, le.Holder, "pid ")
			assert.Contains(t, err.Error(), img)
			// Released on Close: the next one gets it, also while waiting.
			go func() { time.Sleep(50 * time.Millisecond); a.Close() }()
			b, err = OpenLocked(img, ReadWrite, tc.second, 5*time.Second)
			require.NoError(t, err)
			require.NoError(t, b.Close())
		})
	}
}

func TestSameLockDev(t *testing.T) {
	assert.True(t, sameLockDev("fd:01:1234", "fd:1:1234"))
	assert.True(t, sameLockDev("00:2a:99", "00:2a:99"))
	assert.False(t, sameLockDev("08:01:99", "08:02:99"))
	assert.False(t, sameLockDev("08:01", "08:01:1"))
	assert.False(t, sameLockDev("zz:01:1", "zz:01:1"))
}
