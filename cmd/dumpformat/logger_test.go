package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoggerLines: dumpformat's messages are plain "dumpformat: ..." lines;
// on the journal stream they carry the syslog priority; -q keeps errors.
func TestLoggerLines(t *testing.T) {
	tests := []struct {
		name    string
		journal bool
		o       options
		want    string
	}{
		{name: "console", want: "dumpformat: /dev/sdb1: formatted\ndumpformat: /dev/sdb1: in use: mounted on /mnt\n"},
		{name: "journal", journal: true, o: options{verbose: true},
			want: "<7>dumpformat: detail\n<6>dumpformat: /dev/sdb1: formatted\n<3>dumpformat: /dev/sdb1: in use: mounted on /mnt\n"},
		{name: "quiet", o: options{quiet: true}, want: "dumpformat: /dev/sdb1: in use: mounted on /mnt\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			require.NoError(t, err)
			defer f.Close()
			t.Setenv("JOURNAL_STREAM", "")
			if tc.journal {
				fi, err := f.Stat()
				require.NoError(t, err)
				st := fi.Sys().(*syscall.Stat_t)
				t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
			}
			log := newLogger(&syncWriter{w: f}, &tc.o)
			log.Debug("detail")
			log.Info("/dev/sdb1: formatted")
			log.Error("in use: mounted on /mnt", "device", "/dev/sdb1")
			b, err := os.ReadFile(f.Name())
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
		})
	}
}
