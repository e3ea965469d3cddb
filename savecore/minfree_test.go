package savecore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMinFree(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "0", want: 0},
		{in: "2048", want: 2 << 20},
		{in: " 1 ", want: 1024},
		{in: "512Mi", want: 512 << 20},
		{in: "1Gi", want: 1 << 30},
		{in: "2GiB", want: 2 << 30},
		{in: "1.5Ki", want: 1536},
		{in: "-1", err: true},
		{in: "1M", err: true},
		{in: "ten", err: true},
		{in: "", err: true},
		{in: "9223372036854775807", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMinFree(tc.in)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestReadMinFree(t *testing.T) {
	tests := []struct {
		name string
		body *string
		want int64
		err  string
	}{
		{name: "absent", want: 0},
		{name: "KiB", body: ptr("1024\n"), want: 1 << 20},
		{name: "zero", body: ptr("0"), want: 0},
		{name: "garbage", body: ptr("lots\n"), err: `"lots" is not a number of KiB`},
		{name: "negative", body: ptr("-5"), err: "not a number"},
		{name: "huge file", body: ptr(strings.Repeat("1", 5000)), err: "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.body != nil {
				require.NoError(t, os.WriteFile(filepath.Join(root, MinFreeFile), []byte(*tc.body), 0o644))
			}
			got, err := ReadMinFree(root)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)

			opt := Options{Dir: root}
			assert.Equal(t, tc.want, opt.reserve(discard()))
			opt.MinFree = 4096
			assert.Equal(t, int64(4096), opt.reserve(discard()), "MINFREE wins over the file")
		})
	}
}

func ptr[T any](v T) *T { return &v }
