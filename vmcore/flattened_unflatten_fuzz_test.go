package vmcore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/require"
)

// FuzzUnflatten feeds Unflatten and ScanFlattened arbitrary streams, seeded
// with torn and complete streams of KDUMP and ELF vmcores: no panic, the
// file stays within the size limit, a complete stream rebuilds exactly what
// Rearrange rebuilds, and a repaired KDUMP file that opens never holds a
// page beyond what arrived.
func FuzzUnflatten(f *testing.F) {
	const limit = 4 << 20
	kd := rehearsalVmcore(f, 256<<10, FormatKdump)
	for _, s := range [][]byte{flattenBytes(f, kd), flattenBytes(f, rehearsalVmcore(f, 256<<10, FormatELF))} {
		for _, cut := range []int{len(s), len(s) / 2, len(s) / 5, FlattenedStartSize + 4096 + 40} {
			f.Add(bytes.Clone(s[:cut]))
		}
	}
	for _, s := range flattenedFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		if _, err := ScanFlattened(bytes.NewReader(stream), int64(len(stream))); err != nil {
			require.True(t, errors.Is(err, ErrNotFlattened) || errors.Is(err, ErrFlattenedVersion), "%v", err)
		}
		dst := memfile.New(nil)
		res, err := Unflatten(dst, bytes.NewReader(stream), int64(len(stream)), &RearrangeOptions{MaxFileSize: limit})
		if err != nil {
			if !errors.Is(err, ErrNotFlattened) && !errors.Is(err, ErrFlattenedVersion) && !errors.Is(err, ErrFlattenedNoHeader) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		got := dst.Bytes()
		require.LessOrEqual(t, int64(len(got)), int64(limit))
		require.Equal(t, res.Size, int64(len(got)))
		if !res.Torn() {
			want, _ := rearrangeBytes(t, stream, &RearrangeOptions{MaxFileSize: limit})
			require.True(t, bytes.Equal(want, got))
			return
		}
		if res.Format != FormatKdump {
			return
		}
		v, err := Open(bytes.NewReader(got), int64(len(got)))
		if err != nil {
			return
		}
		require.True(t, v.Partial())
		require.Equal(t, res.Pages, v.NumPages())
	})
}
