package diskdump

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/dsnet/golib/memfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUserParamsRoundTrip(t *testing.T) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, bs := range []int{4096, 16384, 65536} {
			u := &UserParams{}
			for v := uint64(1); v <= MaxRecordedSizes+3; v++ {
				u.Add(SampleSize{Blocks: v * 1000, Source: SizeFromDump})
			}
			u.Add(SampleSize{Blocks: 5000, Source: SizeFromModule}) // moves to the front
			u.Add(SampleSize{})                                     // ignored
			require.Len(t, u.Sizes, MaxRecordedSizes)
			assert.Equal(t, SampleSize{Blocks: 5000, Source: SizeFromModule}, u.Sizes[0])
			assert.Equal(t, uint64(11000), u.Sizes[1].Blocks)
			b := u.Encode(bs, order)
			require.Len(t, b, bs)
			assert.False(t, CheckSignature(b, 2, order), "the record is not a signature")
			assert.False(t, bytes.HasPrefix(b, []byte(DumpSignature)))
			got, err := DecodeUserParams(b)
			require.NoError(t, err)
			assert.Equal(t, u, got)

			dev := memfile.New(make([]byte, 4*bs))
			require.NoError(t, WriteUserParams(dev, bs, order, u))
			got, bad, err := ReadUserParams(dev, bs)
			require.NoError(t, err)
			require.NoError(t, bad)
			assert.Equal(t, u, got)
		}
	}
}

func TestDecodeUserParamsRejects(t *testing.T) {
	u := &UserParams{Sizes: []SampleSize{{Blocks: 16288, Source: SizeFromDump}}}
	good := u.Encode(4096, binary.LittleEndian)
	sig := make([]byte, 4096)
	FillSignature(sig, 2, binary.LittleEndian)
	tests := []struct {
		name  string
		b     []byte
		field string // "" = no record and no error
	}{
		{"signature", sig, ""},
		{"zeros", make([]byte, 4096), ""},
		{"short", []byte("dumpk"), ""},
		{"version", func() []byte { b := bytes.Clone(good); b[8] = 2; return b }(), "version"},
		{"count", func() []byte { b := bytes.Clone(good); b[12] = MaxRecordedSizes + 1; return b }(), "count"},
		{"crc", func() []byte { b := bytes.Clone(good); b[16] ^= 1; return b }(), "crc"},
		{"truncated", good[:30], "count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeUserParams(tc.b)
			assert.Nil(t, got)
			if tc.field == "" {
				assert.NoError(t, err)
				return
			}
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Field)
			assert.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

func TestSizesAndTails(t *testing.T) {
	fp := FormatParams{BlockSize: 4096, Order: binary.LittleEndian, BlockOrder: 2, SampleRate: 8,
		TotalBlocks: 16288, TotalFrom: SizeFromUser,
		Also: []SampleSize{{Blocks: 16288, Source: SizeFromDump}, {Blocks: 9000, Source: SizeFromDump}, {Blocks: 1 << 40, Source: SizeFromDump}}}
	assert.Equal(t, []SampleSize{{51200, SizeFromDevice}, {16288, SizeFromUser}, {9000, SizeFromDump}}, fp.Sizes(51200))
	var tails []Chunk
	for _, tl := range fp.tails(51200) {
		tails = append(tails, tl.Chunk)
	}
	assert.Equal(t, []Chunk{{51196, 4}, {16284, 4}, {8996, 4}}, tails)
	var normal []Chunk
	for c := range NormalFormatBlocks(51200, fp) {
		if c.Blk > 8000 && c.Blk < 17000 {
			normal = append(normal, c)
		}
	}
	assert.Contains(t, normal, Chunk{8996, 4})
	assert.Contains(t, normal, Chunk{16284, 4})
	fp.SampleRate = -1
	n := 0
	for range fp.checkedChunks(51200) {
		n++
	}
	assert.Zero(t, n, "sample_rate < 0 checks nothing")
}

func FuzzDecodeUserParams(f *testing.F) {
	u := &UserParams{Sizes: []SampleSize{{16288, SizeFromDump}, {262042, SizeFromModule}}}
	f.Add(u.Encode(4096, binary.LittleEndian)[:64])
	f.Add([]byte(UserParamsMagic + "\x01\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeUserParams(b)
		if err != nil || got == nil {
			return
		}
		require.LessOrEqual(t, len(got.Sizes), MaxRecordedSizes)
		again, err := DecodeUserParams(got.Encode(4096, binary.LittleEndian))
		require.NoError(t, err)
		if len(got.Sizes) > 0 {
			require.Equal(t, len(got.Sizes), len(again.Sizes))
		}
	})
}
