package savecore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMask(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "8", want: 8},
		{in: "123", want: 123},
		{in: "0x7b", want: 0x7b},
		{in: "0X7B", want: 0x7b},
		{in: "0173", want: 0o173},
		{in: "010", want: 8},
		{in: "18446744073709551615", want: ^uint64(0)},
		{in: "0xffffffffffffffff", want: ^uint64(0)},
		{in: "18446744073709551616", bad: true},
		{in: "0x10000000000000000", bad: true},
		{in: "", bad: true},
		{in: "0x", bad: true},
		{in: "08", bad: true},
		{in: "1_000", bad: true},
		{in: "0b101", bad: true},
		{in: "0o17", bad: true},
		{in: "-1", bad: true},
		{in: "12a", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMask(tc.in)
			if tc.bad {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "savecore: ")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCheckFormat(t *testing.T) {
	for _, s := range []string{"", "elf", "diskdump", "kdump", "ELF", "Kdump"} {
		assert.NoError(t, CheckFormat(s), s)
	}
	for _, s := range []string{"netdump", "lkcd", "elf64", " elf"} {
		assert.Error(t, CheckFormat(s), s)
	}
}

func TestDirName(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		name string
		t    time.Time
		loc  *time.Location
		want string
	}{
		{name: "utc", t: time.Unix(1246291200, 0), loc: time.UTC, want: "127.0.0.1-2009-06-29-16:00"},
		{name: "zone", t: time.Unix(1246291200, 0), loc: tokyo, want: "127.0.0.1-2009-06-30-01:00"},
		{name: "seconds dropped", t: time.Date(2005, 6, 14, 9, 42, 59, 999, time.UTC), loc: time.UTC, want: "127.0.0.1-2005-06-14-09:42"},
		{name: "epoch", t: time.Unix(0, 0), loc: time.UTC, want: "127.0.0.1-1970-01-01-00:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, DirName(tc.t, tc.loc))
		})
	}
	// nil means local time.
	tm := time.Unix(1246291200, 0)
	assert.Equal(t, "127.0.0.1-"+tm.Local().Format("2006-01-02-15:04"), DirName(tm, nil))
}

func TestOptionsDefaults(t *testing.T) {
	var o Options
	assert.Equal(t, DefaultDir, o.root())
	require.NotNil(t, o.logger())
	o.logger().Error("discarded")
	o.Dir = "/srv/crash"
	assert.Equal(t, "/srv/crash", o.root())
}
