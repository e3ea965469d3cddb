package dmesg

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteTo(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
		want string
	}{
		{"prefix width", Record{1_500_000, []byte("x")}, "[    0.001500] x\n"},
		{"usec truncated", Record{12_345_678_999, []byte("x")}, "[   12.345678] x\n"},
		{"wide seconds", Record{123456_789012_000, []byte("x")}, "[123456.789012] x\n"},
		{"continuation", Record{0, []byte("a\nb\n")}, "[    0.000000] a\n               b\n               \n"},
		{"spaces kept", Record{0, []byte("\t\r\v\f ")}, "[    0.000000] \t\r\v\f \n"},
		{"control", Record{0, []byte{0, 1, 0x1f, 0x7f}}, "[    0.000000] \\x00\\x01\\x1f\\x7f\n"},
		{"high bytes sign-extended", Record{0, []byte("\xc3\xa9\x80")}, "[    0.000000] \\xffffffc3\\xffffffa9\\xffffff80\n"},
		{"empty", Record{0, nil}, "[    0.000000] \n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			n, err := (&Log{Layout: Structured, Records: []Record{tc.rec}}).WriteTo(&b)
			require.NoError(t, err)
			assert.Equal(t, tc.want, b.String())
			assert.Equal(t, int64(b.Len()), n)
		})
	}
	var b bytes.Buffer
	_, err := (&Log{Layout: Legacy, Raw: []byte("<6>raw\x00\xff")}).WriteTo(&b)
	require.NoError(t, err)
	assert.Equal(t, "<6>raw\x00\xff", b.String(), "legacy bytes are written unmodified")
}

func TestLegacyRing(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		blen   int
		ring   string
		end    uint64
		unroll string
	}{
		{"short", "abc", 8, "abc\x00\x00\x00\x00\x00", 3, "abc"},
		{"exact", "abcdefgh", 8, "abcdefgh", 8, "abcdefgh"},
		{"wrapped", "abcdefghijk", 8, "ijkdefgh", 11, "defghijk"},
		{"wrapped twice", "0123456789abcdefXY", 8, "XYabcdef", 18, "abcdefXY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ring, end, err := LegacyRing([]byte(tc.text), tc.blen)
			require.NoError(t, err)
			assert.Equal(t, tc.ring, string(ring))
			assert.Equal(t, tc.end, end)
			assert.Equal(t, tc.unroll, string(unrollLegacy(ring, end)))
		})
	}
	for _, n := range []int{0, -8, 12, MaxRead * 2} {
		_, _, err := LegacyRing([]byte("x"), n)
		assert.Error(t, err, n)
	}
}
